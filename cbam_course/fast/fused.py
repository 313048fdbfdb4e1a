"""The fused CBAM step: the same maths as ChannelAttention then SpatialAttention, made cheap.

Why it exists. CBAM adds under 1% of the network's FLOPs, yet the plain modules in attention.py make
a CPU training step markedly longer: each of their ~10 element-wise operations reads and writes a
whole (B, C, H, W) tensor, autograd adds as many again on the way back (zero-filled buffers for
the max-pool gradients, materialised mean gradients), ``torch.max(dim=...)`` with indices is far
slower than ``torch.amax``, and the 7x7 convolution from 2 channels to 1 is slow in oneDNN, which
is built for many channels (docs/performance.md, "Why the fused step is written as it is", has the
measurements behind each choice below). Here forward and backward are written
out by hand: every big tensor is touched a few times, the maxima come from ``amax``, and the
small convolution is a product of spectra (FFT). A per-module
:class:`Workspace` keeps the step's private big tensors from one training step to the next,
because fresh memory costs page faults. It also runs under CPU autocast (bfloat16), where some
of torch's reductions need the workarounds below.

What is left: on this path a CBAM step still reads or writes each (B, C, H, W) tensor 25-30
times, which eager PyTorch cannot fuse further; see docs/performance.md for the numbers.

Gradients at ties: where several values share a maximum, the Day 50 lesson's max-with-indices gives the
gradient to one of them. So does this path for the max over positions on maps of 32x32 and
up (not always the same one as the Day 50 lesson's at a tie); elsewhere it splits the gradient evenly
between them, as ``torch.amax`` does. All are valid; in AttentionCNN the tied values are ReLU
zeros, whose gradient ReLU discards.

The plain modules in ``attention.py`` are the reference. ``FastCBAM.forward`` (``modules.py``) takes
this path on the CPU where ``kernels.py``'s compiled loops do not apply: channels_last inputs,
bfloat16 under CPU autocast, or no numba installed. ``tests/fast/`` holds all of them equal.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["fused_cbam", "Workspace", "mean_over_positions"]


def fused_cbam(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, conv_w: torch.Tensor,
               workspace: "Workspace | None" = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CBAM on ``x`` with the shared MLP's weights ``w1`` (C/r, C), ``w2`` (C, C/r) and the
    spatial conv's weight ``conv_w`` (1, 2, k, k). Returns the output and, detached, the channel
    weights (B, C, 1, 1) and the spatial map (B, 1, H, W).

    ``workspace`` (one :class:`Workspace` per module) lets training steps reuse their scratch
    memory; it is used only when a gradient will be needed, so evaluation holds no extra memory.
    """
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, w1, w2, conv_w))
    return _FusedCBAM.apply(x, w1, w2, conv_w, workspace if needs_grad else None)


# Reductions over channels (dim 1) or positions (dims 2, 3) of a (B, C, H, W) tensor. torch's
# own are fast in float32; in bfloat16 (CPU autocast) some of its CPU kernels are many times
# slower than a pass over the data should be (sums and means in any layout, amax over channels or
# positions in channels_last), so there sums become matrix products with a ones vector and
# maxima use the pooling kernel or a halving tree.


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _sum(x: torch.Tensor, over_channels: bool) -> torch.Tensor:
    """``x.sum(1, keepdim=True)`` (B, 1, H, W) or ``x.sum((2, 3), keepdim=True)`` (B, C, 1, 1)."""
    b, c, h, w = x.shape
    dims = (1,) if over_channels else (2, 3)
    if x.dtype != torch.bfloat16 or not (x.is_contiguous() or _channels_last(x)):
        return x.sum(dims, keepdim=True)
    if x.is_contiguous():  # NCHW: (B, C, HW)
        flat = x.view(b, c, h * w)
        out = x.new_ones(1, c) @ flat if over_channels else flat @ x.new_ones(h * w, 1)
    else:  # channels_last: (B, HW, C)
        flat = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        out = flat @ x.new_ones(c, 1) if over_channels else x.new_ones(1, h * w) @ flat
    return out.view(b, 1, h, w) if over_channels else out.view(b, c, 1, 1)


def mean_over_positions(x: torch.Tensor) -> torch.Tensor:
    """``x.mean((2, 3), keepdim=True)``, (B, C, 1, 1), through :func:`_sum` (fast in CPU bfloat16)."""
    return _sum(x, over_channels=False) / (x.shape[2] * x.shape[3])


def _amax(x: torch.Tensor, over_channels: bool) -> torch.Tensor:
    """``x.amax(1, keepdim=True)`` (B, 1, H, W) or ``x.amax((2, 3), keepdim=True)`` (B, C, 1, 1)."""
    if x.dtype != torch.bfloat16 or not _channels_last(x):
        return x.amax(1 if over_channels else (2, 3), keepdim=True)
    if not over_channels:
        return F.max_pool2d(x, x.shape[2:])
    t = x.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous: halve the channels until one is left
    while t.shape[-1] > 1:
        n = t.shape[-1]
        half = torch.maximum(t[..., : n // 2], t[..., n // 2: n // 2 * 2])
        t = torch.cat([half, t[..., n // 2 * 2:]], dim=-1) if n % 2 else half
    return t.permute(0, 3, 1, 2)


def _mul_add(t: torch.Tensor, m: torch.Tensor, a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``t * m + a`` for a full-size ``t`` and broadcast ``m`` and ``a``, into ``out`` (may be
    ``t``) or a new tensor. ``torch.addcmul(a, t, m)`` is one pass, but its CPU kernel is several
    times slower when ``a`` is broadcast along the innermost dimension in memory (W in NCHW, C in
    channels_last); there a multiply then an in-place add is faster."""
    if out is None:
        out = torch.empty_like(t)
    inner_broadcast = a.shape[1] == 1 if _channels_last(t) else a.shape[-1] == 1 < t.shape[-1]
    if inner_broadcast:
        return torch.mul(t, m, out=out).add_(a)
    return torch.addcmul(a, t, m, out=out)


def _add_max_grad(total: torch.Tensor, values: torch.Tensor, maxima: torch.Tensor, grad: torch.Tensor,
                  over_channels: bool, scratch: torch.Tensor) -> None:
    """Add the gradient of the max over channels or positions to ``total``: ``grad`` goes to
    the positions that hold the maximum, shared evenly between ties. The 0/1 mask is written
    as floats into ``scratch`` (boolean masks cost several times more here)."""
    hit = torch.eq(values, maxima, out=scratch)
    total.addcmul_(hit, grad / _sum(hit, over_channels))


# Where maps have at least this many positions (32x32 and up), the max over positions comes with
# the index of one maximum, so its backward is a scatter of one value per (sample, channel)
# instead of a 0/1 mask, its count and a multiply-add over the whole tensor: about half the
# time at 32x32. torch's index-returning reductions are much slower than ``amax``, so the index
# is found in two small steps; on 16x16 and 8x8 maps those cost more than the mask.
_INDEXED_MAX_POSITIONS = 1024


def _amax_positions_indexed(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.amax((2, 3), keepdim=True)`` for a contiguous (B, C, H, W) ``x`` with H*W a multiple of
    32, and the flat position (B, C, 1) of one maximum in each map.

    Each map is read as rows of 32 positions: the maxima down the rows (32 per map, one fast
    pass over ``x``) show which offset holds the map's maximum, and that offset's column
    (H*W/32 values) shows which row. Index searches then only see small tensors."""
    b, c, h, w = x.shape
    rows = x.view(b * c, h * w // 32, 32)
    column_max = rows.amax(1)  # (B*C, 32)
    offset = column_max.argmax(1, keepdim=True)  # first offset holding the maximum
    row = rows.gather(2, offset.unsqueeze(1).expand(-1, rows.shape[1], 1)).argmax(1)  # (B*C, 1)
    return column_max.gather(1, offset).view(b, c, 1, 1), (row * 32 + offset).view(b, c, 1)


def _sum_of_products(a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum((2, 3))``, shape (B, C), for two (B, C, H, W) tensors.

    Multiply-then-sum writes the product and reads it back. For NCHW float tensors batch norm's
    backward does the same sum in one pass over ``a`` and ``b``: make every (sample, channel) pair
    a channel of its own, with mean 0 and variance 1, and its weight gradient is exactly
    ``sum(a * b)`` over the positions, in about half the time."""
    n, c, h, w = a.shape
    if a.dtype in (torch.float32, torch.float64) and a.is_contiguous() and b.is_contiguous():
        zeros, ones = a.new_zeros(n * c), a.new_ones(n * c)
        return torch.ops.aten.native_batch_norm_backward(
            a.view(1, n * c, h, w), b.view(1, n * c, h, w), None, zeros, ones, None, None, False, 0.0,
            [False, True, False])[1].view(n, c)
    return _sum(torch.mul(a, b, out=scratch), over_channels=False).view(n, c)


# The spatial attention's k x k convolution from 2 channels to 1, through the FFT. oneDNN's
# kernels are built for many channels; with 2 in and 1 out, the FFT form takes about half their
# time at 32x32. The convolution theorem makes a
# convolution a product of spectra. The FFT's convolution is circular: what falls off one edge
# comes back at the other. Zero-padding each map to at least H + k // 2 (and the kernel's k)
# keeps the wrapped-around part out of the H x W window that ``F.conv2d(s, w, padding=k // 2)``
# returns, so the result is the same cross-correlation (to float rounding: ~1e-6 in float32).
# The full linear convolution would need H + k - 1; the smaller size is ~25% less FFT work.


def _fft_size(n: int) -> int:
    """The smallest even m >= n with no prime factor above 5 (sizes a real FFT handles fastest)."""
    m = n + n % 2
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 2


def _fft_plan(h: int, w: int, k: int) -> tuple[int, tuple[int, int]]:
    """The padding ``k // 2`` of a k x k convolution on (h, w) maps, and the FFT size to use.

    Why h + k // 2 is enough: the window kept is positions p .. p + h - 1 of the full
    convolution (length h + 2p), and a circular FFT of size n adds the full result shifted by
    +-n. With n >= h + p both shifted copies miss the window; the kernel needs n >= k too."""
    p = k // 2
    return p, (_fft_size(max(h + p, k)), _fft_size(max(w + p, k)))


def _spectral_conv(s: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.conv2d(s, w, padding=k // 2)`` for ``s`` (B, 2, H, W) and ``w`` (1, 2, k, k), by FFT.
    Returns the result (B, 1, H, W) and the spectrum of ``s``, which the backward reuses."""
    (h, wd), k = s.shape[-2:], w.shape[-1]
    p, n = _fft_plan(h, wd, k)
    s_hat = torch.fft.rfft2(s, s=n)
    w_hat = torch.fft.rfft2(w.flip(-2, -1), s=n)  # flipped: a convolution computes a correlation
    out = torch.fft.irfft2((s_hat * w_hat).sum(1, keepdim=True), s=n)
    return out[..., p:p + h, p:p + wd], s_hat


def _spectral_conv_backward(g: torch.Tensor, s_hat: torch.Tensor, w: torch.Tensor,
                            weight_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`_spectral_conv` for the output gradient ``g`` (B, 1, H, W): for ``s``
    (B, 2, H, W), and for ``w`` (1, 2, k, k) when ``weight_grad``."""
    (h, wd), k = g.shape[-2:], w.shape[-1]
    p, n = _fft_plan(h, wd, k)
    g_hat = torch.fft.rfft2(g, s=n)
    g_s = torch.fft.irfft2(g_hat * torch.fft.rfft2(w, s=n), s=n)[..., p:p + h, p:p + wd]
    if not weight_grad:
        return g_s, None
    corr = torch.fft.irfft2((g_hat.conj() * s_hat).sum(0, keepdim=True), s=n)  # lags mod n
    return g_s, torch.roll(corr, (p, p), (-2, -1))[..., :k, :k]


class Workspace:
    """Scratch tensors that one CBAM module reuses from one training step to the next.

    On the CPU a fresh (B, C, H, W) tensor can cost more than the arithmetic done in it: its
    memory comes back from the operating system page by page the first time it is written.
    The fused step keeps the two big tensors that never leave it here: the channel-weighted
    features ``y`` and a scratch buffer for the backward pass. Only its output and its input
    gradient are fresh each step. A stamp records which forward pass wrote ``y``, so the
    backward pass recomputes ``y`` whenever another forward pass has overwritten it since.
    Nothing here is part of the model's state: copies and pickles of a module start empty.
    One module's workspace serves one thread at a time.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}
        self._stamps: dict[str, int] = {}
        self._count = 0

    def get(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """A tensor shaped and laid out like ``like`` (contents undefined), kept for next time."""
        buf = self._buffers.get(name)
        if (buf is None or buf.shape != like.shape or buf.dtype != like.dtype
                or buf.device != like.device or buf.stride() != like.stride()):
            buf = self._buffers[name] = torch.empty_like(like)
            self._stamps.pop(name, None)
        return buf

    def stamp(self, name: str) -> int:
        """Mark ``name`` as just written; returns the stamp to check it with later."""
        self._count += 1
        self._stamps[name] = self._count
        return self._count

    def holds(self, name: str, stamp: int) -> bool:
        """True when ``name`` still holds what was written when ``stamp`` was taken."""
        return self._stamps.get(name) == stamp

    def __deepcopy__(self, memo: dict) -> "Workspace":
        return Workspace()

    def __getstate__(self) -> dict:
        return Workspace().__dict__


class _FusedCBAM(torch.autograd.Function):
    """``out = y * sa`` with ``y = x * ca``: CBAM's forward and backward written out by hand.

    Inputs: x (B, C, H, W), the MLP weights w1 (C/r, C) and w2 (C, C/r), the conv weight
    (1, 2, k, k), and a :class:`Workspace` (or None: fresh tensors, as when no gradient is
    needed). Outputs: the features, and (detached) the channel attention (B, C, 1, 1) and the
    spatial map (B, 1, H, W) for ``record_attention``.
    """

    @staticmethod
    def forward(ctx, x, w1, w2, conv_w, workspace):
        # Under CPU autocast x arrives in bfloat16: compute in x's dtype, as autocast would.
        ctx.weight_dtype = w1.dtype
        ctx.workspace = workspace
        with torch.autocast("cpu", enabled=False):
            return _FusedCBAM._forward(ctx, x, w1.to(x.dtype), w2.to(x.dtype), conv_w)

    @staticmethod
    def _forward(ctx, x, w1, w2, conv_w):
        b, c, hh, ww = x.shape
        ws = ctx.workspace
        # channel attention: both descriptors through the shared MLP as one (2B, C) batch
        avg = _sum(x, over_channels=False) / (hh * ww)
        indexed = (x.dtype in (torch.float32, torch.float64) and x.is_contiguous()
                   and hh * ww >= _INDEXED_MAX_POSITIONS and hh * ww % 32 == 0)
        mx, where = _amax_positions_indexed(x) if indexed else (_amax(x, over_channels=False), None)
        d = torch.cat([avg, mx]).view(2 * b, c)
        h = torch.relu(d @ w1.t())
        z = h @ w2.t()
        ca = torch.sigmoid(z[:b] + z[b:]).view(b, c, 1, 1)
        y = x * ca if ws is None else torch.mul(x, ca, out=ws.get("y", x))
        ctx.y_stamp = None if ws is None else ws.stamp("y")
        # spatial attention: channel mean and max, the k x k conv (by FFT, in at least float32), a sigmoid
        s = torch.cat([_sum(y, over_channels=True) / c, _amax(y, over_channels=True)], dim=1)
        ctx.fft_dtype = torch.promote_types(x.dtype, torch.float32)
        pre, s_hat = _spectral_conv(s.to(ctx.fft_dtype), conv_w.to(ctx.fft_dtype))
        sa = torch.sigmoid(pre).to(x.dtype)
        out = y * sa
        ctx.save_for_backward(x, s, s_hat, sa, ca, d, h, mx, where, w1, w2, conv_w)
        ctx.mark_non_differentiable(ca, sa)
        return out, ca, sa

    @staticmethod
    @once_differentiable
    def backward(ctx, g, _ca_grad, _sa_grad):
        x, s, s_hat, sa, ca, d, h, mx, where, w1, w2, conv_w = ctx.saved_tensors
        b, c, hh, ww = x.shape
        ws = ctx.workspace if ctx.workspace is not None else Workspace()
        g = g.contiguous(memory_format=torch.channels_last if _channels_last(x) else torch.contiguous_format)
        y = ws.get("y", x)
        if not ws.holds("y", ctx.y_stamp):  # another forward pass wrote it since: compute it again
            torch.mul(x, ca, out=y)
            ctx.y_stamp = ws.stamp("y")
        scratch = ws.get("scratch", x)  # reused for each product and mask below
        # out = y * sa: through the sigmoid and the k x k conv
        g_sa = _sum(torch.mul(g, y, out=scratch), over_channels=True)
        g_pre = torch.ops.aten.sigmoid_backward(g_sa, sa).to(ctx.fft_dtype)  # g_sa * sa * (1 - sa), one op
        g_s, g_conv = _spectral_conv_backward(g_pre, s_hat, conv_w.to(ctx.fft_dtype), ctx.needs_input_grad[3])
        g_s = g_s.to(x.dtype).contiguous()
        # y: directly (g * sa), through the channel mean, through the channel max
        g_y = _mul_add(g, sa, g_s[:, :1] / c)  # becomes the input gradient below
        _add_max_grad(g_y, y, s[:, 1:], g_s[:, 1:], over_channels=True, scratch=scratch)
        # y = x * ca: the channel attention, back through the sigmoid and the shared MLP
        g_ca = _sum_of_products(g_y, x, scratch)
        g_z = torch.ops.aten.sigmoid_backward(g_ca, ca.view(b, c))
        g_z2 = torch.cat([g_z, g_z])
        g_w2 = g_z2.t() @ h
        g_h = torch.ops.aten.threshold_backward(g_z2 @ w2, h, 0)  # through the ReLU: zero where h <= 0
        g_w1 = g_h.t() @ d
        g_d = g_h @ w1
        # x: directly (g_y * ca), through the spatial average, through the spatial max
        g_x = _mul_add(g_y, ca, (g_d[:b] / (hh * ww)).view(b, c, 1, 1), out=g_y)  # in place
        if where is not None:  # the maximum's position is known: one value per (sample, channel)
            g_x.view(b, c, hh * ww).scatter_add_(2, where, g_d[b:].view(b, c, 1))
        else:
            _add_max_grad(g_x, x, mx, g_d[b:].view(b, c, 1, 1), over_channels=False, scratch=scratch)
        dtype = ctx.weight_dtype
        return g_x, g_w1.to(dtype), g_w2.to(dtype), None if g_conv is None else g_conv.to(dtype), None
