"""FastCBAM's CPU step (``accelerate``) is the Day 50 lesson's maths: same outputs, same gradients.

It has two forms: numba's compiled loops (kernels.py) for contiguous float32/float64 inputs, and
the PyTorch step (fused.py) for the rest and where numba is missing. Tests that take the
``fused_path`` fixture (conftest.py) run on both and check that the intended one ran; the
compiled one is marked ``numba``. The rest need no numba. test_kernels.py holds what only the
compiled loops do."""
import copy
import pickle

import pytest
import torch

import cbam_course as cc
import cbam_course.fast.modules as modules
from cbam_course import day50
from cbam_course.fast import accelerate
from day50_checks import assert_training_step_matches_day50
from fast_helpers import accelerated_copy, assert_same_outputs_and_gradients, count_calls, grads


@pytest.mark.parametrize("channels,ratio,kernel,shape,dtype", [
    (64, 16, 7, (3, 64, 9, 7), torch.float32),
    (128, 16, 3, (2, 128, 4, 4), torch.float64),
    (16, 4, 7, (2, 16, 32, 32), torch.float64),  # 32x32 and up: the PyTorch step indexes the spatial max
    (32, 8, 7, (2, 32, 48, 32), torch.float32),
])
def test_fused_cbam_matches_seed(channels, ratio, kernel, shape, dtype, fused_path):
    _check_matches_day50(fused_path, channels, ratio, kernel, shape, dtype, channels_last=False)


def test_fused_cbam_matches_seed_in_channels_last(monkeypatch):
    """channels_last inputs take the PyTorch step (with the loops on), and the output keeps their layout."""
    ran = count_calls(monkeypatch, modules, "fused_cbam")
    fast = lambda m: accelerate(m, keep_memory=False)  # noqa: E731
    _check_matches_day50(fast, 32, 8, 5, (2, 32, 16, 16), torch.float32, channels_last=True)
    assert ran


def _check_matches_day50(fast, channels, ratio, kernel, shape, dtype, channels_last):
    torch.manual_seed(0)
    theirs = day50.CBAM(channels, ratio=ratio, kernel_size=kernel).to(dtype)
    ours = cc.CBAM(channels, ratio=ratio, kernel_size=kernel).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    ours = fast(ours)
    assert isinstance(ours, modules.FastCBAM)
    x = torch.randn(*shape, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out_a, gx_a, gp_a = grads(ours, x)
    out_b, gx_b, gp_b = grads(theirs, x)
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_a, gx_b, atol=1e-5, rtol=1e-4)
    assert len(gp_a) == len(gp_b) == 3
    for a, b in zip(gp_a, gp_b):  # fc.0, fc.2 and the 7x7 conv weights
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    if channels_last:
        assert out_a.is_contiguous(memory_format=torch.channels_last)


def test_fused_workspace_survives_interleaved_passes(fused_path):
    """The PyTorch fused step reuses its scratch memory between steps. Two forward passes before
    one backward (gradient accumulation), a backward run twice (retain_graph) and a forward in
    between must all still give the Day 50 lesson's gradients, on both paths."""
    torch.manual_seed(0)
    theirs = day50.CBAM(32, ratio=8)
    ours = cc.CBAM(32, ratio=8)
    ours.load_state_dict(theirs.state_dict())
    ours = fused_path(ours)
    x1, x2 = torch.randn(2, 32, 8, 8), torch.randn(2, 32, 8, 8)

    def accumulated(m, retain):
        m.zero_grad(set_to_none=True)
        a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
        out1, out2 = m(a), m(b)          # the second forward overwrites the first one's scratch
        loss = (out1 * torch.linspace(-1, 1, out1.numel()).view_as(out1)).sum() + out2.square().sum()
        loss.backward(retain_graph=retain)
        if retain:
            m(torch.randn(3, 32, 8, 8))  # a forward of another batch size in between
            loss.backward()              # the same graph again: every gradient doubles
        return a.grad, b.grad, [p.grad for p in m.parameters()]

    for retain in (False, True):
        ga, gb, gp = accumulated(ours, retain)
        ta, tb, tp = accumulated(theirs, retain)
        torch.testing.assert_close(ga, ta, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(gb, tb, atol=1e-5, rtol=1e-4)
        for a, b in zip(gp, tp):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_fused_workspace_is_for_training_only_and_not_copied():
    m = accelerate(cc.CBAM(32), loops=False, keep_memory=False)  # the compiled loops keep no workspace
    with torch.no_grad():
        m(torch.randn(2, 32, 8, 8))
    assert not getattr(m, "_workspace", None) or not m._workspace._buffers  # evaluation keeps nothing
    m(torch.randn(2, 32, 8, 8, requires_grad=True)).sum().backward()
    assert set(m._workspace._buffers) == {"y", "scratch"}
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert type(clone) is modules.FastCBAM and clone.use_loops is False
        assert not clone._workspace._buffers
        torch.testing.assert_close(clone(torch.ones(1, 32, 4, 4)), m(torch.ones(1, 32, 4, 4)))
    assert set(m.state_dict()) == set(cc.CBAM(32).state_dict())


def test_recording_runs_the_plain_formula_and_the_fused_path_returns_after(fused_path):
    """record_attention hooks the sigmoids, which only the plain formula calls: while recording an
    accelerated CBAM falls back to it (the same maps as the plain module), and afterwards its
    fused path runs again (the fixture checks that it ran)."""
    torch.manual_seed(0)
    plain = cc.CBAM(32, ratio=4)
    fast = fused_path(copy.deepcopy(plain))
    x = torch.randn(2, 32, 8, 8)
    maps = []
    for m in (fast, plain):
        with cc.record_attention(m) as mods:
            m(x)
        maps.append({n: mod.last_attention for n, mod in mods.items()})
        assert not any(mod.sigmoid._forward_hooks for mod in mods.values())  # switched off again
    recorded, plain_maps = maps
    assert set(recorded) == set(plain_maps) == {"channel_attention", "spatial_attention"}
    for n in recorded:
        assert not recorded[n].requires_grad
        torch.testing.assert_close(recorded[n], plain_maps[n])
    torch.testing.assert_close(fast(x), plain(x))  # not recording: the fused path, the same output


def test_fused_cbam_keeps_the_input_checks():
    m = accelerate(cc.CBAM(16, ratio=4), keep_memory=False)
    with pytest.raises(ValueError, match="built for 16 channels"):
        m(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="Add a batch dimension"):
        m(torch.randn(16, 4, 4))


def test_training_step_gradients_match_the_day50_cnn(fused_path):
    """A whole training step (train mode, dropout, BatchNorm, ReLU zeros) gives the Day 50 lesson's gradients."""
    assert_training_step_matches_day50(fused_path(cc.AttentionCNN(attention="cbam", width=64)))


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_cbam_under_cpu_autocast_is_the_plain_path(channels_last, monkeypatch):
    """In bfloat16 (CPU autocast, the laptop profile's fast mode) both paths agree to bf16's precision."""
    torch.manual_seed(0)
    plain = cc.CBAM(32, ratio=8)
    fast = accelerated_copy(plain)
    ran = count_calls(monkeypatch, modules, "fused_cbam")
    x = torch.randn(2, 32, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    results = []
    for m in (fast, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, gx, gp = grads(m, x.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16 and all(g.dtype == torch.float32 for g in gp)
        results.append([out.float(), gx.float(), *gp])
    assert len(ran) == 1  # the accelerated copy took the PyTorch fused step
    (out_a, gx_a, *gp_a), (out_b, gx_b, *gp_b) = results
    torch.testing.assert_close(out_a, out_b, atol=3e-2, rtol=3e-2)
    for a, b in zip(gp_a, gp_b):
        torch.testing.assert_close(a, b, atol=3e-2, rtol=3e-2)
    # bfloat16 rounding makes ties in the channel max common; there the fused path splits the
    # gradient between the tied channels and the plain path gives it to one, so allow a few.
    far = ~torch.isclose(gx_a, gx_b, atol=3e-2, rtol=3e-2)
    assert far.float().mean() < 0.005, f"{int(far.sum())} of {far.numel()} input gradients differ"


@pytest.mark.parametrize("channels", [1, 5, 32])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_reductions_equal_torchs(channels, channels_last, dtype):
    """The fused path's sums and maxima (matrix products and a halving tree in bfloat16) are torch's."""
    from cbam_course.fast.fused import _amax, _sum

    torch.manual_seed(0)
    x = torch.randn(3, channels, 5, 6).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for over_channels, dims in ((True, (1,)), (False, (2, 3))):
        assert torch.equal(_amax(x, over_channels), x.amax(dims, keepdim=True))
        torch.testing.assert_close(_sum(x, over_channels).float(), x.float().sum(dims, keepdim=True),
                                   atol=0.05, rtol=0.01)


def test_hooks_on_the_sub_modules_still_run(monkeypatch):
    """A forward hook on an accelerated CBAM's spatial attention (e.g. to capture its output)
    sees a call: with hooks on its halves FastCBAM runs the plain formula, with the same result."""
    torch.manual_seed(0)
    m = accelerate(cc.CBAM(16, ratio=4), keep_memory=False)
    ran = count_calls(monkeypatch, modules, "fused_cbam")
    seen = []
    m.spatial_attention.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    x = torch.randn(2, 16, 5, 5)
    out = m(x)
    assert seen == [torch.Size([2, 16, 5, 5])] and not ran
    m2 = accelerate(cc.CBAM(16, ratio=4), loops=False, keep_memory=False)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(out, m2(x))  # hooked (plain) and fused paths agree
    assert ran


@pytest.mark.parametrize("channels_last", [False, True])
def test_se_block_under_cpu_autocast_is_its_float32_self(channels_last, monkeypatch):
    """Under bfloat16 CPU autocast the accelerated SEBlock squeezes with a matrix product instead
    of torch's slow bfloat16 average pool: the same weights and gradients, to bfloat16's precision."""
    torch.manual_seed(0)
    m = accelerate(cc.SEBlock(64), keep_memory=False)
    assert type(m) is modules.FastSEBlock
    squeezed = count_calls(monkeypatch, modules, "mean_over_positions")
    x = torch.randn(3, 64, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa = x.clone().requires_grad_()
    ref = m(xa)
    ref.square().sum().backward()
    ref_grads = [xa.grad] + [p.grad.clone() for p in m.parameters()]
    assert not squeezed  # float32: torch's own average pool
    m.zero_grad(set_to_none=True)
    xb = x.bfloat16().requires_grad_()  # in a network under autocast, the convolutions hand over bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(xb)
    assert squeezed
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=2e-2)
    for a, b in zip([xb.grad] + [p.grad for p in m.parameters()], ref_grads):
        torch.testing.assert_close(a.float(), b, atol=0.1, rtol=5e-2)


@pytest.mark.parametrize("kernel", [1, 3, 7])
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (13, 5), (32, 32)])
def test_spectral_conv_is_conv2d(kernel, size):
    """The fused path's k x k convolution by FFT gives F.conv2d's output and both gradients."""
    from cbam_course.fast.fused import _spectral_conv, _spectral_conv_backward

    torch.manual_seed(0)
    s = torch.randn(3, 2, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2, kernel, kernel, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.conv2d(s, w, padding=kernel // 2)
    g = torch.randn_like(ref)
    ref_gs, ref_gw = torch.autograd.grad(ref, (s, w), g)
    out, s_hat = _spectral_conv(s.detach(), w.detach())
    torch.testing.assert_close(out, ref.detach(), atol=1e-10, rtol=1e-10)
    g_s, g_w = _spectral_conv_backward(g, s_hat, w.detach(), weight_grad=True)
    torch.testing.assert_close(g_s, ref_gs, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(g_w, ref_gw, atol=1e-10, rtol=1e-10)
    assert _spectral_conv_backward(g, s_hat, w.detach(), weight_grad=False)[1] is None


def test_indexed_max_over_positions_is_adaptive_max_pool():
    """On large maps the fused path finds the spatial maximum's position in two small steps;
    without ties it is the position the Day 50 lesson's AdaptiveMaxPool2d picks."""
    from cbam_course.fast.fused import _amax_positions_indexed

    torch.manual_seed(0)
    x = torch.randn(3, 5, 32, 64)
    mx, where = _amax_positions_indexed(x)
    ref, ref_where = torch.nn.functional.adaptive_max_pool2d(x, 1, return_indices=True)
    assert torch.equal(mx, ref)
    assert torch.equal(where.view(3, 5), ref_where.view(3, 5))


def test_fused_gradient_of_a_tied_spatial_max_goes_to_one_position(fused_path):
    """A map whose maximum appears twice: on a 32x32 map the max-pool's gradient goes whole to
    one of the two positions, as in the Day 50 lesson (split in half, both would be off by half of it).
    Here both pick the first; at other ties the two may pick different ones."""
    torch.manual_seed(0)
    theirs = day50.CBAM(16, ratio=4).double()
    ours = cc.CBAM(16, ratio=4).double()
    ours.load_state_dict(theirs.state_dict())
    ours = fused_path(ours)
    x = torch.rand(1, 16, 32, 32, dtype=torch.float64)
    x[0, 3, 2, 5] = x[0, 3, 30, 7] = 2.0  # channel 3's maximum, twice
    assert_same_outputs_and_gradients(ours, theirs, x)


def test_fft_sizes_are_even_with_small_prime_factors():
    from cbam_course.fast.fused import _fft_size

    assert [_fft_size(n) for n in (1, 7, 14, 22, 38, 49)] == [2, 8, 16, 24, 40, 50]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sum_of_products_is_multiply_then_sum(channels_last, dtype):
    """The fused path's per-channel sum of a product (batch norm's backward on NCHW floats)."""
    from cbam_course.fast.fused import _sum_of_products

    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 6, 7).to(dtype), torch.randn(3, 5, 6, 7).to(dtype)
    if channels_last:
        a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
    got = _sum_of_products(a, b, torch.empty_like(a))
    assert got.shape == (3, 5)
    tol = 0.05 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(got.float(), (a.float() * b.float()).sum((2, 3)), atol=tol, rtol=tol)


def test_fused_cbam_survives_nan_inputs(fused_path):
    """A NaN in the input (a diverged training run) gives NaNs, not a crash or a hang."""
    m = fused_path(cc.CBAM(16, ratio=4))
    x = torch.randn(2, 16, 8, 8)
    x[0, 2, 3, 3] = float("nan")
    out, gx, _ = grads(m, x)
    assert out.isnan().any() and gx.isnan().any()


def test_without_numba_the_pytorch_fused_step_runs(monkeypatch):
    """Where numba's loops cannot run (``compiled_loops()`` is None), an accelerated CBAM with
    the loops on falls back to the PyTorch fused step, with the same results."""
    torch.manual_seed(0)
    m = accelerate(cc.CBAM(16, ratio=4), keep_memory=False)
    assert m.use_loops
    x = torch.randn(2, 16, 8, 8)
    expected = grads(m, x)  # the compiled loops where numba is installed
    monkeypatch.setattr(modules, "_KERNELS", [None])
    ran = count_calls(monkeypatch, modules, "fused_cbam")
    got = grads(m, x)
    assert ran
    for a, b in zip([got[0], got[1], *got[2]], [expected[0], expected[1], *expected[2]]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("make_input,fuses", [
    (lambda: torch.randn(2, 16, 4, 4), True),
    (lambda: torch.randn(2, 16, 4, 4, dtype=torch.float64), True),
    (lambda: torch.randn(2, 16, 4, 4).to(memory_format=torch.channels_last), True),
    (lambda: torch.randn(2, 16, 4, 4).bfloat16(), True),
    (lambda: torch.randn(2, 16, 4, 4).half(), False),   # float16 on the CPU: the plain formula
    (lambda: torch.randn(16, 4, 4), False),             # not 4-D: the plain path's error message
], ids=["float32", "float64", "channels_last", "bfloat16", "float16", "3-D"])
def test_fused_step_runs_where_it_applies(make_input, fuses):
    m = accelerate(cc.CBAM(16, ratio=4), keep_memory=False)
    assert m._can_fuse(make_input()) is fuses
    if fuses:
        m.spatial_attention.register_forward_pre_hook(lambda mod, inp: None)
        assert not m._can_fuse(make_input())  # a hook on a half needs the half to run
