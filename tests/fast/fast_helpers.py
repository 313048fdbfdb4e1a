"""Helpers shared by the fast layer's tests (tests/fast/conftest.py puts this folder on sys.path)."""
import copy

import pytest
import torch

from cbam_course.fast import accelerate

# parametrize a test over FastCBAM's two CPU paths; the compiled loops need numba
LOOPS = [pytest.param(False, id="pytorch-fused"), pytest.param(True, id="numba-loops", marks=pytest.mark.numba)]


def grads(module, x):
    """Output, input gradient and parameter gradients of ``module`` on ``x`` under a fixed,
    position-dependent loss (every output element gets another gradient)."""
    x = x.clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    out = module(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out, x.grad, [p.grad for p in module.parameters()]


def assert_same_outputs_and_gradients(ours, theirs, x):
    """Outputs, input gradients and parameter gradients equal at torch's default tolerances."""
    out_a, gx_a, gp_a = grads(ours, x)
    out_b, gx_b, gp_b = grads(theirs, x)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(gx_a, gx_b)
    assert len(gp_a) == len(gp_b)
    for a, b in zip(gp_a, gp_b):
        torch.testing.assert_close(a, b)


def accelerated_copy(model, loops=True):
    """An accelerated deep copy of ``model`` (same weights); ``model`` stays plain."""
    return accelerate(copy.deepcopy(model), loops=loops, keep_memory=False)


def count_calls(monkeypatch, owner, name):
    """Wrap ``owner.name`` so that each call appends 1 to the returned list."""
    fn = getattr(owner, name)
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls
