"""numba's compiled loops (cbam_course/fast/kernels.py): what only they do. All need numba
(``pip install -e .[fast]``); where it is missing these tests fail with that message
(conftest.py). The loops' agreement with the Day 50 lesson runs in test_fused.py (``fused_path``)."""
import pytest
import torch

import cbam_course as cc
import cbam_course.fast.modules as modules
from cbam_course import day50
from cbam_course.fast import accelerate
from fast_helpers import assert_same_outputs_and_gradients, count_calls

pytestmark = pytest.mark.numba


def test_compiled_gradient_of_a_tied_max_goes_where_day50s_goes(monkeypatch):
    """Ties in both maxima, on a 16x16 map: the compiled loops give each gradient whole to the
    first channel and the first position that hold the maximum, as the Day 50 lesson's max-with-indices."""
    from cbam_course.fast import kernels

    ran = count_calls(monkeypatch, kernels, "compiled_cbam")
    torch.manual_seed(0)
    theirs = day50.CBAM(16, ratio=4).double()
    ours = cc.CBAM(16, ratio=4).double()
    ours.load_state_dict(theirs.state_dict())
    ours = accelerate(ours, keep_memory=False)
    x = torch.rand(2, 16, 16, 16, dtype=torch.float64)
    x[0, 3, 2, 5] = x[0, 3, 11, 7] = 2.0      # channel 3's spatial maximum, twice
    x[1, :, 4, 4] = 0.0                        # a position where every channel ties (ReLU zeros)
    x[1, 6, 9, 9] = x[1, 12, 9, 9] = 3.0       # two channels tie for the maximum at (9, 9)
    assert_same_outputs_and_gradients(ours, theirs, x)
    assert ran


def test_compiled_loops_do_not_depend_on_the_thread_count():
    """Each sample's sums run in one fixed order, so one thread and two give the same bits.
    (The FFT convolution between the loops is torch's, which promises no such thing.)"""
    import numba

    from cbam_course.fast import kernels

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


def test_compiled_loops_need_a_thread_pool_that_stays_awake(monkeypatch):
    """numba's workqueue layer (where neither OpenMP nor TBB is found) made the step slower than
    the PyTorch fused step, so there FastCBAM keeps the PyTorch one."""
    import numba

    from cbam_course.fast import kernels

    assert kernels.parallel_loops()  # this machine: OpenMP
    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    assert not kernels.parallel_loops()
    monkeypatch.setattr(modules, "_KERNELS", [])
    assert modules.compiled_loops() is None
    monkeypatch.setattr(numba, "threading_layer", lambda: "omp")
    monkeypatch.setattr(modules, "_KERNELS", [])
    assert modules.compiled_loops() is kernels


def test_compiled_cbam_passes_gradcheck():
    """The hand-written backward against finite differences, every input (float64)."""
    from cbam_course.fast.kernels import compiled_cbam

    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64, requires_grad=True)
    w1 = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    conv_w = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: compiled_cbam(*t)[0], (x, w1, w2, conv_w))


@pytest.mark.parametrize("make_input,loops_run", [
    (lambda: torch.randn(2, 16, 4, 4), True),
    (lambda: torch.randn(2, 16, 4, 4, dtype=torch.float64), True),
    (lambda: torch.randn(2, 16, 4, 4).to(memory_format=torch.channels_last), False),
    (lambda: torch.randn(2, 16, 4, 4).bfloat16(), False),
    (lambda: torch.randn(2, 16, 8, 4)[:, :, ::2], False),  # not contiguous
], ids=["float32", "float64", "channels_last", "bfloat16", "strided"])
def test_loops_run_on_contiguous_float32_and_float64_only(make_input, loops_run, monkeypatch):
    """``accelerate(model)`` runs numba's loops on contiguous NCHW float32/float64 inputs and the
    PyTorch fused step on the rest; ``accelerate(model, loops=False)`` never runs the loops."""
    from cbam_course.fast import kernels

    compiled = count_calls(monkeypatch, kernels, "compiled_cbam")
    pytorch = count_calls(monkeypatch, modules, "fused_cbam")
    x = make_input()
    m = accelerate(cc.CBAM(16, ratio=4).to(torch.float64 if x.dtype == torch.float64 else torch.float32),
                   keep_memory=False)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=x.dtype == torch.bfloat16):
        m(x)
    assert (len(compiled), len(pytorch)) == ((1, 0) if loops_run else (0, 1))
    accelerate(m, loops=False, keep_memory=False)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=x.dtype == torch.bfloat16):
        m(x)
    assert (len(compiled), len(pytorch)) == ((1, 1) if loops_run else (0, 2))
