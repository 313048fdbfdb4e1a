"""``accelerate(model)``: the same model, object and state_dict, made fast; and the course
without numba (the optional extra) and without the fast layer at all."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import cbam_course as cc
import cbam_course.fast as fast
import cbam_course.fast.modules as modules
from cbam_course.fast import accelerate
from fast_helpers import LOOPS, accelerated_copy, count_calls

ROOT = Path(__file__).resolve().parents[2]


def _training_step(model, x):
    """Output, input gradient and named parameter gradients of one train-mode step (fixed dropout mask)."""
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # the same dropout mask for every model
    out = model(x)
    F.cross_entropy(out, torch.tensor([0, 3, 5, 9])).backward()
    return out, x.grad, [(n, p.grad) for n, p in model.named_parameters()]


def _assert_same_step(fast_step, plain_step):
    (out_a, gx_a, gp_a), (out_b, gx_b, gp_b) = fast_step, plain_step
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_a, gx_b, atol=1e-4, rtol=1e-4)
    assert [n for n, _ in gp_a] == [n for n, _ in gp_b]
    for (name, a), (_, b) in zip(gp_a, gp_b):
        assert a is not None and b is not None, name
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("loops", LOOPS)
@pytest.mark.parametrize("attention", ["cbam", "se"])
def test_accelerated_network_equals_the_plain_one(attention, loops, monkeypatch):
    """AttentionCNN's training step, accelerated: the plain model's outputs, input gradient and
    every parameter's gradient (train mode: dropout, BatchNorm's batch statistics)."""
    torch.manual_seed(0)
    plain = cc.AttentionCNN(attention=attention, width=16)
    fast_model = accelerated_copy(plain, loops=loops)
    pytorch = count_calls(monkeypatch, modules, "fused_cbam")
    compiled = []
    if loops:
        from cbam_course.fast import kernels

        compiled = count_calls(monkeypatch, kernels, "compiled_cbam")
    x = torch.randn(4, 3, 32, 32)
    fast_step = _training_step(fast_model, x)
    assert (len(compiled), len(pytorch)) == ((0, 0) if attention == "se" else (3, 0) if loops else (0, 3))
    _assert_same_step(fast_step, _training_step(plain, x))


@pytest.mark.parametrize("attention", ["cbam", "se", "none"])
def test_accelerate_keeps_the_model_and_its_state_dict(attention):
    torch.manual_seed(0)
    model = cc.AttentionCNN(attention=attention, width=16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # built before: still the model's parameters
    assert accelerate(model, keep_memory=False) is model
    assert list(model.state_dict()) == list(state)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(a is b for a, b in zip(model.parameters(), params)) and len(list(model.parameters())) == len(params)
    assert optimizer.param_groups[0]["params"] == params
    kinds = {"cbam": modules.FastCBAM, "se": modules.FastSEBlock, "none": nn.Identity}
    base = {"cbam": cc.CBAM, "se": cc.SEBlock, "none": nn.Identity}
    for m in model.attention_modules():
        assert type(m) is kinds[attention] and isinstance(m, base[attention])
    # checkpoints go both ways: plain into accelerated, accelerated into plain
    plain = cc.AttentionCNN(attention=attention, width=16)
    plain.load_state_dict(model.state_dict())
    model.load_state_dict(plain.state_dict())


def test_accelerate_reaches_nested_modules_and_can_switch_the_loops_off_and_on():
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Sequential(cc.CBAM(16), cc.SEBlock(16)), cc.CBAM(16))
    accelerate(model, loops=False, keep_memory=False)
    cbams = [model[1][0], model[2]]
    assert all(type(m) is modules.FastCBAM and m.use_loops is False for m in cbams)
    assert type(model[1][1]) is modules.FastSEBlock
    accelerate(model, keep_memory=False)  # again: the loops back on, nothing else changes
    assert all(type(m) is modules.FastCBAM and m.use_loops is True for m in cbams)
    assert type(cc.CBAM(16)) is cc.CBAM  # the class itself is untouched


def test_keep_memory_is_for_models_on_the_cpu(monkeypatch):
    import cbam_course.fast.cpu as cpu

    calls = count_calls(monkeypatch, cpu, "keep_freed_memory")
    accelerate(cc.CBAM(16), keep_memory=False)
    assert not calls
    accelerate(cc.CBAM(16))
    assert len(calls) == 1
    accelerate(cc.CBAM(16).to("meta"))  # not on the CPU: the process's allocator is left alone
    assert len(calls) == 1


@pytest.mark.parametrize("loops", LOOPS)
def test_record_attention_works_on_an_accelerated_model(loops):
    torch.manual_seed(0)
    plain = cc.AttentionCNN(attention="cbam", width=16).eval()
    fast_model = accelerated_copy(plain, loops=loops).eval()
    x = torch.randn(4, 3, 32, 32)
    maps = []
    for model in (fast_model, plain):
        with torch.no_grad(), cc.record_attention(model) as mods:
            model(x)
        maps.append({n: m.last_attention for n, m in mods.items()})
        assert not any(m.sigmoid._forward_hooks for m in mods.values())
    got, expected = maps
    assert list(got) == list(expected) and len(got) == 6  # three CBAMs, two halves each
    for name in expected:
        assert got[name] is not None and got[name].shape == expected[name].shape, name
        torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-5)


def test_without_numba_accelerate_uses_the_pytorch_fused_step(monkeypatch):
    """numba not installed (simulated): ``accelerate(model)`` with the loops on runs the PyTorch
    fused step, and a training step (with the optimizer's update) matches the plain model's."""
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.delitem(sys.modules, "cbam_course.fast.kernels", raising=False)
    monkeypatch.delattr(fast, "kernels", raising=False)  # else `from . import kernels` finds it
    monkeypatch.setattr(modules, "_KERNELS", [])
    with pytest.raises(ImportError):
        import cbam_course.fast.kernels  # noqa: F401
    assert modules.compiled_loops() is None

    torch.manual_seed(0)
    plain = cc.AttentionCNN(attention="cbam", width=16)
    fast_model = accelerated_copy(plain)
    assert all(m.use_loops for m in fast_model.attention_modules())
    ran = count_calls(monkeypatch, modules, "fused_cbam")
    x = torch.randn(4, 3, 32, 32)
    steps = []
    for model in (fast_model, plain):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        steps.append(_training_step(model, x))
        optimizer.step()
    assert len(ran) == 3
    _assert_same_step(*steps)
    for (name, a), b in zip(fast_model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


_BLOCK_NUMBA = "import sys\nsys.modules['numba'] = None  # as if numba were not installed\n"

_CORE_WITHOUT_EXTRAS = r'''
import sys

def loaded(*names):
    return sorted(m for m in sys.modules if sys.modules[m] is not None
                  and any(m == n or m.startswith(n + ".") for n in names))

import cbam_course
assert not loaded("cbam_course.fast", "cbam_course.train", "numba"), loaded("cbam_course.fast", "cbam_course.train", "numba")

import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = cbam_course.AttentionCNN(attention="cbam", width=16)
x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
F.cross_entropy(model(x), y).backward()
assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
assert not loaded("cbam_course.fast", "cbam_course.train", "numba"), loaded("cbam_course.fast", "cbam_course.train", "numba")

import cbam_course.train
assert not loaded("numba"), loaded("numba")
print("core ok")
'''

_ACCELERATED_WITHOUT_NUMBA = r'''
import copy
from cbam_course.fast import accelerate
from cbam_course.fast.modules import compiled_loops

assert compiled_loops() is None
fast = accelerate(copy.deepcopy(model))
fast.zero_grad(set_to_none=True); model.zero_grad(set_to_none=True)
model.eval(); fast.eval()  # no dropout: both see the same function
F.cross_entropy(fast(x), y).backward()
F.cross_entropy(model(x), y).backward()
for a, b in zip(fast.parameters(), model.parameters()):
    torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4)
print("fast ok")
'''


@pytest.mark.parametrize("numba", ["blocked", "as installed"])
def test_import_cbam_course_needs_neither_numba_nor_the_subpackages(numba):
    """In a fresh process: ``import cbam_course`` loads neither cbam_course.fast nor
    cbam_course.train nor numba, a CBAM training step runs, and ``import cbam_course.train``
    does not load numba either. With numba blocked, ``accelerate`` still works (PyTorch fused step)."""
    code = _CORE_WITHOUT_EXTRAS
    if numba == "blocked":
        code = _BLOCK_NUMBA + code + _ACCELERATED_WITHOUT_NUMBA
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "core ok" in result.stdout
    assert ("fast ok" in result.stdout) == (numba == "blocked")
