"""Window geometry of convolutions and pooling, for the numpy references (NHWC, batch 1)."""
from __future__ import annotations

import numpy as np

from ..ir import Op


def geometry(op: Op):
    """(stride, pad, dilation) of a windowed op, with defaults."""
    a = op.attrs
    return (tuple(a.get("stride", (1, 1))), tuple(a.get("pad", (0, 0, 0, 0))),
            tuple(a.get("dilation", (1, 1))))


def window_output_shape(g, op, kernel, channels: int) -> tuple[int, ...]:
    """(1, OH, OW, channels) of a windowed op (conv, pooling) on its first input."""
    from ..ir import conv_out_size
    _, h, w, _ = g.tensors[op.inputs[0]].shape
    stride, (pt, pb, pl, pr), dil = geometry(op)
    return (1, conv_out_size(h, kernel[0], stride[0], pt, pb, dil[0]),
            conv_out_size(w, kernel[1], stride[1], pl, pr, dil[1]), channels)


def window_input(x: np.ndarray, out_hw, k, stride, pad, dilation, fill) -> np.ndarray:
    """x (H, W, C) placed in a buffer covering every tap of every output, borders = fill."""
    h, w, c = x.shape
    oh, ow = out_hw
    need_h = (oh - 1) * stride[0] + (k[0] - 1) * dilation[0] + 1
    need_w = (ow - 1) * stride[1] + (k[1] - 1) * dilation[1] + 1
    buf = np.full((need_h, need_w, c), fill, dtype=x.dtype)
    top, left = pad[0], pad[2]
    ys, xs = max(0, -top), max(0, -left)                         # negative pad crops
    ye, xe = min(h, need_h - top), min(w, need_w - left)
    if ye > ys and xe > xs:
        buf[top + ys:top + ye, left + xs:left + xe] = x[ys:ye, xs:xe]
    return buf


def taps(buf: np.ndarray, out_hw, k, stride, dilation):
    """Yield (ky, kx, view (OH, OW, C)) of every kernel tap."""
    oh, ow = out_hw
    for ky in range(k[0]):
        y0 = ky * dilation[0]
        for kx in range(k[1]):
            x0 = kx * dilation[1]
            yield ky, kx, buf[y0:y0 + (oh - 1) * stride[0] + 1:stride[0],
                              x0:x0 + (ow - 1) * stride[1] + 1:stride[1]]


def valid_count(in_hw, out_hw, k, stride, pad) -> np.ndarray:
    """Number of taps inside the input, per output position (pooling)."""
    counts = []
    for size, osz, kk, s, p in ((in_hw[0], out_hw[0], k[0], stride[0], pad[0]),
                                (in_hw[1], out_hw[1], k[1], stride[1], pad[2])):
        origin = np.arange(osz) * s - p
        counts.append(np.minimum(size, origin + kk) - np.maximum(0, origin))
    return np.maximum(counts[0][:, None], 0) * np.maximum(counts[1][None, :], 0)


def pad4(x: np.ndarray, pad, value=0.0) -> np.ndarray:
    """(1, H, W, C) padded by (top, bottom, left, right)."""
    t, b, l, r = pad
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def window4(xp: np.ndarray, i: int, j: int, oh: int, ow: int, stride, dil) -> np.ndarray:
    """xp[:, i*dh + sh*h, j*dw + sw*w, :] for h < oh, w < ow (a strided view)."""
    sh, sw = stride
    dh, dw = dil
    return xp[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw, :]


def unpad4(dy: np.ndarray, pad) -> np.ndarray:
    """dy without its padding rows and columns (a view): the gradient of the unpadded input."""
    t, b, l, r = pad
    return dy[:, t: dy.shape[1] - b, l: dy.shape[2] - r, :]


def activate_f32(v: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(v, 0)
    if act == "relu6":
        return np.clip(v, 0, 6)
    return v
