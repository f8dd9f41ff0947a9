"""Kernel-harness cases of the half-precision shape ops (tests/kernel_harness.py): concatenation,
strided slice, nearest and bilinear resize, transposed convolution; forward and input
gradient, each output checked against its numpy model (tinytrain/ops/f16.py, the op units'
references) byte for byte. Used by tests/test_fp16_shape.py and bench/bench_fp16_ops.py."""
from __future__ import annotations

import numpy as np

from tinytrain.ops import f16
from tinytrain.ops.concatenation import concat_geometry
from tinytrain.ops.resize import bilinear_axis_f32, nearest_index, resize_nearest, source_ranges
from tinytrain.ops.strided_slice import slice_indices

from f16_cases import _half, _out_bytes
from kernel_harness import Case

F16 = np.float16


def _train(case: Case) -> None:
    case.decls.append('#include "tt_train_kernels.h"')


def _slice_params(case: Case, begin, stride) -> str:
    name = case._name("slice")
    case.decls.append(f"static const tt_slice_params {name} = {{{begin[0]}, {begin[1]}, {begin[2]}, "
                      f"{stride[0]}, {stride[1]}, {stride[2]}}};")
    return "&" + name


def _with_edges(a: np.ndarray, rng, inf: bool = True) -> np.ndarray:
    """Some zeros of both signs, subnormals and (with inf) an infinity among the values."""
    a = np.array(a, F16).reshape(-1)
    picks = rng.choice(a.size, size=min(a.size, 6), replace=False)
    a[picks[:4]] = np.array([0.0, -0.0, 3e-6, -5e-7], F16)[: len(picks[:4])]
    if inf and len(picks) > 4:
        a[picks[4]] = np.inf
    return a


def concat_cases(shapes, axis, seed=0):
    """Forward (one call per input into the output) and each input's gradient (acc 0 and 1)."""
    rng = np.random.default_rng(seed)
    xs = [(3 * rng.standard_normal(s)).astype(F16) for s in shapes]
    y = np.concatenate(xs, axis=axis)
    outer, blocks, out_block, offsets = concat_geometry([tuple(s) for s in shapes], axis)
    name = f"concat {[tuple(s) for s in shapes]} axis {axis}"
    fwd = Case(f"{name} forward", out_bytes=2 * y.size, macs=y.size)
    fwd.expected = _out_bytes(y)
    fwd.ref = " ".join(f"tt_concatenation_f16({_half(fwd, f'x{i}', x)}, {outer}, {b}, {out_block}, {o}, "
                       "(tt_f16 *)tt_out);" for i, (x, b, o) in enumerate(zip(xs, blocks, offsets)))
    cases = [fwd]
    gy = _with_edges((0.1 * rng.standard_normal(y.shape)), rng).reshape(y.shape)
    start = 0
    for i, (s, b, o) in enumerate(zip(shapes, blocks, offsets)):
        part = np.take(gy, np.arange(start, start + s[axis]), axis=axis)
        start += s[axis]
        old = _with_edges(0.1 * rng.standard_normal(s), rng, inf=False).reshape(s)
        for acc in (0, 1):
            c = Case(f"{name} grad input {i} (acc {acc})", out_bytes=2 * part.size, macs=part.size)
            c.expected = _out_bytes(f16.round_grad(f16.f32(part), old if acc else None))
            c.pre = f"memcpy(tt_out, {_half(c, 'old', old)}, {2 * part.size});"
            _train(c)
            c.ref = (f"tt_concatenation_grad_input_f16({_half(c, 'gy', gy)}, {outer}, {b}, {out_block}, {o}, "
                     f"{acc}, (tt_f16 *)tt_out);")
            cases.append(c)
    return cases


def slice_cases(in_shape, begin, stride, out_shape, seed=0):
    """Forward and input gradient (acc 0 and 1: the skipped elements keep old + 0)."""
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(in_shape)).astype(F16)
    idx = slice_indices(in_shape, begin, stride, out_shape)
    y = x[np.ix_(*idx)]
    name = f"slice {tuple(in_shape)} begin {tuple(begin)} stride {tuple(stride)}"
    fwd = Case(f"{name} forward", out_bytes=2 * y.size, macs=y.size)
    fwd.expected = _out_bytes(y)
    fwd.ref = (f"tt_strided_slice_f16({_half(fwd, 'x', x)}, {fwd.dims(in_shape)}, "
               f"{_slice_params(fwd, begin, stride)}, (tt_f16 *)tt_out, {fwd.dims(out_shape)});")
    cases = [fwd]
    gy = _with_edges(0.1 * rng.standard_normal(out_shape), rng).reshape(out_shape)
    old = _with_edges(0.1 * rng.standard_normal(in_shape), rng, inf=False).reshape(in_shape)
    dx = np.zeros(in_shape, np.float32)
    dx[np.ix_(*idx)] = f16.f32(gy)
    for acc in (0, 1):
        c = Case(f"{name} grad input (acc {acc})", out_bytes=2 * x.size, macs=x.size)
        c.expected = _out_bytes(f16.round_grad(dx, old if acc else None))
        c.pre = f"memcpy(tt_out, {_half(c, 'old', old)}, {2 * x.size});"
        _train(c)
        c.ref = (f"tt_strided_slice_grad_input_f16({_half(c, 'gy', gy)}, {c.dims(out_shape)}, "
                 f"{_slice_params(c, begin, stride)}, {acc}, (tt_f16 *)tt_out, {c.dims(in_shape)});")
        cases.append(c)
    return cases


def _int32(case: Case, what: str, a) -> str:
    return case.array(what, np.asarray(a, np.int32))


def _floats(case: Case, what: str, a) -> str:
    return f"(const float *){case.array(what, np.asarray(a, np.float32).view(np.uint32))}"


def resize_cases(in_hw, out_hw, c, align=False, half_pixel=False, exact=False, seed=0):
    """Nearest and bilinear resizes (forward, input gradient with acc 0 and 1) between two sizes."""
    rng = np.random.default_rng(seed)
    (h, w), (oh, ow) = in_hw, out_hw
    x = (3 * rng.standard_normal((h, w, c))).astype(F16)
    gy = (0.1 * rng.standard_normal((oh, ow, c))).astype(F16)
    gy.reshape(-1)[:3] = np.array([0.0, -0.0, 3e-6], F16)
    old = (0.1 * rng.standard_normal((h, w, c))).astype(F16)
    old.reshape(-1)[:2] = np.array([-0.0, 5e-7], F16)
    name = f"resize {h}x{w}->{oh}x{ow}x{c}" + (" align" if align else "") + (" half" if half_pixel else "") \
        + (" exact" if exact else "")
    cases = []
    rows, cols = (nearest_index(n, m, align, half_pixel, exact) for n, m in ((h, oh), (w, ow)))
    fwd = Case(f"{name} nearest forward", out_bytes=2 * oh * ow * c, macs=oh * ow * c)
    fwd.expected = _out_bytes(resize_nearest(x, rows, cols))
    fwd.ref = (f"tt_resize_nearest_f16({_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, {_int32(fwd, 'rows', rows)}, "
               f"{_int32(fwd, 'cols', cols)}, (tt_f16 *)tt_out, {fwd.dims((oh, ow, c))});")
    cases.append(fwd)
    for acc in (0, 1):
        g = Case(f"{name} nearest grad input (acc {acc})", out_bytes=2 * h * w * c, macs=oh * ow * c)
        g.expected = _out_bytes(f16.round_grad(f16.resize_nearest_grad(gy, rows, cols, (h, w)), old if acc else None))
        g.pre = f"memcpy(tt_out, {_half(g, 'old', old)}, {2 * old.size});"
        _train(g)
        g.ref = (f"tt_resize_nearest_grad_input_f16({_half(g, 'gy', gy)}, {g.dims((oh, ow, c))}, "
                 f"{_int32(g, 'rows', rows)}, {_int32(g, 'cols', cols)}, {_int32(g, 'rr', source_ranges(h, rows))}, "
                 f"{_int32(g, 'cr', source_ranges(w, cols))}, {acc}, (tt_f16 *)tt_out, {g.dims((h, w, c))});")
        cases.append(g)
    if exact:
        return cases
    ytab, xtab = (bilinear_axis_f32(n, m, align, half_pixel) for n, m in ((h, oh), (w, ow)))

    def tabs(case):
        out = []
        for role, (lo, hi, fr) in (("r", ytab), ("c", xtab)):
            out += [_int32(case, f"{role}idx", np.concatenate([lo, hi])), _floats(case, f"{role}frac", fr)]
        return ", ".join(out)
    fwd = Case(f"{name} bilinear forward", out_bytes=2 * oh * ow * c, macs=4 * oh * ow * c)
    fwd.expected = _out_bytes(f16.resize_bilinear(x, ytab, xtab))
    fwd.ref = (f"tt_resize_bilinear_f16({_half(fwd, 'x', x)}, {fwd.dims((h, w, c))}, {tabs(fwd)}, (tt_f16 *)tt_out, "
               f"{fwd.dims((oh, ow, c))});")
    cases.append(fwd)
    for acc in (0, 1):
        g = Case(f"{name} bilinear grad input (acc {acc})", out_bytes=2 * h * w * c, macs=4 * oh * ow * c)
        g.expected = _out_bytes(f16.round_grad(f16.resize_bilinear_grad(gy, ytab, xtab, (h, w)), old if acc else None))
        g.pre = f"memcpy(tt_out, {_half(g, 'old', old)}, {2 * old.size});"
        _train(g)
        rr = source_ranges(h, ytab[0], ytab[1])
        cr = source_ranges(w, xtab[0], xtab[1])
        g.ref = (f"tt_resize_bilinear_grad_input_f16({_half(g, 'gy', gy)}, {g.dims((oh, ow, c))}, {tabs(g)}, "
                 f"{_int32(g, 'rr', rr)}, {_int32(g, 'cr', cr)}, {acc}, (tt_f16 *)tt_out, {g.dims((h, w, c))});")
        cases.append(g)
    return cases


def tconv_out_size(n, k, stride, pad_top, extra=0):
    """The output size a transposed convolution with (top) padding pad_top and `extra` rows past
    the taps' reach (TensorFlow's output_padding) has."""
    return (n - 1) * stride + k - 2 * pad_top + extra


def tconv_cases(h, w, cin, cout, k=3, stride=2, pad=1, extra=0, act="relu", seed=0, bias=True, helium=False):
    """Transposed convolution forward and input gradient (acc 0 and 1), portable; with helium
    also the Helium variants (tt_transpose_conv*_f16_mve, their own numpy models: other bits)."""
    rng = np.random.default_rng(seed)
    oh, ow = tconv_out_size(h, k, stride, pad, extra), tconv_out_size(w, k, stride, pad, extra)
    x = rng.standard_normal((h, w, cin)).astype(F16)
    wt = (rng.standard_normal((cout, k, k, cin)) / np.sqrt(k * k * cin)).astype(F16)
    b = (0.1 * rng.standard_normal(cout)).astype(F16)
    gy = (0.1 * rng.standard_normal((oh, ow, cout))).astype(F16)
    gy.reshape(-1)[:3] = np.array([0.0, -0.0, 3e-6], F16)
    old = (0.1 * rng.standard_normal((h, w, cin))).astype(F16)
    st, pd = (stride, stride), (pad, pad)
    codes = {"none": 0, "relu": 1, "relu6": 2}
    macs = h * w * cout * k * k * cin
    name = f"tconv {h}x{w}x{cin}->{k}x{k}->{oh}x{ow}x{cout} s{stride} p{pad} {act}" + ("" if bias else " no bias")
    cases = []
    for mve in ((False, True) if helium else (False,)):
        fwd = Case(f"{name} forward" + (" Helium" if mve else ""), out_bytes=2 * oh * ow * cout, macs=macs,
                   scratch_bytes=f16.conv2d_f16_mve_scratch_bytes(k, k, cin, cout) if mve else 0)
        model = f16.transpose_conv_mve if mve else f16.transpose_conv
        fwd.expected = _out_bytes(model(x, wt, b if bias else None, st, pd, act, (oh, ow)))
        bias_arg = _half(fwd, "b", b) if bias else "NULL"
        args = (f"{_half(fwd, 'x', x)}, {fwd.dims((h, w, cin))}, {_half(fwd, 'w', wt)}, {bias_arg}, {k}, {k}, "
                f"{fwd.geom(st, (pad, 0, pad, 0))}, {codes[act]}, (tt_f16 *)tt_out, {fwd.dims((oh, ow, cout))}")
        fwd.ref = f"tt_transpose_conv_f16_mve({args}, tt_scratch);" if mve else f"tt_transpose_conv_f16({args});"
        cases.append(fwd)
    for acc in (0, 1):
        for mve in ((False, True) if helium else (False,)):
            model = f16.transpose_conv_grad_input_mve if mve else f16.transpose_conv_grad_input
            g = Case(f"{name} grad input (acc {acc})" + (" Helium" if mve else ""), out_bytes=2 * h * w * cin,
                     macs=macs)
            g.expected = _out_bytes(f16.round_grad(model(gy, wt, st, pd, (h, w)), old if acc else None))
            g.pre = f"memcpy(tt_out, {_half(g, 'old', old)}, {2 * old.size});"
            _train(g)
            fn = "tt_transpose_conv_grad_input_f16_mve(" if mve else "tt_transpose_conv_grad_input_f16("
            g.ref = (f"{fn}{_half(g, 'gy', gy)}, {g.dims((oh, ow, cout))}, {_half(g, 'w', wt)}, {k}, {k}, "
                     f"{g.geom(st, (pad, 0, pad, 0))}, {acc}, (tt_f16 *)tt_out, {g.dims((h, w, cin))});")
            cases.append(g)
    return cases


def shape_cases(helium: bool = False) -> list:
    """Every case of the kernels above (tests/test_fp16_shape.py runs them on both boards; the
    Helium ones with helium, on mps3-an547)."""
    cases = []
    cases += concat_cases([(3, 4, 5), (3, 4, 3), (3, 4, 8)], axis=2, seed=1)     # channels
    cases += concat_cases([(2, 3, 4), (2, 5, 4)], axis=1, seed=2)                # width
    cases += concat_cases([(1, 3, 4), (2, 3, 4)], axis=0, seed=3)                # height
    cases += slice_cases((6, 7, 9), (1, 5, 0), (2, -2, 3), (3, 3, 3), seed=4)    # strided, a negative stride
    cases += slice_cases((5, 4, 6), (1, 0, 2), (1, 1, 1), (3, 4, 3), seed=5)     # a crop
    cases += resize_cases((4, 5), (8, 10), 6, exact=True, seed=6)                # an UpSampling2D
    cases += resize_cases((4, 5), (7, 9), 40, half_pixel=True, seed=7)         # 2 channel blocks
    cases += resize_cases((6, 5), (4, 3), 5, align=True, seed=8)               # down: inputs nobody reads
    cases += resize_cases((3, 4), (5, 7), 3, seed=9)
    hl = {"helium": helium}
    cases += tconv_cases(4, 5, 6, 5, k=3, stride=2, pad=1, seed=10, **hl)       # SAME-like, stride 2, a tail of lanes
    cases += tconv_cases(3, 3, 40, 3, k=2, stride=2, pad=0, act="none", seed=11, **hl)    # 2 channel blocks, 5 vectors
    cases += tconv_cases(3, 4, 16, 7, k=3, stride=1, pad=0, act="relu6", seed=12, bias=False, **hl)
    cases += tconv_cases(2, 2, 5, 37, k=3, stride=2, pad=1, act="relu", seed=15, **hl)   # 2 output blocks, a tail
    cases += tconv_cases(2, 3, 3, 4, k=3, stride=2, pad=0, extra=1, seed=13, **hl)     # an output past the taps
    cases += tconv_cases(3, 3, 2, 3, k=2, stride=3, pad=0, seed=14, **hl)        # stride above the kernel
    return cases


# --- bench/bench_fp16_ops.py: each half kernel beside its float32 twin on the same values -------

def f32_kernels() -> list:
    """The float32 twins' files (the bench's baselines)."""
    from tinytrain.resources import firmware_dir
    k = firmware_dir() / "kernels"
    return [k / "concatenation" / "concatenation_f32.c", k / "concatenation" / "concatenation_backward.c",
            k / "strided_slice" / "strided_slice_f32.c", k / "strided_slice" / "strided_slice_backward.c",
            k / "resize" / "resize_nearest_f32.c", k / "resize" / "resize_bilinear_f32.c",
            k / "resize" / "resize_backward.c", k / "transpose_conv" / "transpose_conv_f32.c",
            k / "transpose_conv" / "transpose_conv_backward.c"]


def _twin(c16: Case, out_bytes: int, ref: str, arrays: dict) -> Case:
    """A float32 case: `ref` with {name} placeholders replaced by float32 arrays (names ending in
    _i: int32 tables)."""
    c = Case(c16.name + " f32", out_bytes=out_bytes, macs=c16.macs)
    _train(c)
    names = {k: (_int32(c, k, v) if k.endswith("_i") else _floats(c, k, v)) for k, v in arrays.items()}
    for k, v in names.items():
        ref = ref.replace("{" + k + "}", v)
    c.ref = ref
    return c


def bench_rows() -> list:
    """(label, f16 case, f32 case[, Helium f16 case]): 16x16x32 activations (transposed conv
    8x8x16 -> 16x16x16, with its Helium variant)."""
    rows = []
    cat = concat_cases([(16, 16, 16), (16, 16, 16)], axis=2, seed=20)
    x = np.zeros((16, 16, 16), np.float32)
    gy = np.zeros((16, 16, 32), np.float32)
    rows.append(("concatenation 2 x 16x16x16 forward", cat[0], _twin(
        cat[0], 2 * 16 * 16 * 32 * 4,
        "tt_concatenation_f32({a}, 256, 16, 32, 0, (float *)tt_out); "
        "tt_concatenation_f32({b}, 256, 16, 32, 16, (float *)tt_out);", {"a": x, "b": x})))
    rows.append(("concatenation grad input (acc 0)", cat[1], _twin(
        cat[1], 16 * 16 * 16 * 4, "tt_concatenation_grad_input_f32({g}, 256, 16, 32, 0, 0, (float *)tt_out);",
        {"g": gy})))
    sl = slice_cases((16, 16, 32), (1, 1, 0), (1, 1, 1), (14, 14, 32), seed=21)
    ps = "&(const tt_slice_params){1, 1, 0, 1, 1, 1}"
    d_in, d_out = "&(const tt_dims){16, 16, 32}", "&(const tt_dims){14, 14, 32}"
    rows.append(("strided slice (crop) 16x16x32 -> 14x14x32 forward", sl[0], _twin(
        sl[0], 14 * 14 * 32 * 4, f"tt_strided_slice_f32({{x}}, {d_in}, {ps}, (float *)tt_out, {d_out});",
        {"x": np.zeros((16, 16, 32), np.float32)})))
    rows.append(("strided slice grad input (acc 0)", sl[1], _twin(
        sl[1], 16 * 16 * 32 * 4,
        f"tt_strided_slice_grad_input_f32({{g}}, {d_out}, {ps}, 0, (float *)tt_out, {d_in});",
        {"g": np.zeros((14, 14, 32), np.float32)})))
    rs = resize_cases((8, 8), (16, 16), 32, half_pixel=True, seed=22)
    rows_i = nearest_index(8, 16, False, True)
    yt = bilinear_axis_f32(8, 16, False, True)
    d_in, d_out = "&(const tt_dims){8, 8, 32}", "&(const tt_dims){16, 16, 32}"
    x8, g16 = np.zeros((8, 8, 32), np.float32), np.zeros((16, 16, 32), np.float32)
    idx, fr = np.concatenate([yt[0], yt[1]]), yt[2]
    rows.append(("resize nearest 8x8x32 -> 16x16 forward", rs[0], _twin(
        rs[0], 16 * 16 * 32 * 4, f"tt_resize_nearest_f32({{x}}, {d_in}, {{r_i}}, {{r_i}}, (float *)tt_out, {d_out});",
        {"x": x8, "r_i": rows_i})))
    rows.append(("resize nearest grad input (acc 0)", rs[1], _twin(
        rs[1], 8 * 8 * 32 * 4,
        f"tt_resize_nearest_grad_input_f32({{g}}, {d_out}, {{r_i}}, {{r_i}}, 0, (float *)tt_out, {d_in});",
        {"g": g16, "r_i": rows_i})))
    rows.append(("resize bilinear 8x8x32 -> 16x16 forward", rs[3], _twin(
        rs[3], 16 * 16 * 32 * 4,
        f"tt_resize_bilinear_f32({{x}}, {d_in}, {{i_i}}, {{f}}, {{i_i}}, {{f}}, (float *)tt_out, {d_out});",
        {"x": x8, "i_i": idx, "f": fr})))
    rows.append(("resize bilinear grad input (acc 0)", rs[4], _twin(
        rs[4], 8 * 8 * 32 * 4,
        f"tt_resize_bilinear_grad_input_f32({{g}}, {d_out}, {{i_i}}, {{f}}, {{i_i}}, {{f}}, 0, (float *)tt_out, "
        f"{d_in});", {"g": g16, "i_i": idx, "f": fr})))
    tc = tconv_cases(8, 8, 16, 16, k=3, stride=2, pad=1, extra=1, seed=23, helium=True)
    geom = "&(const tt_geom){2, 2, 1, 1, 1, 1}"
    d_in, d_out = "&(const tt_dims){8, 8, 16}", "&(const tt_dims){16, 16, 16}"
    w = np.full((16, 3, 3, 16), 0.01, np.float32)
    rows.append(("transposed conv 8x8x16 -> 3x3 s2 -> 16x16x16 forward", tc[0], _twin(
        tc[0], 16 * 16 * 16 * 4,
        f"tt_transpose_conv_f32({{x}}, {d_in}, {{w}}, {{b}}, 3, 3, {geom}, 1, (float *)tt_out, {d_out});",
        {"x": np.ones((8, 8, 16), np.float32), "w": w, "b": np.zeros(16, np.float32)}), tc[1]))
    rows.append(("transposed conv grad input (acc 0)", tc[2], _twin(
        tc[2], 8 * 8 * 16 * 4,
        f"tt_transpose_conv_grad_input_f32({{g}}, {d_out}, {{w}}, 3, 3, {geom}, 0, (float *)tt_out, {d_in});",
        {"g": np.ones((16, 16, 16), np.float32), "w": w}), tc[3]))
    return rows
