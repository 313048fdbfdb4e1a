"""The package's modules are the seed's: same tensors, same order, same outputs."""
import pytest
import torch

import cbam_course as cc
import seed_reference as seed


def _same_params(ours, theirs):
    a = [(n, tuple(p.shape)) for n, p in ours.state_dict().items()]
    b = [(n, tuple(p.shape)) for n, p in theirs.state_dict().items()]
    assert a == b


@pytest.mark.parametrize("make_ours,make_seed,shape", [
    (lambda: cc.ChannelAttention(64), lambda: seed.ChannelAttention(64), (2, 64, 9, 7)),
    (lambda: cc.ChannelAttention(32, ratio=4), lambda: seed.ChannelAttention(32, ratio=4), (3, 32, 5, 5)),
    (lambda: cc.SpatialAttention(), lambda: seed.SpatialAttention(), (2, 16, 12, 10)),
    (lambda: cc.SpatialAttention(3), lambda: seed.SpatialAttention(3), (2, 8, 6, 6)),
    (lambda: cc.CBAM(128), lambda: seed.CBAM(128), (2, 128, 8, 8)),
    (lambda: cc.CBAM(32, ratio=8, kernel_size=5), lambda: seed.CBAM(32, ratio=8, kernel_size=5), (1, 32, 16, 16)),
])
def test_module_matches_seed(make_ours, make_seed, shape):
    torch.manual_seed(0)
    theirs = make_seed()
    ours = make_ours()
    _same_params(ours, theirs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(*shape)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    # gradients agree too: training behaves the same
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ours(xa).square().sum().backward()
    theirs(xb).square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-4)


def test_attention_cnn_is_the_seed_cnn():
    torch.manual_seed(0)
    theirs = seed.CBAM_CNN()
    ours = cc.AttentionCNN(num_classes=10, attention="cbam", width=64)
    assert cc.count_parameters(ours) == 1_160_816 == cc.count_parameters(theirs)
    _same_params(ours, theirs)
    ours.load_state_dict(theirs.state_dict())  # the seed's checkpoints load as they are
    ours.eval(); theirs.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_parameter_counts_by_attention():
    assert cc.count_parameters(cc.AttentionCNN(attention="none")) == 1_149_770
    # SE: two Linear layers with biases per block: 2*C*C/16 + C/16 + C
    se_extra = sum(2 * c * (c // 16) + c // 16 + c for c in (64, 128, 256))
    assert cc.count_parameters(cc.AttentionCNN(attention="se")) == 1_149_770 + se_extra


def test_se_block_is_hu_et_al():
    torch.manual_seed(0)
    se = cc.SEBlock(32, ratio=4)
    x = torch.randn(2, 32, 5, 5)
    w1, b1 = se.fc[0].weight, se.fc[0].bias
    w2, b2 = se.fc[2].weight, se.fc[2].bias
    z = x.mean(dim=(2, 3))
    s = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)
    torch.testing.assert_close(se(x), x * s[:, :, None, None])


# ---- the fused CBAM step (attention.py's fast path on the CPU) must be the seed's maths -------
# It has two forms: numba's compiled loops (kernels.py) for contiguous float32/float64 inputs, and
# the PyTorch step (fused.py) for the rest and where numba is missing. Tests that take the
# ``fused_path`` fixture run on both, and check that the intended one ran.

@pytest.fixture(params=["compiled", "pytorch"])
def fused_path(request, monkeypatch):
    import cbam_course.attention as attention
    import cbam_course.kernels as kernels

    calls = {"compiled": 0, "pytorch": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(kernels, "compiled_cbam", counting("compiled", kernels.compiled_cbam))
    monkeypatch.setattr(attention, "fused_cbam", counting("pytorch", attention.fused_cbam))
    monkeypatch.setattr(cc.CBAM, "compiled", request.param == "compiled")
    yield request.param
    other = "pytorch" if request.param == "compiled" else "compiled"
    assert calls[request.param] > 0 and calls[other] == 0, f"the {request.param} path did not run: {calls}"


def _grads(module, x):
    x = x.clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    out = module(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out, x.grad, [p.grad for p in module.parameters()]


@pytest.mark.parametrize("channels,ratio,kernel,shape,dtype", [
    (64, 16, 7, (3, 64, 9, 7), torch.float32),
    (128, 16, 3, (2, 128, 4, 4), torch.float64),
    (16, 4, 7, (2, 16, 32, 32), torch.float64),  # 32x32 and up: the PyTorch step indexes the spatial max
    (32, 8, 7, (2, 32, 48, 32), torch.float32),
])
def test_fused_cbam_matches_seed(channels, ratio, kernel, shape, dtype, fused_path):
    _check_matches_seed(channels, ratio, kernel, shape, dtype, channels_last=False)


def test_fused_cbam_matches_seed_in_channels_last():
    """channels_last inputs take the PyTorch step, and the output keeps their layout."""
    _check_matches_seed(32, 8, 5, (2, 32, 16, 16), torch.float32, channels_last=True)


def _assert_same_outputs_and_gradients(ours, theirs, x):
    """Outputs, input gradients and parameter gradients equal at torch's default tolerances."""
    out_a, gx_a, gp_a = _grads(ours, x)
    out_b, gx_b, gp_b = _grads(theirs, x)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(gx_a, gx_b)
    for a, b in zip(gp_a, gp_b):
        torch.testing.assert_close(a, b)


def _check_matches_seed(channels, ratio, kernel, shape, dtype, channels_last):
    torch.manual_seed(0)
    theirs = seed.CBAM(channels, ratio=ratio, kernel_size=kernel).to(dtype)
    ours = cc.CBAM(channels, ratio=ratio, kernel_size=kernel).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    assert ours.fused
    x = torch.randn(*shape, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out_a, gx_a, gp_a = _grads(ours, x)
    out_b, gx_b, gp_b = _grads(theirs, x)
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_a, gx_b, atol=1e-5, rtol=1e-4)
    for a, b in zip(gp_a, gp_b):  # fc.0, fc.2 and the 7x7 conv weights
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    if channels_last:
        assert out_a.is_contiguous(memory_format=torch.channels_last)


def test_fused_workspace_survives_interleaved_passes(fused_path):
    """The PyTorch fused step reuses its scratch memory between steps. Two forward passes before
    one backward (gradient accumulation), a backward run twice (retain_graph) and a forward in
    between must all still give the seed's gradients, on both paths."""
    torch.manual_seed(0)
    theirs = seed.CBAM(32, ratio=8)
    ours = cc.CBAM(32, ratio=8)
    ours.load_state_dict(theirs.state_dict())
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
    import copy
    import pickle

    m = cc.CBAM(32)
    m.compiled = False  # the compiled loops keep no workspace
    with torch.no_grad():
        m(torch.randn(2, 32, 8, 8))
    assert not getattr(m, "_workspace", None) or not m._workspace._buffers  # evaluation keeps nothing
    m(torch.randn(2, 32, 8, 8, requires_grad=True)).sum().backward()
    assert set(m._workspace._buffers) == {"y", "scratch"}
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert not clone._workspace._buffers
        torch.testing.assert_close(clone(torch.ones(1, 32, 4, 4)), m(torch.ones(1, 32, 4, 4)))
    assert set(m.state_dict()) == set(cc.CBAM(32).state_dict())


def test_fused_and_plain_paths_record_the_same_attention(fused_path):
    torch.manual_seed(0)
    m = cc.CBAM(32, ratio=4)
    x = torch.randn(2, 32, 8, 8)
    with cc.record_attention(m) as mods:
        m.fused = True
        m(x)
        fused = {n: mod.last_attention for n, mod in mods.items()}
        m.fused = False
        m(x)
        plain = {n: mod.last_attention for n, mod in mods.items()}
    assert set(fused) == {"channel_attention", "spatial_attention"}
    for n in fused:
        assert fused[n].shape == plain[n].shape and not fused[n].requires_grad
        torch.testing.assert_close(fused[n], plain[n])


def test_fused_cbam_keeps_the_input_checks():
    m = cc.CBAM(16, ratio=4)
    with pytest.raises(ValueError, match="built for 16 channels"):
        m(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="Add a batch dimension"):
        m(torch.randn(16, 4, 4))


def test_training_step_gradients_match_the_seed_cnn(fused_path):
    """A whole training step (train mode, dropout, BatchNorm, ReLU zeros) gives the seed's gradients."""
    torch.manual_seed(0)
    theirs = seed.CBAM_CNN()
    ours = cc.AttentionCNN(attention="cbam", width=64)
    ours.load_state_dict(theirs.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 5, 9])
    grads = []
    for model in (ours, theirs):
        torch.manual_seed(1)  # same dropout mask
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_cbam_under_cpu_autocast_is_the_plain_path(channels_last):
    """In bfloat16 (CPU autocast, the laptop profile's fast mode) both paths agree to bf16's precision."""
    torch.manual_seed(0)
    m = cc.CBAM(32, ratio=8)
    x = torch.randn(2, 32, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    results = []
    for fused in (True, False):
        m.fused = fused
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, gx, gp = _grads(m, x.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16 and all(g.dtype == torch.float32 for g in gp)
        results.append([out.float(), gx.float(), *gp])
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
    from cbam_course.fused import _amax, _sum

    torch.manual_seed(0)
    x = torch.randn(3, channels, 5, 6).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for over_channels, dims in ((True, (1,)), (False, (2, 3))):
        assert torch.equal(_amax(x, over_channels), x.amax(dims, keepdim=True))
        torch.testing.assert_close(_sum(x, over_channels).float(), x.float().sum(dims, keepdim=True),
                                   atol=0.05, rtol=0.01)


def test_hooks_on_the_sub_modules_still_run():
    """A forward hook on CBAM's spatial attention (e.g. to capture its output) sees a call."""
    torch.manual_seed(0)
    m = cc.CBAM(16, ratio=4)
    seen = []
    m.spatial_attention.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    x = torch.randn(2, 16, 5, 5)
    out = m(x)
    assert seen == [torch.Size([2, 16, 5, 5])]
    m2 = cc.CBAM(16, ratio=4)
    m2.load_state_dict(m.state_dict())
    torch.testing.assert_close(out, m2(x))  # hooked (plain) and fused paths agree


@pytest.mark.parametrize("channels_last", [False, True])
def test_se_block_under_cpu_autocast_is_its_float32_self(channels_last):
    """Under bfloat16 CPU autocast SEBlock squeezes with a matrix product instead of torch's slow
    bfloat16 average pool: the same weights and gradients, to bfloat16's precision."""
    torch.manual_seed(0)
    m = cc.SEBlock(64)
    x = torch.randn(3, 64, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa = x.clone().requires_grad_()
    ref = m(xa)
    ref.square().sum().backward()
    ref_grads = [xa.grad] + [p.grad.clone() for p in m.parameters()]
    m.zero_grad(set_to_none=True)
    xb = x.bfloat16().requires_grad_()  # in a network under autocast, the convolutions hand over bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(xb)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=2e-2)
    for a, b in zip([xb.grad] + [p.grad for p in m.parameters()], ref_grads):
        torch.testing.assert_close(a.float(), b, atol=0.1, rtol=5e-2)


@pytest.mark.parametrize("kernel", [1, 3, 7])
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (13, 5), (32, 32)])
def test_spectral_conv_is_conv2d(kernel, size):
    """The fused path's k x k convolution by FFT gives F.conv2d's output and both gradients."""
    from cbam_course.fused import _spectral_conv, _spectral_conv_backward

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
    without ties it is the position the seed's AdaptiveMaxPool2d picks."""
    from cbam_course.fused import _amax_positions_indexed

    torch.manual_seed(0)
    x = torch.randn(3, 5, 32, 64)
    mx, where = _amax_positions_indexed(x)
    ref, ref_where = torch.nn.functional.adaptive_max_pool2d(x, 1, return_indices=True)
    assert torch.equal(mx, ref)
    assert torch.equal(where.view(3, 5), ref_where.view(3, 5))


def test_fused_gradient_of_a_tied_spatial_max_goes_to_one_position(fused_path):
    """A map whose maximum appears twice: on a 32x32 map the max-pool's gradient goes whole to
    one of the two positions, as in the seed (split in half, both would be off by half of it).
    Here both pick the first; at other ties the two may pick different ones."""
    torch.manual_seed(0)
    theirs = seed.CBAM(16, ratio=4).double()
    ours = cc.CBAM(16, ratio=4).double()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(1, 16, 32, 32, dtype=torch.float64)
    x[0, 3, 2, 5] = x[0, 3, 30, 7] = 2.0  # channel 3's maximum, twice
    _assert_same_outputs_and_gradients(ours, theirs, x)


def test_fft_sizes_are_even_with_small_prime_factors():
    from cbam_course.fused import _fft_size

    assert [_fft_size(n) for n in (1, 7, 14, 22, 38, 49)] == [2, 8, 16, 24, 40, 50]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sum_of_products_is_multiply_then_sum(channels_last, dtype):
    """The fused path's per-channel sum of a product (batch norm's backward on NCHW floats)."""
    from cbam_course.fused import _sum_of_products

    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 6, 7).to(dtype), torch.randn(3, 5, 6, 7).to(dtype)
    if channels_last:
        a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
    got = _sum_of_products(a, b, torch.empty_like(a))
    assert got.shape == (3, 5)
    tol = 0.05 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(got.float(), (a.float() * b.float()).sum((2, 3)), atol=tol, rtol=tol)


def test_compiled_gradient_of_a_tied_max_goes_where_the_seeds_goes():
    """Ties in both maxima, on a 16x16 map: the compiled loops give each gradient whole to the
    first channel and the first position that hold the maximum, as the seed's max-with-indices."""
    torch.manual_seed(0)
    theirs = seed.CBAM(16, ratio=4).double()
    ours = cc.CBAM(16, ratio=4).double()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(2, 16, 16, 16, dtype=torch.float64)
    x[0, 3, 2, 5] = x[0, 3, 11, 7] = 2.0      # channel 3's spatial maximum, twice
    x[1, :, 4, 4] = 0.0                        # a position where every channel ties (ReLU zeros)
    x[1, 6, 9, 9] = x[1, 12, 9, 9] = 3.0       # two channels tie for the maximum at (9, 9)
    _assert_same_outputs_and_gradients(ours, theirs, x)


def test_compiled_loops_do_not_depend_on_the_thread_count():
    """Each sample's sums run in one fixed order, so one thread and two give the same bits.
    (The FFT convolution between the loops is torch's, which promises no such thing.)"""
    import numba

    from cbam_course import kernels

    torch.manual_seed(0)
    b, c, r, p = 4, 32, 4, 144
    x, g = torch.randn(b, c, p), torch.randn(b, c, p)
    d, w1, w2 = torch.randn(2 * b, c), torch.randn(r, c), torch.randn(c, r)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            ca, h, s, g_sa = torch.empty(b, c), torch.empty(2 * b, r), torch.empty(b, 2, p), torch.empty(b, p)
            kernels._channel_attention_forward(*kernels._arrays(x, d, w1, w2, ca, h, s))
            kernels._spatial_map_grad(*kernels._arrays(g, x, ca, g_sa))
            results.append([ca, h, s, g_sa])
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        assert torch.equal(one, two)


def test_without_numba_the_pytorch_fused_step_runs(monkeypatch):
    """Where numba is not installed, CBAM falls back to the PyTorch fused step, same results."""
    import cbam_course.attention as attention

    torch.manual_seed(0)
    m = cc.CBAM(16, ratio=4)
    x = torch.randn(2, 16, 8, 8)
    expected = _grads(m, x)
    monkeypatch.setattr(attention, "_KERNELS", [None])
    ran = []
    monkeypatch.setattr(attention, "fused_cbam", lambda *a: ran.append(1) or cc.fused.fused_cbam(*a))
    got = _grads(m, x)
    assert ran
    for a, b in zip([got[0], got[1], *got[2]], [expected[0], expected[1], *expected[2]]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_compiled_loops_need_a_thread_pool_that_stays_awake(monkeypatch):
    """numba's workqueue layer (where neither OpenMP nor TBB is found) made the step slower than
    the PyTorch fused step, so there CBAM keeps the PyTorch one."""
    import numba

    import cbam_course.attention as attention
    from cbam_course import kernels

    assert kernels.parallel_loops()  # this machine: OpenMP
    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    assert not kernels.parallel_loops()
    monkeypatch.setattr(attention, "_KERNELS", [])
    assert attention._kernels() is None
    monkeypatch.setattr(numba, "threading_layer", lambda: "omp")
    monkeypatch.setattr(attention, "_KERNELS", [])
    assert attention._kernels() is kernels


def test_compiled_cbam_passes_gradcheck():
    """The hand-written backward against finite differences, every input (float64)."""
    from cbam_course.kernels import compiled_cbam

    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64, requires_grad=True)
    w1 = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    conv_w = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: compiled_cbam(*t)[0], (x, w1, w2, conv_w))


def test_compiled_cbam_survives_nan_inputs():
    """A NaN in the input (a diverged training run) gives NaNs, not a crash or a hang."""
    m = cc.CBAM(16, ratio=4)
    x = torch.randn(2, 16, 8, 8)
    x[0, 2, 3, 3] = float("nan")
    out, gx, _ = _grads(m, x)
    assert out.isnan().any() and gx.isnan().any()
