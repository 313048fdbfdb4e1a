"""CBAM's CPU training step as a few compiled loops (numba): the Day 50 lesson's maths, far fewer passes.

Why it exists. On a CPU, CBAM's cost is memory traffic, not arithmetic: each element-wise step
reads and writes a whole (B, C, H, W) feature map. Eager PyTorch runs every step as its own pass,
so even the hand-fused step in ``fused.py`` makes some 26 passes per training step. Here numba
compiles plain Python loops to machine code, and one loop does several steps while the data is
in cache. Per sample, one loop finds the channel attention (the shared MLP) and the channel mean
and max of the weighted features; another writes the output. The backward pass is two loops,
the second of which also runs the MLP's backward for that sample. Only the pooled descriptors
and the 7x7 convolution (by FFT, from ``fused.py``) stay in PyTorch.

The channel-weighted features ``y = x * ca`` are never stored: each loop recomputes them from
``x``, which costs a multiply and saves a whole tensor's trip to memory. The loops run over the
samples of a batch in parallel (``numba.prange``), and each sample's sums are taken in one fixed
order, so the loops give the same bits on any number of threads.

Gradients at ties go to the first position or channel that holds the maximum, as the Day 50 lesson's
max-with-indices does.

``compiled_cbam`` needs numba and takes contiguous NCHW float32 or float64 CPU tensors;
``FastCBAM.forward`` (``modules.py``) checks both, and that numba has a thread pool for its loops
(``parallel_loops``), and otherwise runs ``fused.py``'s eager step. The first call
compiles the loops (a few seconds) and caches them on disk for the next process.
``tests/fast/test_fused.py`` (its ``fused_path`` fixture) holds this path to the Day 50 lesson's modules.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

from .fused import _spectral_conv, _spectral_conv_backward

__all__ = ["compiled_cbam", "parallel_loops"]

# reassoc lets a sum over a row use vector registers (it may also regroup a product of three,
# which only moves rounding). The max masks compare single products x * ca, which no flag
# changes, so a recomputed y equals the forward's bit for bit.
_jit = numba.njit(parallel=True, fastmath={"reassoc", "nsz"}, cache=True)


@numba.njit(cache=True)
def _typed(x, value):
    """``value`` in ``x``'s dtype. Numba, like NumPy, computes float32 with a Python int or float
    in float64; typed constants keep a float32 loop in float32 (twice the lanes)."""
    c = np.empty(1, x.dtype)
    c[0] = value
    return c[0]


@_jit
def _channel_attention_forward(x, d, w1, w2, ca, h, s):
    """For each sample b: the MLP on its descriptors ``d[b]`` (average) and ``d[B + b]`` (max)
    gives the channel attention ``ca[b]`` (and the hidden ReLU outputs ``h``); then the channel
    mean and max of ``x[b] * ca[b]`` go to ``s[b, 0]`` and ``s[b, 1]``."""
    batch, channels, positions = x.shape
    hidden = w1.shape[0]
    zero, one, inv_channels = _typed(x, 0), _typed(x, 1), _typed(x, 1 / channels)
    for b in numba.prange(batch):
        z = np.zeros(channels, x.dtype)
        for k in range(2):  # the average's branch, then the max's: the MLP is shared
            dk = d[k * batch + b]
            for r in range(hidden):
                t = zero
                for c in range(channels):
                    t += w1[r, c] * dk[c]
                t = max(t, zero)
                h[k * batch + b, r] = t
                for c in range(channels):
                    z[c] += w2[c, r] * t
        for c in range(channels):
            ca[b, c] = one / (one + np.exp(-z[c]))
        mean, top = s[b, 0], s[b, 1]
        for p in range(positions):
            y = x[b, 0, p] * ca[b, 0]
            mean[p] = y
            top[p] = y
        for c in range(1, channels):
            w, xr = ca[b, c], x[b, c]
            for p in range(positions):
                y = xr[p] * w
                mean[p] += y
                top[p] = max(top[p], y)
        for p in range(positions):
            mean[p] *= inv_channels


@_jit
def _apply_attention(x, ca, sa, out):
    """``out = (x * ca) * sa``: the channel attention, then the spatial map."""
    batch, channels, positions = x.shape
    for b in numba.prange(batch):
        for c in range(channels):
            w, xr, o, m = ca[b, c], x[b, c], out[b, c], sa[b]
            for p in range(positions):
                o[p] = (xr[p] * w) * m[p]


@_jit
def _spatial_map_grad(g, x, ca, g_sa):
    """The gradient of the spatial map: ``g_sa[b, p] = sum over c of g * y``, ``y = x * ca``."""
    batch, channels, positions = x.shape
    for b in numba.prange(batch):
        acc = g_sa[b]
        acc[:] = 0
        for c in range(channels):
            w, xr, gr = ca[b, c], x[b, c], g[b, c]
            for p in range(positions):
                acc[p] += gr[p] * (xr[p] * w)


@_jit
def _features_grad(g, x, ca, sa, s, g_s, mx, h, w1, w2, gx, g_z, g_h):
    """The input gradient ``gx`` and, for the weight gradients, ``g_z`` (at the MLP's output)
    and ``g_h`` (at its hidden layer), one sample at a time:

    1. ``g_y = g * sa`` plus the channel mean's and the channel max's gradients (``g_s``);
       meanwhile the channel attention' gradient ``sum over positions of g_y * x``;
    2. back through the sigmoid and the shared MLP to the two descriptors;
    3. ``gx = g_y * ca`` plus the spatial average's and the spatial max's gradients.
    """
    batch, channels, positions = x.shape
    hidden = w1.shape[0]
    zero, one = _typed(x, 0), _typed(x, 1)
    inv_positions, inv_channels = _typed(x, 1 / positions), _typed(x, 1 / channels)
    for b in numba.prange(batch):
        base = g_s[b, 0] * inv_channels       # the channel mean's gradient, the same for every channel
        top, g_top = s[b, 1], g_s[b, 1]
        taken = np.zeros(positions, x.dtype)  # 1 where an earlier channel already held the maximum
        g_ca = np.zeros(channels, x.dtype)
        ties = np.zeros(channels, x.dtype)    # how often each map's maximum occurs
        for c in range(channels):
            w, xr, gr, o, m = ca[b, c], x[b, c], g[b, c], gx[b, c], mx[b, c]
            acc, n = g_ca[c], ties[c]
            for p in range(positions):
                hit = (xr[p] * w == top[p]) * (one - taken[p])
                taken[p] += hit
                v = gr[p] * sa[b, p] + base[p] + hit * g_top[p]
                o[p] = v
                acc += v * xr[p]
                n += xr[p] == m
            g_ca[c], ties[c] = acc, n
        for c in range(channels):  # through the sigmoid
            g_z[b, c] = g_ca[c] * ca[b, c] * (one - ca[b, c])
        g_d = np.zeros((2, channels), x.dtype)
        for k in range(2):  # through the shared MLP, once per branch
            for r in range(hidden):
                t = zero
                if h[k * batch + b, r] > zero:  # the ReLU
                    for c in range(channels):
                        t += g_z[b, c] * w2[c, r]
                g_h[k * batch + b, r] = t
                for c in range(channels):
                    g_d[k, c] += t * w1[r, c]
        for c in range(channels):
            w, xr, o, m = ca[b, c], x[b, c], gx[b, c], mx[b, c]
            mean_grad, max_grad = g_d[0, c] * inv_positions, g_d[1, c]
            if ties[c] == 1:  # the usual case: the maximum is in one place
                for p in range(positions):
                    o[p] = o[p] * w + mean_grad + (xr[p] == m) * max_grad
            else:  # a tie: the first position that holds it takes the gradient
                first = _first_index(xr, m)
                for p in range(positions):
                    o[p] = o[p] * w + mean_grad + (p == first) * max_grad


@numba.njit(cache=True)
def _first_index(row, value):
    """The first index at which ``row`` holds ``value`` (the last index if none: a NaN).
    (Inside a parallel loop, numba 0.68 lost a single-element ``o[first] += v`` after such a
    search; the gradient is added in the loop over the row instead.)"""
    for i in range(row.shape[0]):
        if row[i] == value:
            return i
    return row.shape[0] - 1


@numba.njit(parallel=True, cache=True)
def _fill_in_parallel(a):
    for i in numba.prange(a.shape[0]):
        a[i] = i


def parallel_loops() -> bool:
    """True when numba runs parallel loops on a thread pool that stays awake between them
    (OpenMP or TBB). Its fallback, ``workqueue``, wakes its threads for every loop, which made CBAM's
    training step slower than the PyTorch fused step (docs/performance.md), so ``CBAM`` uses the
    compiled loops only where this is True."""
    _fill_in_parallel(np.zeros(2))  # the first parallel call makes numba pick its threading layer
    return numba.threading_layer() in ("omp", "tbb")


def _arrays(*tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.detach().numpy() for t in tensors]


def compiled_cbam(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, conv_w: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CBAM on a contiguous NCHW float32 or float64 CPU tensor ``x``, with the shared MLP's
    weights ``w1`` (C/r, C), ``w2`` (C, C/r) and the spatial conv's weight ``conv_w`` (1, 2, k, k).
    Returns the output and, detached, the channel attention (B, C, 1, 1) and the spatial map
    (B, 1, H, W), like ``fused.fused_cbam``."""
    numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    return _CompiledCBAM.apply(x, w1, w2, conv_w)


class _CompiledCBAM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, w2, conv_w):
        b, c, hh, ww = x.shape
        w1, w2, conv_w = (t.to(x.dtype).contiguous() for t in (w1, w2, conv_w))
        x3 = x.view(b, c, hh * ww)
        d = torch.cat([x3.sum(2).div_(hh * ww), x3.amax(2)])  # (2B, C): average, then max
        ca, h, s = x.new_empty(b, c), x.new_empty(2 * b, w1.shape[0]), x.new_empty(b, 2, hh * ww)
        _channel_attention_forward(*_arrays(x3, d, w1, w2, ca, h, s))
        pre, s_hat = _spectral_conv(s.view(b, 2, hh, ww), conv_w)
        sa = torch.sigmoid(pre)
        out = torch.empty_like(x)
        _apply_attention(*_arrays(x3, ca, sa.view(b, -1), out.view(b, c, -1)))
        ctx.save_for_backward(x, s, s_hat, sa, ca, d, h, w1, w2, conv_w)
        channel_weights = ca.view(b, c, 1, 1)
        ctx.mark_non_differentiable(channel_weights, sa)
        return out, channel_weights, sa

    @staticmethod
    def backward(ctx, g, _ca_grad, _sa_grad):
        x, s, s_hat, sa, ca, d, h, w1, w2, conv_w = ctx.saved_tensors
        b, c, hh, ww = x.shape
        x3, g3 = x.view(b, c, -1), g.contiguous().view(b, c, -1)
        g_sa = x.new_empty(b, hh * ww)
        _spatial_map_grad(*_arrays(g3, x3, ca, g_sa))
        g_pre = torch.ops.aten.sigmoid_backward(g_sa.view(b, 1, hh, ww), sa)
        g_s, g_conv = _spectral_conv_backward(g_pre, s_hat, conv_w, ctx.needs_input_grad[3])
        gx, g_z, g_h = torch.empty_like(x), x.new_empty(b, c), torch.empty_like(h)
        _features_grad(*_arrays(g3, x3, ca, sa.view(b, -1), s, g_s.reshape(b, 2, -1).contiguous(), d[b:],
                                h, w1, w2, gx.view(b, c, -1), g_z, g_h))
        g_w1 = g_h.t() @ d
        g_w2 = g_z.t() @ (h[:b] + h[b:])
        return gx, g_w1, g_w2, g_conv
