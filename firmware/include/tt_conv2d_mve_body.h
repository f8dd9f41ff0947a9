/* The loops of the Helium conv2d kernels, shared by conv2d_f16_mve.c (8 half lanes) and
 * conv2d_f32_mve.c (4 float lanes): one body, the element type given by the includer.
 *
 * The includer defines, before including this header (inside its __ARM_FEATURE_MVE block):
 *   TT_T, TT_V, TT_LANES        element type, vector type, lanes per vector
 *   TT_W                        the trained weights' storage type (tt_f16 / float)
 *   TT_CTP(n)                   the tail predicate of n elements (vctp16q / vctp32q)
 *   TT_LD(p), TT_LDZ(p, m)      vector load, zeroing predicated load
 *   TT_STP(p, v, m)             predicated store
 *   TT_DUP(s)                   broadcast
 *   TT_S, TT_LDS(p), TT_FMAN(a, v, s)  a scalar operand loaded from p, a + v * s fused
 *   TT_ADD(a, b), TT_LT0(v) (0 > v: MVE's "lt" is true for a NaN), TT_GT6(v), TT_SEL(a, b, m)
 *   sgd_block(w, gw, n, hp, u, e0) and TT_RULE(w, g, hp, u, e): the update of n contiguous
 *   weights and of one weight (the element type's rule).
 * and gets static functions conv_forward, conv_grad_input, conv_update_weight, which its
 * exported tt_ kernels call (the kernel index finds the kernels by their definitions in the
 * .c files).
 *
 * forward      output channels in the lanes: the weights of a block of up to 4 vectors of
 *              output channels are copied tap-major into the scratch (wt[e][j], e = (ky, kx,
 *              i), zero past the layer's channels); per output pixel acc = bias, then for
 *              each tap inside the input in (ky, kx, i) order acc = fma(x[tap], wt[tap], acc)
 *              (one rounding each), then the activation: no reduction across lanes.
 * grad input   gather form, input channels in the lanes: acc = fma over ky, kx, o (in that
 *              order) of gy[oh][ow][o] * w[o][ky][kx][i..]; stored, or old + acc.
 * update       per output channel o, tap and block of trained channels: the sum over the
 *              output pixels (row-major) of gy[oh][ow][o] * x[ih][iw][j..] by fma, into the
 *              scratch, then the update rule per element in (tap, channel) order. */
#ifndef TT_CONV2D_MVE_BODY_H
#define TT_CONV2D_MVE_BODY_H
/* Empty unless an includer defined the element type (a header-by-header include, as
 * tests/test_compile.py does with every header of firmware/include, gets nothing). */
#if defined(TT_T) && defined(TT_V)

#define TT_BLOCK (4 * TT_LANES)          /* output channels per forward pass: four vectors */

static inline TT_V act_vec(TT_V v, int32_t act)
{
    if (act == 0) return v;
    v = TT_SEL(TT_DUP(0), v, TT_LT0(v));
    if (act == 2) v = TT_SEL(TT_DUP(6), v, TT_GT6(v));
    return v;
}

/* One output pixel, nv (1..4, a constant after inlining) vectors of output channels: the
 * runs of taps inside the input, x one element at a time against a row of wt. */
static inline __attribute__((always_inline)) void fwd_pixel(
    const TT_T *x, const tt_dims *in, const TT_T *wt, int32_t bs, int32_t kw, const tt_geom *g,
    int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int32_t ih0, int32_t iw0,
    const TT_T *bias, int32_t nb, int32_t act, TT_T *yp, const int nv)
{
    const int32_t cin = in->c;
    const mve_pred16_t p0 = TT_CTP((uint32_t)nb);
    const mve_pred16_t p1 = TT_CTP((uint32_t)(nb > TT_LANES ? nb - TT_LANES : 0));
    const mve_pred16_t p2 = TT_CTP((uint32_t)(nb > 2 * TT_LANES ? nb - 2 * TT_LANES : 0));
    const mve_pred16_t p3 = TT_CTP((uint32_t)(nb > 3 * TT_LANES ? nb - 3 * TT_LANES : 0));
    TT_V a0 = TT_DUP(0), a1 = a0, a2 = a0, a3 = a0;
    int32_t ky, kx, t, n;
    if (bias) {
        a0 = TT_LDZ(bias, p0);
        if (nv > 1) a1 = TT_LDZ(bias + TT_LANES, p1);
        if (nv > 2) a2 = TT_LDZ(bias + 2 * TT_LANES, p2);
        if (nv > 3) a3 = TT_LDZ(bias + 3 * TT_LANES, p3);
    }
    for (ky = ky0; ky < ky1; ++ky) {
        const TT_T *xr = x + ((ih0 + ky * g->dil_h) * in->w) * cin;
        for (kx = kx0; kx < kx1; ++kx) {
            const TT_T *xp = xr + (iw0 + kx * g->dil_w) * cin;
            const TT_T *wp = wt + ((ky * kw + kx) * cin) * bs;
            if (g->dil_w == 1) {           /* the row's valid taps: one run of x and of wt */
                n = (kx1 - kx0) * cin;
                kx = kx1;
            } else {
                n = cin;
            }
            for (t = n; t > 0; --t, wp += bs) {
                const TT_S s = TT_LDS(xp);
                ++xp;
                a0 = TT_FMAN(a0, TT_LD(wp), s);
                if (nv > 1) a1 = TT_FMAN(a1, TT_LD(wp + TT_LANES), s);
                if (nv > 2) a2 = TT_FMAN(a2, TT_LD(wp + 2 * TT_LANES), s);
                if (nv > 3) a3 = TT_FMAN(a3, TT_LD(wp + 3 * TT_LANES), s);
            }
        }
    }
    TT_STP(yp, act_vec(a0, act), p0);
    if (nv > 1) TT_STP(yp + TT_LANES, act_vec(a1, act), p1);
    if (nv > 2) TT_STP(yp + 2 * TT_LANES, act_vec(a2, act), p2);
    if (nv > 3) TT_STP(yp + 3 * TT_LANES, act_vec(a3, act), p3);
}

/* [lo, hi): the taps t of a window at origin i0 (stride dil) that lie inside [0, n). */
static inline void valid_taps(int32_t i0, int32_t k, int32_t dil, int32_t n, int32_t *lo, int32_t *hi)
{
    int32_t a = 0, b = k;
    while (a < k && i0 + a * dil < 0) ++a;
    while (b > a && i0 + (b - 1) * dil >= n) --b;
    *lo = a;
    *hi = b;
}

static void conv_forward(const TT_T *x, const tt_dims *in, const TT_T *w, const TT_T *bias, int32_t kh,
                         int32_t kw, const tt_geom *g, int32_t act, TT_T *y, const tt_dims *out, TT_T *wt)
{
    const int32_t cin = in->c, cout = out->c, per_o = kh * kw * cin;
    int32_t o0, oh, ow, e, j;
    for (o0 = 0; o0 < cout; o0 += TT_BLOCK) {
        const int32_t nb = cout - o0 < TT_BLOCK ? cout - o0 : TT_BLOCK;
        const int32_t nv = (nb + TT_LANES - 1) / TT_LANES, bs = nv * TT_LANES;
        const TT_T *bb = bias ? bias + o0 : 0;
        for (j = 0; j < bs; ++j) {            /* wt[e][j]: the block's weights, tap-major */
            const TT_T *wr = w + (o0 + j) * per_o;
            for (e = 0; e < per_o; ++e) wt[e * bs + j] = j < nb ? wr[e] : (TT_T)0;
        }
        for (oh = 0; oh < out->h; ++oh) {
            const int32_t ih0 = oh * g->stride_h - g->pad_top;
            int32_t ky0, ky1;
            valid_taps(ih0, kh, g->dil_h, in->h, &ky0, &ky1);
            for (ow = 0; ow < out->w; ++ow) {
                const int32_t iw0 = ow * g->stride_w - g->pad_left;
                TT_T *yp = y + (oh * out->w + ow) * cout + o0;
                int32_t kx0, kx1;
                valid_taps(iw0, kw, g->dil_w, in->w, &kx0, &kx1);
                switch (nv) {
                case 4: fwd_pixel(x, in, wt, bs, kw, g, ky0, ky1, kx0, kx1, ih0, iw0, bb, nb, act, yp, 4); break;
                case 3: fwd_pixel(x, in, wt, bs, kw, g, ky0, ky1, kx0, kx1, ih0, iw0, bb, nb, act, yp, 3); break;
                case 2: fwd_pixel(x, in, wt, bs, kw, g, ky0, ky1, kx0, kx1, ih0, iw0, bb, nb, act, yp, 2); break;
                default: fwd_pixel(x, in, wt, bs, kw, g, ky0, ky1, kx0, kx1, ih0, iw0, bb, nb, act, yp, 1); break;
                }
            }
        }
    }
}

static int32_t source(int32_t i, int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_out)
{
    const int32_t num = i + pad - t * dil;
    if (num < 0 || num % stride) return -1;
    return num / stride < n_out ? num / stride : -1;
}

/* Input element (ih, iw), channels i .. i + left (at most four vectors): a function of its
 * own, so that its loop over the output channels keeps every pointer in a register. */
static __attribute__((noinline)) void gi_pixel(const tt_conv_shape *s, const TT_T *grad_y, const TT_T *w,
                                               int32_t ih, int32_t iw, int32_t i, int32_t accumulate, TT_T *gx)
{
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, cin = in->c, wstride = kh * kw * cin, left = cin - i;
    const mve_pred16_t p0 = TT_CTP((uint32_t)left);
    const mve_pred16_t p1 = TT_CTP((uint32_t)(left > TT_LANES ? left - TT_LANES : 0));
    const mve_pred16_t p2 = TT_CTP((uint32_t)(left > 2 * TT_LANES ? left - 2 * TT_LANES : 0));
    const mve_pred16_t p3 = TT_CTP((uint32_t)(left > 3 * TT_LANES ? left - 3 * TT_LANES : 0));
    TT_V a0 = TT_DUP(0), a1 = a0, a2 = a0, a3 = a0;
    int32_t ky, kx, o;
    for (ky = 0; ky < kh; ++ky) {
        const int32_t oh = source(ih, ky, g->stride_h, g->pad_top, g->dil_h, out->h);
        if (oh < 0) continue;
        for (kx = 0; kx < kw; ++kx) {
            const int32_t ow = source(iw, kx, g->stride_w, g->pad_left, g->dil_w, out->w);
            const TT_T *gy, *wp;
            if (ow < 0) continue;
            gy = grad_y + (oh * out->w + ow) * out->c;
            wp = w + (ky * kw + kx) * cin + i;
            if (left >= TT_BLOCK) {
                for (o = 0; o < out->c; ++o, wp += wstride) {
                    const TT_S d = TT_LDS(gy + o);
                    a0 = TT_FMAN(a0, TT_LD(wp), d);
                    a1 = TT_FMAN(a1, TT_LD(wp + TT_LANES), d);
                    a2 = TT_FMAN(a2, TT_LD(wp + 2 * TT_LANES), d);
                    a3 = TT_FMAN(a3, TT_LD(wp + 3 * TT_LANES), d);
                }
                continue;
            }
            for (o = 0; o < out->c; ++o, wp += wstride) {
                const TT_S d = TT_LDS(gy + o);
                a0 = TT_FMAN(a0, TT_LDZ(wp, p0), d);
                if (left > TT_LANES) a1 = TT_FMAN(a1, TT_LDZ(wp + TT_LANES, p1), d);
                if (left > 2 * TT_LANES) a2 = TT_FMAN(a2, TT_LDZ(wp + 2 * TT_LANES, p2), d);
                if (left > 3 * TT_LANES) a3 = TT_FMAN(a3, TT_LDZ(wp + 3 * TT_LANES, p3), d);
            }
        }
    }
    if (accumulate) {
        a0 = TT_ADD(TT_LDZ(gx, p0), a0);
        a1 = TT_ADD(TT_LDZ(gx + TT_LANES, p1), a1);
        a2 = TT_ADD(TT_LDZ(gx + 2 * TT_LANES, p2), a2);
        a3 = TT_ADD(TT_LDZ(gx + 3 * TT_LANES, p3), a3);
    }
    TT_STP(gx, a0, p0);
    TT_STP(gx + TT_LANES, a1, p1);
    TT_STP(gx + 2 * TT_LANES, a2, p2);
    TT_STP(gx + 3 * TT_LANES, a3, p3);
}

static void conv_grad_input(const tt_conv_shape *s, const TT_T *grad_y, const TT_T *w, int32_t accumulate,
                            TT_T *grad_x)
{
    const tt_dims *in = s->in;
    int32_t ih, iw, i;
    for (ih = 0; ih < in->h; ++ih)
        for (iw = 0; iw < in->w; ++iw)
            for (i = 0; i < in->c; i += TT_BLOCK)          /* four vectors of channels */
                gi_pixel(s, grad_y, w, ih, iw, i, accumulate, grad_x + (ih * in->w + iw) * in->c + i);
}

/* [lo, hi): the outputs o along one axis whose tap t lies inside the input. */
static inline void tap_range(int32_t t, int32_t stride, int32_t pad, int32_t dil, int32_t n_in, int32_t n_out,
                             int32_t *lo, int32_t *hi)
{
    const int32_t off = t * dil - pad;              /* input = o * stride + off */
    int32_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int32_t b = n_in - off <= 0 ? 0 : (n_in - off + stride - 1) / stride;
    *lo = a;
    *hi = b < n_out ? b : n_out;
}

/* One tap's gradient of up to four vectors of trained channels (left of them) of one output
 * channel: the fma over rows x cols output pixels (x steps xstep a pixel, xrow a row; gy gstep
 * and grow), stored to dst. A function of its own: its loop keeps every pointer in a register. */
static __attribute__((noinline)) void gw_block(const TT_T *x, const TT_T *gy, int32_t rows, int32_t cols,
                                               int32_t xrow, int32_t grow, int32_t xstep, int32_t gstep,
                                               int32_t left, TT_T *dst)
{
    const mve_pred16_t p0 = TT_CTP((uint32_t)left);
    const mve_pred16_t p1 = TT_CTP((uint32_t)(left > TT_LANES ? left - TT_LANES : 0));
    const mve_pred16_t p2 = TT_CTP((uint32_t)(left > 2 * TT_LANES ? left - 2 * TT_LANES : 0));
    const mve_pred16_t p3 = TT_CTP((uint32_t)(left > 3 * TT_LANES ? left - 3 * TT_LANES : 0));
    TT_V a0 = TT_DUP(0), a1 = a0, a2 = a0, a3 = a0;
    int32_t r, c;
    for (r = 0; r < rows; ++r, x += xrow, gy += grow) {
        const TT_T *xp = x, *gp = gy;
        if (left >= TT_BLOCK) {
            for (c = cols; c > 0; --c, xp += xstep, gp += gstep) {
                const TT_S d = TT_LDS(gp);
                a0 = TT_FMAN(a0, TT_LD(xp), d);
                a1 = TT_FMAN(a1, TT_LD(xp + TT_LANES), d);
                a2 = TT_FMAN(a2, TT_LD(xp + 2 * TT_LANES), d);
                a3 = TT_FMAN(a3, TT_LD(xp + 3 * TT_LANES), d);
            }
            continue;
        }
        for (c = cols; c > 0; --c, xp += xstep, gp += gstep) {     /* loads past left read 0 */
            const TT_S d = TT_LDS(gp);
            a0 = TT_FMAN(a0, TT_LDZ(xp, p0), d);
            if (left > TT_LANES) a1 = TT_FMAN(a1, TT_LDZ(xp + TT_LANES, p1), d);
            if (left > 2 * TT_LANES) a2 = TT_FMAN(a2, TT_LDZ(xp + 2 * TT_LANES, p2), d);
            if (left > 3 * TT_LANES) a3 = TT_FMAN(a3, TT_LDZ(xp + 3 * TT_LANES, p3), d);
        }
    }
    TT_STP(dst, a0, p0);
    TT_STP(dst + TT_LANES, a1, p1);
    TT_STP(dst + 2 * TT_LANES, a2, p2);
    TT_STP(dst + 3 * TT_LANES, a3, p3);
}

/* The update of output channel o from its gradient gw (per_out elements, (tap, channel) order). */
static void update_channel(const tt_channels *ch, int32_t spatial, int32_t o, TT_W *w, const TT_T *gw,
                           const tt_hparams *hp, const tt_update *u)
{
    const int32_t k = ch->k, per_out = spatial * k;
    int32_t p, j;
    if (!ch->index && k == ch->in_channels) {      /* the channel's weights are contiguous */
        sgd_block(w + o * per_out, gw, per_out, hp, u, o * per_out);
        return;
    }
    for (p = 0; p < spatial; ++p) {
        TT_W *wr = w + (o * spatial + p) * ch->in_channels;
        for (j = 0; j < k; ++j) {
            TT_W *wq = wr + (ch->index ? ch->index[j] : j);
            *wq = TT_RULE(*wq, gw[p * k + j], hp, u, o * per_out + p * k + j);
        }
    }
}

#define TT_SMALL_K_BYTES 2048    /* the gradients of a block of output channels, on the stack */

/* Fewer trained channels than lanes (a first layer on 1-3 channels): output channels in the
 * lanes instead, gw_block with the roles of x and gy swapped (each element's sum is the same
 * fma over the same pixels in the same order), then the update channel by channel. */
static void conv_update_weight_small_k(const tt_conv_shape *s, const tt_channels *ch, TT_W *w, const TT_T *x,
                                       const TT_T *grad_y, const tt_update *u, TT_T *gw)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t per_out = spatial * k, oc = out->c;
    TT_T buf[TT_SMALL_K_BYTES / sizeof(TT_T)];          /* buf[e][l]: element e of channel o0 + l */
    int32_t o0, o, ky, kx, j, e;
    for (o0 = 0; o0 < oc; o0 += TT_BLOCK) {
        const int32_t nb = oc - o0 < TT_BLOCK ? oc - o0 : TT_BLOCK;
        for (ky = 0; ky < kh; ++ky) {
            int32_t oh0, oh1;
            tap_range(ky, g->stride_h, g->pad_top, g->dil_h, in->h, out->h, &oh0, &oh1);
            for (kx = 0; kx < kw; ++kx) {
                const int32_t ih0 = oh0 * g->stride_h - g->pad_top + ky * g->dil_h;
                int32_t ow0, ow1, iw0;
                tap_range(kx, g->stride_w, g->pad_left, g->dil_w, in->w, out->w, &ow0, &ow1);
                iw0 = ow0 * g->stride_w - g->pad_left + kx * g->dil_w;
                for (j = 0; j < k; ++j)
                    gw_block(grad_y + (oh0 * out->w + ow0) * oc + o0, x + (ih0 * in->w + iw0) * xc + j, oh1 - oh0,
                             ow1 - ow0, out->w * oc, g->stride_h * in->w * xc, oc, g->stride_w * xc, nb,
                             buf + ((ky * kw + kx) * k + j) * TT_BLOCK);
            }
        }
        for (o = o0; o < o0 + nb; ++o) {
            for (e = 0; e < per_out; ++e) gw[e] = buf[e * TT_BLOCK + (o - o0)];
            update_channel(ch, spatial, o, w, gw, &hp, u);
        }
    }
}

static void conv_update_weight(const tt_conv_shape *s, const tt_channels *ch, TT_W *w, const TT_T *x,
                               const TT_T *grad_y, const tt_update *u, TT_T *gw)
{
    const tt_hparams hp = *u->hp;
    const tt_dims *in = s->in, *out = s->out;
    const tt_geom *g = s->g;
    const int32_t kh = s->kh, kw = s->kw, spatial = kh * kw, k = ch->k, xc = ch->x_channels;
    const int32_t oc = out->c, xstep = g->stride_w * xc;
    int32_t o, ky, kx, j;
    if (k < TT_LANES && spatial * k * TT_BLOCK * (int32_t)sizeof(TT_T) <= TT_SMALL_K_BYTES) {
        conv_update_weight_small_k(s, ch, w, x, grad_y, u, gw);
        return;
    }
    for (o = 0; o < oc; ++o) {
        for (ky = 0; ky < kh; ++ky) {
            int32_t oh0, oh1;
            tap_range(ky, g->stride_h, g->pad_top, g->dil_h, in->h, out->h, &oh0, &oh1);
            for (kx = 0; kx < kw; ++kx) {
                int32_t ow0, ow1;
                tap_range(kx, g->stride_w, g->pad_left, g->dil_w, in->w, out->w, &ow0, &ow1);
                for (j = 0; j < k; j += TT_BLOCK) {      /* four vectors of channels */
                    const int32_t ih0 = oh0 * g->stride_h - g->pad_top + ky * g->dil_h;
                    const int32_t iw0 = ow0 * g->stride_w - g->pad_left + kx * g->dil_w;
                    gw_block(x + (ih0 * in->w + iw0) * xc + j, grad_y + (oh0 * out->w + ow0) * oc + o, oh1 - oh0,
                             ow1 - ow0, g->stride_h * in->w * xc, out->w * oc, xstep, oc, k - j,
                             gw + (ky * kw + kx) * k + j);
                }
            }
        }
        update_channel(ch, spatial, o, w, gw, &hp, u);
    }
}

#endif   /* TT_T && TT_V */

#endif
