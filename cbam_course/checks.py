"""Exercise checkers: instant, behaviour-based feedback on a learner's code.

Each ``check_*`` function takes the learner's class (or function) and judges what it *does*,
never what it is called or which layers it uses: ``nn.Linear`` or a 1x1 ``nn.Conv2d``, pooling
modules or ``x.mean((2, 3))``, any attribute names. For modules the checker builds the learner's
class, copies a known set of weights into it by shape (so the result can be compared to the Day 50 lesson's
formula), and compares outputs on random inputs of several sizes.

Three outcomes:

- right: prints one line starting with ``✔`` that says what was verified, returns ``True``;
- not written yet (still raises ``NotImplementedError``): prints ``✘ not done yet: ...`` and
  returns ``False`` without raising, so an untouched exercise notebook runs to the end;
- wrong: raises ``AssertionError`` whose message names the likely mistake and how to find it.
  An exception inside the learner's code becomes an ``AssertionError`` that says which call
  failed, with the original error chained below it.

Functions here set ``__tracebackhide__``: IPython then shows the learner's frames and the
line that raised, not the checker's plumbing.

The mistake tables (``_CHANNEL_MISTAKES`` and friends) list the errors learners really make,
each as the function it computes and the hint shown when the learner's output matches it.
"""
from __future__ import annotations

import copy
import functools
import inspect
import math
import re
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "check_channel_attention",
    "check_spatial_attention",
    "check_cbam",
    "check_se_block",
    "check_pooling_channel_attention",
    "check_spatial_first_cbam",
    "check_parallel_cbam",
    "check_cbam_basic_block",
    "check_channel_attention_params",
    "check_channel_descriptors",
    "check_spatial_descriptors",
    "check_train_step",
    "check_evaluate",
]

ATOL, RTOL = 1e-5, 1e-4
STUB_HINT = "fill in the cells marked YOUR CODE HERE"


# --------------------------------------------------------------------------------------------
# Plumbing: running learner code, reporting the outcome
# --------------------------------------------------------------------------------------------

class _NotDone(Exception):
    """The learner's code still raises NotImplementedError."""


def _run(call: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call learner code; a stub becomes _NotDone, any other error an AssertionError naming ``call``."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise _NotDone() from err
    except Exception as err:  # noqa: BLE001 - every learner error is reported the same way
        hint = ""
        if "device" in str(err):
            hint = ("\nThe checker runs on the CPU: do not move tensors with a global `device` inside "
                    "the function or the module; use the `device` argument, or the model's device "
                    "(next(model.parameters()).device).")
        raise AssertionError(
            f"{call} raised {type(err).__name__}: {err}\n"
            f"The first traceback above ends at the line of your code that failed.{hint}"
        ) from err


def _checker(kind: str) -> Callable:
    """Wrap a check: report stubs as not done, print the success line, keep the global RNG as it was."""

    def decorate(check: Callable[[Any, str], str]) -> Callable[[Any], bool]:
        @functools.wraps(check)
        def wrapper(obj: Any) -> bool:
            __tracebackhide__ = True
            if kind == "class" and not isinstance(obj, type):
                raise TypeError(
                    f"{check.__name__} expects the class itself, not {type(obj).__name__}(...): "
                    f"write {check.__name__}({type(obj).__name__}), without parentheses after the "
                    f"class name."
                )
            if kind == "function" and (isinstance(obj, type) or not callable(obj)):
                raise TypeError(f"{check.__name__} expects a function, got {obj!r}.")
            name = getattr(obj, "__name__", type(obj).__name__)
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    verified = check(obj, name)
            except _NotDone:
                print(f"✘ not done yet: {name} still raises NotImplementedError — {STUB_HINT}")
                return False
            print(f"✔ {name} is correct: {verified}")
            return True

        # help() shows what a learner passes: the class or function, nothing else
        signature = inspect.signature(check)
        first = next(iter(signature.parameters.values()))
        wrapper.__signature__ = signature.replace(parameters=[first], return_annotation=bool)
        return wrapper

    return decorate


def _fail(name: str, hint: str) -> AssertionError:
    return AssertionError(f"{name} is not right yet. {hint}")


def _close(a: Any, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(
        a.detach().float(), b.float(), atol=ATOL, rtol=RTOL)


def _shape(t: Any) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


# --------------------------------------------------------------------------------------------
# The Day 50 lesson's formulas, written out as functions of explicit weights
# --------------------------------------------------------------------------------------------

def _mlp(v: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, b1=None, b2=None) -> torch.Tensor:
    """The shared MLP C -> C/r -> C with a ReLU between, on (B, C) descriptors."""
    return F.linear(F.relu(F.linear(v, w1, b1)), w2, b2)


def _avg(x):
    return x.mean(dim=(2, 3))


def _max(x):
    return x.amax(dim=(2, 3))


def _gate(logits: torch.Tensor) -> torch.Tensor:
    """(B, C) logits -> (B, C, 1, 1) channel attention in (0, 1)."""
    return torch.sigmoid(logits)[:, :, None, None]


def channel_attention_reference(x, w1, w2):
    """Day 50 lesson: x * sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))), one MLP shared by both."""
    return x * _gate(_mlp(_avg(x), w1, w2) + _mlp(_max(x), w1, w2))


def _spatial_pool(x, first=None, second=None):
    first = x.mean(dim=1, keepdim=True) if first is None else first
    second = x.amax(dim=1, keepdim=True) if second is None else second
    return torch.cat([first, second], dim=1)


def _conv(pooled, wc):
    return F.conv2d(pooled, wc, padding=wc.shape[-1] // 2)


def spatial_attention_reference(x, wc):
    """Day 50 lesson: x * sigmoid(conv_kxk(cat[mean over channels, max over channels]))."""
    return x * torch.sigmoid(_conv(_spatial_pool(x), wc))


def cbam_reference(x, w1, w2, wc):
    """Day 50 lesson: channel attention, then spatial attention on its output."""
    return spatial_attention_reference(channel_attention_reference(x, w1, w2), wc)


def _channel_logits(x, w1, w2):
    return (_mlp(_avg(x), w1, w2) + _mlp(_max(x), w1, w2))[:, :, None, None]


def _spatial_logits(x, wc):
    return _conv(_spatial_pool(x), wc)


def parallel_cbam_reference(x, w1, w2, wc):
    """The parallel arrangement as this course reads Woo et al. 2018 (arXiv v2, §4.1), which gives no
    equation, only that the outputs "are added and normalized with the sigmoid function": both branches
    see x, and their logits are added under one sigmoid, as in BAM's sigma(Mc + Ms) (Park et al., BMVC
    2018, arXiv:1807.06514): x * sigmoid(channel logits + spatial logits)."""
    return x * torch.sigmoid(_channel_logits(x, w1, w2) + _spatial_logits(x, wc))


def _product_of_maps(x, w1, w2, wc):
    """Both maps computed from x, each through its own sigmoid, both multiplied into x."""
    return channel_attention_reference(x, w1, w2) * torch.sigmoid(_spatial_logits(x, wc))


def se_reference(x, w1, b1, w2, b2):
    """Hu et al.: x * sigmoid(FC(ReLU(FC(avgpool(x)))))."""
    return x * _gate(_mlp(_avg(x), w1, w2, b1, b2))


# --------------------------------------------------------------------------------------------
# The mistakes learners make: (hint, what the wrong code computes)
# --------------------------------------------------------------------------------------------

_CHANNEL_MISTAKES = [
    ("Your module returns the attention map, not the re-weighted features: end forward with "
     "`return x * attention`.",
     lambda x, w1, w2: _gate(_mlp(_avg(x), w1, w2) + _mlp(_max(x), w1, w2)).expand_as(x)),
    ("The output does not change when the max-pooled descriptor changes: did you use the average "
     "descriptor twice? The second branch must pool with max (e.g. x.amax(dim=(2, 3))).",
     lambda x, w1, w2: x * _gate(2 * _mlp(_avg(x), w1, w2))),
    ("The output does not change when the average-pooled descriptor changes: did you use the max "
     "descriptor twice? The first branch must pool with the mean (e.g. x.mean(dim=(2, 3))).",
     lambda x, w1, w2: x * _gate(2 * _mlp(_max(x), w1, w2))),
    ("Only the average-pooled descriptor is used (that is SE, not CBAM): add the max-pooled branch "
     "and sum the two MLP outputs before the sigmoid.",
     lambda x, w1, w2: x * _gate(_mlp(_avg(x), w1, w2))),
    ("Only the max-pooled descriptor is used: add the average-pooled branch and sum the two MLP "
     "outputs before the sigmoid.",
     lambda x, w1, w2: x * _gate(_mlp(_max(x), w1, w2))),
    ("You applied a sigmoid to each branch and then added them, so the attention reaches up to 2: add the "
     "two MLP outputs first, then apply one sigmoid: sigmoid(mlp(avg) + mlp(max)).",
     lambda x, w1, w2: x * (_gate(_mlp(_avg(x), w1, w2)) + _gate(_mlp(_max(x), w1, w2)))),
    ("There is no gate: the MLP outputs multiply x directly, so the factors can be negative or above 1. "
     "Apply torch.sigmoid to mlp(avg) + mlp(max).",
     lambda x, w1, w2: x * (_mlp(_avg(x), w1, w2) + _mlp(_max(x), w1, w2))[:, :, None, None]),
    ("You used a softmax over the channels; CBAM gates each channel independently with a sigmoid "
     "(values in (0, 1) that need not sum to 1).",
     lambda x, w1, w2: x * torch.softmax(_mlp(_avg(x), w1, w2) + _mlp(_max(x), w1, w2), 1)[:, :, None, None]),
    ("You added a residual (x + x * attention); channel attention returns x * attention only.",
     lambda x, w1, w2: x + channel_attention_reference(x, w1, w2)),
    ("You added the two descriptors before the MLP: mlp(avg + max). Because of the ReLU that is not "
     "the same as mlp(avg) + mlp(max): run the MLP on each descriptor, then add. (Pooling first is "
     "what timm's LightChannelAttn does on purpose, one MLP pass on 0.5 * avg + 0.5 * max: a cheaper "
     "variant, not the paper's channel attention.)",
     lambda x, w1, w2: x * _gate(_mlp(_avg(x) + _max(x), w1, w2))),
    ("You ran the MLP once on 0.5 * avg + 0.5 * max: that is timm's LightChannelAttn "
     "(timm/layers/cbam.py), a deliberately cheaper variant, not the paper's channel attention; even "
     "without the ReLU it gives half the paper's logits (lesson 02 shows it). Run the MLP on each "
     "descriptor, then add: sigmoid(mlp(avg) + mlp(max)).",
     lambda x, w1, w2: x * _gate(_mlp(0.5 * _avg(x) + 0.5 * _max(x), w1, w2))),
    ("The MLP has no ReLU between its two layers: the Day 50 lesson's MLP is Linear(C, C/r) -> ReLU -> "
     "Linear(C/r, C).",
     lambda x, w1, w2: x * _gate(F.linear(F.linear(_avg(x), w1), w2) + F.linear(F.linear(_max(x), w1), w2))),
]

_SPATIAL_MISTAKES = [
    ("Your module returns the attention map, not the re-weighted features: end forward with "
     "`return x * attention_map`.",
     lambda x, wc: torch.sigmoid(_conv(_spatial_pool(x), wc)).expand_as(x)),
    ("You concatenated [max, mean]; the Day 50 lesson concatenates [mean, max] (channel 0 of the "
     "convolution's input is the mean over channels, channel 1 the max), so its weights "
     "only fit that order. Write torch.cat([avg_out, max_out], dim=1).",
     lambda x, wc: x * torch.sigmoid(_conv(_spatial_pool(x, x.amax(1, keepdim=True), x.mean(1, keepdim=True)), wc))),
    ("The max over channels is not used: did you use the mean twice? The second map is "
     "torch.max(x, dim=1, keepdim=True)[0] (or x.amax(dim=1, keepdim=True)).",
     lambda x, wc: x * torch.sigmoid(_conv(_spatial_pool(x, second=x.mean(1, keepdim=True)), wc))),
    ("The mean over channels is not used: did you use the max twice? The first map is "
     "torch.mean(x, dim=1, keepdim=True).",
     lambda x, wc: x * torch.sigmoid(_conv(_spatial_pool(x, first=x.amax(1, keepdim=True)), wc))),
    ("You summed over the channels where the Day 50 lesson takes the mean: use "
     "torch.mean(x, dim=1, keepdim=True).",
     lambda x, wc: x * torch.sigmoid(_conv(_spatial_pool(x, first=x.sum(1, keepdim=True)), wc))),
    ("There is no gate: the convolution's output multiplies x directly. Apply torch.sigmoid to it.",
     lambda x, wc: x * _conv(_spatial_pool(x), wc)),
    ("You used a softmax over positions; spatial attention gates each position independently "
     "with a sigmoid.",
     lambda x, wc: x * torch.softmax(_conv(_spatial_pool(x), wc).flatten(1), 1).view(x.shape[0], 1, *x.shape[2:])),
    ("You added a residual (x + x * map); spatial attention returns x * map only.",
     lambda x, wc: x + spatial_attention_reference(x, wc)),
]

_CBAM_MISTAKES = [
    ("You applied spatial attention first: CBAM applies channel attention first, then spatial "
     "attention to its output (x = channel(x); x = spatial(x)).",
     lambda x, w1, w2, wc: channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)),
    ("Both attentions were computed from the input x (in parallel) and both multiply it; CBAM is "
     "sequential: the spatial attention sees the channel-refined features.",
     _product_of_maps),
    ("This is the parallel arrangement as the course reads the paper's §4.1 (both branches from x, "
     "their logits added, one sigmoid); CBAM is sequential: channel attention first, then spatial "
     "attention on its output.",
     parallel_cbam_reference),
    ("Only channel attention is applied: pass its output through spatial attention too.",
     lambda x, w1, w2, wc: channel_attention_reference(x, w1, w2)),
    ("Only spatial attention is applied: apply channel attention first.",
     lambda x, w1, w2, wc: spatial_attention_reference(x, wc)),
    ("You added a residual (x + CBAM(x)); the module returns the refined features only.",
     lambda x, w1, w2, wc: x + cbam_reference(x, w1, w2, wc)),
]

_SPATIAL_FIRST_MISTAKES = [
    ("This is the standard CBAM order (channel, then spatial). The variant applies spatial "
     "attention first, then channel attention to its output.",
     lambda x, w1, w2, wc: cbam_reference(x, w1, w2, wc)),
    ("Both attentions were computed from the input x (in parallel) and both multiply it; the variant "
     "is sequential: the channel attention sees the spatially refined features.",
     _product_of_maps),
    ("This is the parallel arrangement as the course reads the paper's §4.1 (both branches from x, "
     "their logits added, one sigmoid); the variant is sequential: spatial attention first, then "
     "channel attention on its output.",
     parallel_cbam_reference),
    ("Only spatial attention is applied: pass its output through channel attention too.",
     lambda x, w1, w2, wc: spatial_attention_reference(x, wc)),
    ("You added a residual (x + block(x)); the module returns the refined features only.",
     lambda x, w1, w2, wc: x + channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)),
]

_SE_MISTAKES = [
    ("Your module returns the attention map, not the re-weighted features: end forward with "
     "`return x * attention`.",
     lambda x, w1, b1, w2, b2: _gate(_mlp(_avg(x), w1, w2, b1, b2)).expand_as(x)),
    ("You squeezed with max pooling; SE squeezes with global average pooling.",
     lambda x, w1, b1, w2, b2: x * _gate(_mlp(_max(x), w1, w2, b1, b2))),
    ("You added a max-pooled branch (that is CBAM's channel attention); SE uses the average alone.",
     lambda x, w1, b1, w2, b2: x * _gate(_mlp(_avg(x), w1, w2, b1, b2) + _mlp(_max(x), w1, w2, b1, b2))),
    ("There is no gate: apply torch.sigmoid to the excitation before scaling.",
     lambda x, w1, b1, w2, b2: x * _mlp(_avg(x), w1, w2, b1, b2)[:, :, None, None]),
    ("You used a softmax over the channels; SE gates each channel with a sigmoid.",
     lambda x, w1, b1, w2, b2: x * torch.softmax(_mlp(_avg(x), w1, w2, b1, b2), 1)[:, :, None, None]),
    ("There is no ReLU between the two fully connected layers.",
     lambda x, w1, b1, w2, b2: x * _gate(F.linear(F.linear(_avg(x), w1, b1), w2, b2))),
    ("You added a residual (x + x * attention); SE returns x * attention only.",
     lambda x, w1, b1, w2, b2: x + se_reference(x, w1, b1, w2, b2)),
]


# --------------------------------------------------------------------------------------------
# Weight transplant: put known weights into the learner's module, whatever it calls them
# --------------------------------------------------------------------------------------------

def _core_shape(shape: torch.Size) -> tuple[int, ...]:
    """(h, C, 1, 1) -> (h, C): a 1x1 convolution's weight is a Linear weight."""
    dims = list(shape)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


def _still_a_stub(module: nn.Module, x: torch.Tensor) -> bool:
    """True when forward still raises NotImplementedError (checked before blaming the parameters)."""
    try:
        with torch.no_grad():
            module(x)
    except NotImplementedError:
        return True
    except Exception:  # noqa: BLE001 - other errors are reported after the parameter check
        return False
    return False


def _role_of(p: torch.Tensor, weights: dict[str, torch.Tensor], transposed: bool) -> str | None:
    shape = _core_shape(p.shape)
    if transposed and p.dim() == 2:
        shape = shape[::-1]
    return next((r for r, w in weights.items() if shape == tuple(w.shape)), None)


def _copy_weights(params, weights, biases, transposed: bool = False) -> None:
    """Copy reference weights into the parameters, by role; ``transposed`` for matrices used as x @ W."""
    with torch.no_grad():
        for _, p in params:
            if p.dim() == 1 and p.numel() in biases:
                p.copy_(biases[p.numel()])
            else:
                w = weights[_role_of(p, weights, transposed)]
                p.copy_(w.T if transposed and p.dim() == 2 else w.reshape(p.shape))


def _transplant(module: nn.Module, name: str, weights: dict[str, torch.Tensor],
                biases: dict[int, torch.Tensor], describe: dict[str, str], probe: torch.Tensor,
                channels: int | None = None, ratio: int | None = None, kernel: int | None = None,
                reference: torch.Tensor | None = None) -> None:
    """Copy ``weights`` (role -> tensor) into the learner's parameters, matched by shape.

    Matrices match a role by shape (Linear or 1x1 convolution alike); 1-D parameters are biases,
    set from ``biases`` by length. Every role must be found exactly once; anything left over or
    missing is reported with the shapes found, which usually points at the mistake. A module
    whose forward still raises NotImplementedError on ``probe`` is reported as not done first.
    A learner who keeps raw matrices and computes ``v @ W`` stores them transposed: when the
    output misses ``reference`` the transposed reading is tried too.
    """
    __tracebackhide__ = True
    if _still_a_stub(module, probe):
        raise _NotDone()
    extra_hint = (_ratio_hint(channels, ratio) if channels else "") + (_kernel_hint(kernel) if kernel else "")
    params = list(module.named_parameters())
    diagnosis = next((d for d in (_diagnose_shape(tuple(p.shape), channels, ratio, kernel)
                                  for _, p in params) if d), "")
    found = ", ".join(f"{n} {tuple(p.shape)}" for n, p in params) or "none"
    counts = {role: 0 for role in weights}
    for pname, p in params:
        if p.dim() == 1 and p.numel() in biases:
            continue
        role = _role_of(p, weights, transposed=False)
        if role is None:
            raise _fail(name, f"{diagnosis}It has a parameter I did not expect: {pname} with shape "
                              f"{tuple(p.shape)}. Expected only {_expected(weights, describe)}. "
                              f"Your parameters: {found}.{extra_hint}")
        counts[role] += 1
    for role, n in counts.items():
        if n == 0:
            hint = ("It has no parameters at all: create the layers in __init__ as attributes "
                    "(self.fc = ...), not inside forward, so PyTorch registers them. "
                    if not params else "")
            raise _fail(name, f"{hint}{diagnosis}I could not find {describe[role]} with shape "
                              f"{tuple(weights[role].shape)}. Your parameters: {found}.{extra_hint}")
        if n > 1:
            raise _fail(name, f"It has {n} tensors shaped like {describe[role]} "
                              f"{tuple(weights[role].shape)}: did you build a separate MLP for each "
                              f"descriptor? CBAM shares one MLP between the average and the max "
                              f"descriptor: create it once in __init__ and call it twice in forward. "
                              f"Your parameters: {found}.")
    _copy_weights(params, weights, biases)
    matrices = [p for _, p in params if p.dim() == 2]
    if reference is None or not matrices or _quietly_close(module, probe, reference):
        return
    if sorted(_role_of(p, weights, True) or "" for p in matrices) == sorted(
            _role_of(p, weights, False) for p in matrices):
        _copy_weights(params, weights, biases, transposed=True)
        if _quietly_close(module, probe, reference):
            return
        _copy_weights(params, weights, biases)  # back to the usual reading for the diagnosis


def _quietly_close(module: nn.Module, x: torch.Tensor, reference: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            return _close(module(x.clone()), reference)
    except Exception:  # noqa: BLE001 - the comparison that follows reports errors properly
        return False


def _diagnose_shape(shape: tuple, channels: int | None, ratio: int | None, kernel: int | None) -> str:
    """Name the mistake a wrong parameter shape reveals: the ratio or the kernel size ignored."""
    core = _core_shape(torch.Size(shape))
    if kernel and len(core) == 4 and core[:2] == (1, 2) and core[2:] != (kernel, kernel):
        return (f"Its convolution has a {core[2]}x{core[3]} kernel, but kernel_size={kernel} was asked: "
                f"kernel_size was ignored (pass it to nn.Conv2d, with padding=kernel_size // 2). ")
    if channels and ratio and len(core) == 2 and channels in core:
        hidden = core[1] if core[0] == channels else core[0]
        if hidden != channels // ratio:
            return (f"A layer of shape {core} has {hidden} hidden units, but in_channels // ratio = "
                    f"{channels} // {ratio} = {channels // ratio}: the ratio was ignored (or fixed). ")
    return ""


def _expected(weights, describe) -> str:
    return " and ".join(f"{describe[r]} {tuple(w.shape)}" for r, w in weights.items()) + " (plus optional biases)"


def _mlp_weights(c: int, r: int) -> dict[str, torch.Tensor]:
    h = c // r
    return {"fc1": torch.randn(h, c) / math.sqrt(c), "fc2": torch.randn(c, h) * 1.5 / math.sqrt(h)}


def _ratio_hint(c: int, r: int) -> str:
    return (f" With in_channels={c} and ratio={r} the hidden layer has {c} // {r} = {c // r} units: "
            f"Linear({c}, {c // r}) then Linear({c // r}, {c}) (or 1x1 convolutions; biases are "
            f"optional). If you see ({c}, {c}), the ratio was ignored.")


def _kernel_hint(k: int) -> str:
    return (f" The spatial attention has one convolution from 2 channels to 1 with a {k}x{k} kernel "
            f"(kernel_size={k}), weight shape (1, 2, {k}, {k}): if your kernel has another size, "
            f"kernel_size was ignored.")


# --------------------------------------------------------------------------------------------
# Comparing a module with the reference, and diagnosing a difference
# --------------------------------------------------------------------------------------------

_SHAPE_HINT = ("\nPrint x.shape after each line of forward: channel descriptors pool over space "
               "(dim=(2, 3)) to (B, C); spatial descriptors pool over the channels (dim=1) to (B, 1, H, W); "
               "a k x k convolution keeps H and W only with padding=kernel_size // 2.")


def _forward(module: nn.Module, built: str, x: torch.Tensor) -> Any:
    __tracebackhide__ = True
    call = f"{built}.forward(x with shape {tuple(x.shape)})"
    try:
        with torch.no_grad():
            return _run(call, module, x.clone())
    except AssertionError as err:
        if isinstance(err.__cause__, RuntimeError) and re.search(r"shape|size", str(err.__cause__)):
            raise AssertionError(f"{err}{_SHAPE_HINT}") from err.__cause__
        raise


def _compare(module, name, built, x, reference, mistakes, weights_args, formula, probes=None,
             advice: str = "Print the shapes after each line of forward and compare them with the lesson.") -> None:
    """Raise an AssertionError with a hint unless ``module(x)`` equals ``reference``.

    A difference is diagnosed in turn by: the output's shape, whether images in a batch leak
    into each other, the table of known ``mistakes``, then ``probes`` (properties any right
    answer has, e.g. attention values in (0, 1) constant over space), then a generic message.
    """
    __tracebackhide__ = True
    y = _forward(module, built, x)
    if not isinstance(y, torch.Tensor):
        raise _fail(name, f"{built}.forward returned {type(y).__name__}; it should return a tensor "
                          f"shaped like its input.")
    if y.shape != x.shape:
        b, c = x.shape[:2]
        hint = ""
        if tuple(y.shape) in {(b, c, 1, 1), (b, c), (b, 1, *x.shape[2:])}:
            hint = " That is the shape of the attention map: return x multiplied by it."
        elif y.dim() == 4 and y.shape[:2] == x.shape[:2]:
            hint = " The height and width changed: pad the convolution with kernel_size // 2."
        raise _fail(name, f"{built}.forward(x) returned shape {tuple(y.shape)} for an input of shape "
                          f"{tuple(x.shape)}; the output must have the input's shape.{hint}")
    if _close(y, reference):
        return
    x2 = x.clone()
    x2[1:] = torch.randn_like(x2[1:]) * 3
    y2 = _forward(module, built, x2)
    if isinstance(y2, torch.Tensor) and y2.shape == y.shape and not _close(y2[0], y[0]):
        raise _fail(name, "The output for the first image changed when I changed only the other images "
                          "in the batch: did you pool over dim 0 (the batch)? Pool each image on its own.")
    for hint, wrong in mistakes:
        try:
            if _close(y, wrong(x, *weights_args)):
                raise _fail(name, hint)
        except RuntimeError:
            continue
    if probes is not None:
        hint = probes(lambda t: _forward(module, built, t), x, y)
        if hint:
            raise _fail(name, hint)
    err = (y - reference).abs().max().item()
    raise _fail(name, f"Its output differs from the expected {formula} by up to {err:.3g} (input shape "
                      f"{tuple(x.shape)}, your weights replaced by known ones). None of the usual "
                      f"mistakes explains it. {advice}")


def _scale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The factor by which the module scaled each element of x (x has no zeros: it is random)."""
    return y.detach() / x


def _gate_probe(x, y) -> str | None:
    scale = _scale(x, y)
    if not ((scale > 0) & (scale < 1)).all():
        return ("Your output is not x times an attention value between 0 and 1 (factors from "
                f"{scale.min().item():.3g} to {scale.max().item():.3g}): is the sigmoid gate missing, "
                "or did you add x back (a residual)?")
    return None


def _one_weight_per_channel(x, y) -> str | None:
    hint = _gate_probe(x, y)
    if hint:
        return hint
    scale = _scale(x, y).flatten(2)
    if (scale.amax(2) - scale.amin(2)).max() > 1e-4:
        return ("The factor that scales a channel differs from position to position: channel attention "
                "gives one value per channel, shape (B, C, 1, 1), the same at every position.")
    return None


def _channel_probes(forward, x, y) -> str | None:
    """Properties of channel attention: one value per channel, from both descriptors."""
    hint = _one_weight_per_channel(x, y)
    if hint:
        return hint
    weights = _scale(x, y).flatten(2).mean(2)
    flat = x.flatten(2)
    hi, lo = flat.argmax(2, keepdim=True), flat.argmin(2, keepdim=True)
    max_only = flat.clone().scatter_add(2, hi, torch.ones_like(hi, dtype=x.dtype))
    max_only = max_only.scatter_add(2, lo, -torch.ones_like(lo, dtype=x.dtype)).view_as(x)  # same mean
    mean_only = (flat - 0.5 * (torch.arange(flat.shape[2]) != hi).to(x.dtype)).view_as(x)  # same max
    for probe, hint in ((max_only, "The output does not change when only the max-pooled descriptor "
                                   "changes: did you use the average descriptor twice?"),
                        (mean_only, "The output does not change when only the average-pooled "
                                    "descriptor changes: did you use the max descriptor twice?")):
        changed = forward(probe)
        if isinstance(changed, torch.Tensor) and torch.allclose(_scale(probe, changed).flatten(2).mean(2),
                                                                  weights, atol=1e-6):
            return hint
    return None


def _spatial_probes(forward, x, y) -> str | None:
    """Properties of spatial attention: one value per position, shared by all channels."""
    hint = _gate_probe(x, y)
    if hint:
        return hint
    scale = _scale(x, y)
    if (scale.amax(1) - scale.amin(1)).max() > 1e-4:
        return ("The factor at one position differs from channel to channel: spatial attention gives one "
                "value per position, shape (B, 1, H, W), shared by all channels.")
    return None


def _build(cls, name: str, args: tuple, kwargs: dict) -> tuple[nn.Module, str]:
    __tracebackhide__ = True
    shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    built = f"{name}({shown})"
    module = _run(built, cls, *args, **kwargs)
    if not isinstance(module, nn.Module):
        raise _fail(name, f"{built} is a {type(module).__name__}, not an nn.Module: subclass nn.Module "
                          f"and call super().__init__() first in __init__.")
    return module, built


def _ratio_kwargs(r: int | None) -> dict:
    return {} if r is None else {"ratio": r}


# (in_channels, ratio, height, width); ratio None means "use the default, 16"
_CHANNEL_CASES = [(64, 16, 8, 8), (32, 4, 5, 7), (48, 8, 3, 3), (64, None, 6, 6)]
_KERNEL_CASES = [(7, 9, 9), (3, 6, 5), (5, 4, 7), (None, 8, 8)]
_CBAM_CASES = [(64, 16, 7, 8, 8), (32, 4, 3, 5, 7), (48, 8, 5, 6, 6), (64, None, None, 9, 9)]


# --------------------------------------------------------------------------------------------
# The module checkers
# --------------------------------------------------------------------------------------------

@_checker("class")
def check_channel_attention(cls: type, name: str = "") -> str:
    """Check ``cls(in_channels, ratio=16)``: forward(x) = x * sigmoid(MLP(avg) + MLP(max))."""
    __tracebackhide__ = True
    for c, r, h, w in _CHANNEL_CASES:
        module, built = _build(cls, name, (c,), _ratio_kwargs(r))
        ratio = r or 16
        weights = _mlp_weights(c, ratio)
        describe = {"fc1": "the MLP's first layer", "fc2": "the MLP's second layer"}
        zeros = {c // ratio: torch.zeros(c // ratio), c: torch.zeros(c)}
        x = torch.randn(3, c, h, w)
        expected = channel_attention_reference(x, weights["fc1"], weights["fc2"])
        _transplant(module, name, weights, zeros, describe, x, channels=c, ratio=ratio, reference=expected)
        _compare(module, name, built, x, expected, _CHANNEL_MISTAKES, (weights["fc1"], weights["fc2"]), "channel attention",
                 _channel_probes)
    return ("one shared MLP C -> C/r -> C (default ratio 16), sigmoid(MLP(avg) + MLP(max)) scales x; "
            f"matches the Day 50 lesson's formula on {len(_CHANNEL_CASES)} sizes (C, r, H, W) with "
            "known weights.")


@_checker("class")
def check_spatial_attention(cls: type, name: str = "") -> str:
    """Check ``cls(kernel_size=7)``: forward(x) = x * sigmoid(conv(cat[mean_c(x), max_c(x)]))."""
    __tracebackhide__ = True
    for k, h, w in _KERNEL_CASES:
        module, built = _build(cls, name, (), {} if k is None else {"kernel_size": k})
        k = k or 7
        weights = {"conv": torch.randn(1, 2, k, k) / k}
        x = torch.randn(2, 6, h, w)
        expected = spatial_attention_reference(x, weights["conv"])
        _transplant(module, name, weights, {1: torch.zeros(1)},
                    {"conv": "the convolution's weight"}, x, kernel=k)
        _compare(module, name, built, x, expected, _SPATIAL_MISTAKES, (weights["conv"],), "spatial attention", _spatial_probes)
    return ("one conv from [mean, max] over channels to a map (kernel_size honoured, default 7, "
            "size kept), sigmoid gate scales x; matches the Day 50 lesson's formula on "
            f"{len(_KERNEL_CASES)} sizes.")


def _check_two_stage(cls, name, reference, mistakes, order) -> None:
    __tracebackhide__ = True
    for c, r, k, h, w in _CBAM_CASES:
        kwargs = _ratio_kwargs(r)
        if k is not None:
            kwargs["kernel_size"] = k
        module, built = _build(cls, name, (c,), kwargs)
        ratio, k = r or 16, k or 7
        weights = {**_mlp_weights(c, ratio), "conv": torch.randn(1, 2, k, k) / k}
        describe = {"fc1": "the channel MLP's first layer", "fc2": "the channel MLP's second layer",
                    "conv": "the spatial convolution's weight"}
        zeros = {c // ratio: torch.zeros(c // ratio), c: torch.zeros(c), 1: torch.zeros(1)}
        x = torch.randn(2, c, h, w)
        args = (weights["fc1"], weights["fc2"], weights["conv"])
        expected = reference(x, *args)
        _transplant(module, name, weights, zeros, describe, x, channels=c, ratio=ratio, kernel=k,
                    reference=expected)
        advice = ("If it uses your own ChannelAttention and SpatialAttention, run "
                  "check_channel_attention and check_spatial_attention on them first.")
        _compare(module, name, built, x, expected, mistakes, args, order,
                 lambda forward, x, y: _gate_probe(x, y), advice)


@_checker("class")
def check_cbam(cls: type, name: str = "") -> str:
    """Check ``cls(in_channels, ratio=16, kernel_size=7)``: channel attention, then spatial."""
    __tracebackhide__ = True
    _check_two_stage(cls, name, cbam_reference, _CBAM_MISTAKES, "CBAM (channel, then spatial)")
    return ("channel attention then spatial attention, ratio and kernel_size honoured (defaults 16 "
            f"and 7); matches the Day 50 lesson's CBAM on {len(_CBAM_CASES)} sizes with known weights.")


@_checker("class")
def check_spatial_first_cbam(cls: type, name: str = "") -> str:
    """Check lesson 04's variant ``cls(in_channels, ratio=16, kernel_size=7)``: spatial, then channel."""
    __tracebackhide__ = True
    def reference(x, w1, w2, wc):
        return channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)

    _check_two_stage(cls, name, reference, _SPATIAL_FIRST_MISTAKES, "spatial-first CBAM")
    return ("spatial attention first, then channel attention on its output; matches on "
            f"{len(_CBAM_CASES)} sizes with known weights.")


# The paper gives no equation for the parallel arrangement, so some "mistakes" below are other
# readings of §4.1. They still fail: the exercise asks for the course's reading, and says why.
_PARALLEL_MISTAKES = [
    ("You multiplied both sigmoid maps into x, x * Mc(x) * Ms(x). That is another reading of the "
     "parallel arrangement, not a plain mistake: the paper gives no equation for it (§4.1, arXiv v2, "
     "says only that the two modules' outputs \"are added and normalized with the sigmoid function\") "
     "and the official code has none. This exercise asks for the course's reading, which adds the "
     "branches' logits before one sigmoid, as BAM's formula sigma(Mc + Ms) does: "
     "x * sigmoid(channel_logits + spatial_logits), with channel_logits = mlp(avg) + mlp(max) of "
     "shape (B, C, 1, 1) and spatial_logits = conv([mean; max]) of shape (B, 1, H, W). Lesson 04, "
     "section 2, gives the evidence for that reading.",
     _product_of_maps),
    ("You added the two sigmoid maps and applied a second sigmoid, x * sigmoid(Mc(x) + Ms(x)). That "
     "is another reading of §4.1, not a plain mistake: it takes \"the outputs of the two attention "
     "modules\" after their own sigmoids. The course's reading takes them before, as BAM's formula "
     "sigma(Mc + Ms) does (there Mc and Ms have no sigmoid of their own): add the logits, then one "
     "sigmoid: x * sigmoid(channel_logits + spatial_logits).",
     lambda x, w1, w2, wc: x * torch.sigmoid(torch.sigmoid(_channel_logits(x, w1, w2))
                                             + torch.sigmoid(_spatial_logits(x, wc)))),
    ("You multiplied the two branches' logits, as BAM's released code does (BAM.forward in "
     "MODELS/bam.py computes 1 + sigmoid(channel_att(x) * spatial_att(x))). That is another way to "
     "merge them, not a plain mistake, but BAM's paper adds them, sigma(Mc + Ms), and so does the "
     "course's reading of CBAM's §4.1, which this exercise asks for: "
     "x * sigmoid(channel_logits + spatial_logits).",
     lambda x, w1, w2, wc: x * torch.sigmoid(_channel_logits(x, w1, w2) * _spatial_logits(x, wc))),
    ("You multiplied the two branches' logits and added 1, as BAM's released code does (BAM.forward "
     "in MODELS/bam.py computes 1 + sigmoid(channel_att(x) * spatial_att(x))). That is another way to "
     "merge them, not a plain mistake, but BAM's paper adds them, sigma(Mc + Ms), and so does the "
     "course's reading of CBAM's §4.1, which this exercise asks for: "
     "x * sigmoid(channel_logits + spatial_logits), with no 1 + in front.",
     lambda x, w1, w2, wc: x * (1 + torch.sigmoid(_channel_logits(x, w1, w2) * _spatial_logits(x, wc)))),
    ("You added the two maps after their sigmoids, so the attention reaches up to 2: add the logits first, "
     "then apply one sigmoid: x * sigmoid(channel_logits + spatial_logits).",
     lambda x, w1, w2, wc: x * (torch.sigmoid(_channel_logits(x, w1, w2)) + torch.sigmoid(_spatial_logits(x, wc)))),
    ("You averaged the two maps after their sigmoids: add the logits first, then apply one sigmoid: "
     "x * sigmoid(channel_logits + spatial_logits).",
     lambda x, w1, w2, wc: x * 0.5 * (torch.sigmoid(_channel_logits(x, w1, w2)) + torch.sigmoid(_spatial_logits(x, wc)))),
    ("This is the sequential CBAM (channel, then spatial on its output). In the parallel arrangement "
     "both branches see the input x.",
     cbam_reference),
    ("This is the spatial-first CBAM (spatial, then channel on its output). In the parallel "
     "arrangement both branches see the input x.",
     lambda x, w1, w2, wc: channel_attention_reference(spatial_attention_reference(x, wc), w1, w2)),
    ("The spatial branch pools the channel-refined features x * Mc(x); in the parallel arrangement "
     "both branches pool the input x itself.",
     lambda x, w1, w2, wc: x * torch.sigmoid(_channel_logits(x, w1, w2) + _spatial_logits(
         channel_attention_reference(x, w1, w2), wc))),
    ("Your module returns the attention map, not the re-weighted features: end forward with "
     "`return x * torch.sigmoid(channel_logits + spatial_logits)`.",
     lambda x, w1, w2, wc: torch.sigmoid(_channel_logits(x, w1, w2) + _spatial_logits(x, wc))),
    ("There is no gate: the summed logits multiply x directly. Apply one torch.sigmoid to "
     "channel_logits + spatial_logits.",
     lambda x, w1, w2, wc: x * (_channel_logits(x, w1, w2) + _spatial_logits(x, wc))),
    ("Only the channel branch is used: add the spatial branch's logits before the sigmoid.",
     lambda x, w1, w2, wc: channel_attention_reference(x, w1, w2)),
    ("Only the spatial branch is used: add the channel branch's logits before the sigmoid.",
     lambda x, w1, w2, wc: spatial_attention_reference(x, wc)),
    ("You added a residual (x + x * attention); the module returns x * attention only.",
     lambda x, w1, w2, wc: x + parallel_cbam_reference(x, w1, w2, wc)),
]


@_checker("class")
def check_parallel_cbam(cls: type, name: str = "") -> str:
    """Check lesson 04's parallel arrangement ``cls(in_channels, ratio=16, kernel_size=7)``.

    The course's reading of Woo et al. 2018 (arXiv v2, §4.1), which gives no equation: both branches
    see the input, and their outputs "are added and normalized with the sigmoid function", read as
    the logits added under one sigmoid (as in BAM's sigma(Mc + Ms)):
    x * sigmoid(MLP(avg) + MLP(max) + conv([mean; max])), a (B, C, H, W) map from a (B, C, 1, 1) and
    a (B, 1, H, W) logit map. Other readings (x * Mc * Ms, BAM's code's product) fail with a hint
    that names them as readings.
    """
    __tracebackhide__ = True
    _check_two_stage(cls, name, parallel_cbam_reference, _PARALLEL_MISTAKES,
                     "parallel CBAM (the course's reading), x * sigmoid(channel logits + spatial logits)")
    return ("both branches computed from x, their logits added (a (B, C, H, W) map) and one sigmoid; "
            f"matches the course's reading of the paper's §4.1 on {len(_CBAM_CASES)} sizes with known "
            "weights.")


# --------------------------------------------------------------------------------------------
# CBAM in a ResNet basic block (lesson 04)
# --------------------------------------------------------------------------------------------

def _bn(t, g, b):
    """Every BatchNorm of the checked block gets weight g, bias b, running mean 0, variance 1 (eval)."""
    return F.batch_norm(t, torch.zeros_like(g), torch.ones_like(g), g, b, training=False, eps=1e-5)


def basic_block_reference(x, w, stride, cbam=True):
    """ResNet's BasicBlock with CBAM where the official code puts it (Jongchan/attention-module,
    MODELS/model_resnet.py): relu(cbam(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x))."""
    out = _block_branch(x, w, stride, cbam)
    return F.relu(out + _block_shortcut(x, w, stride))


def _block_branch(x, w, stride, cbam=True, where="after_bn2"):
    g, b = w["bn_g"], w["bn_b"]
    out = F.relu(_bn(F.conv2d(x, w["conv1"], stride=stride, padding=1), g, b))
    out = F.conv2d(out, w["conv2"], padding=1)
    if where == "before_bn2":
        return _bn(cbam_reference(out, w["fc1"], w["fc2"], w["conv"]), g, b)
    out = _bn(out, g, b)
    return cbam_reference(out, w["fc1"], w["fc2"], w["conv"]) if cbam else out


def _block_shortcut(x, w, stride):
    if "shortcut" not in w:
        return x
    return _bn(F.conv2d(x, w["shortcut"], stride=stride), w["bn_g"], w["bn_b"])


def _cbam_of(w):
    return lambda t: cbam_reference(t, w["fc1"], w["fc2"], w["conv"])


_BLOCK_MISTAKES = [
    ("CBAM is applied after the addition, so it also scales the shortcut. The official code applies "
     "it to the residual branch, after the second BatchNorm and before `out + shortcut(x)`.",
     lambda x, w, s: F.relu(_cbam_of(w)(_block_branch(x, w, s, cbam=False) + _block_shortcut(x, w, s)))),
    ("CBAM is applied after the final ReLU, so it also scales the shortcut. Apply it to the residual "
     "branch, after the second BatchNorm and before the addition.",
     lambda x, w, s: _cbam_of(w)(F.relu(_block_branch(x, w, s, cbam=False) + _block_shortcut(x, w, s)))),
    ("CBAM is applied before the second BatchNorm; the official code applies it after bn2, just "
     "before the addition: out = cbam(bn2(conv2(out))).",
     lambda x, w, s: F.relu(_block_branch(x, w, s, where="before_bn2") + _block_shortcut(x, w, s))),
    ("CBAM is not applied at all: call it on the residual branch, after the second BatchNorm and "
     "before the addition.",
     lambda x, w, s: basic_block_reference(x, w, s, cbam=False)),
    ("The shortcut is missing: the block returns relu(branch + shortcut(x)), where the shortcut is x "
     "itself, or a 1x1 convolution and BatchNorm when the shape changes.",
     lambda x, w, s: F.relu(_block_branch(x, w, s))),
    ("There is no ReLU after the addition: the block ends with relu(out + shortcut(x)).",
     lambda x, w, s: _block_branch(x, w, s) + _block_shortcut(x, w, s)),
    ("You applied a ReLU to the branch before the addition; ResNet's BasicBlock adds first, then "
     "applies the ReLU: relu(out + shortcut(x)).",
     lambda x, w, s: F.relu(F.relu(_block_branch(x, w, s)) + _block_shortcut(x, w, s))),
    ("There is no ReLU between the two convolutions: out = relu(bn1(conv1(x))).",
     lambda x, w, s: F.relu(cbam_reference(_bn(F.conv2d(_bn(F.conv2d(x, w["conv1"], stride=s, padding=1),
                                                             w["bn_g"], w["bn_b"]), w["conv2"], padding=1),
                                                    w["bn_g"], w["bn_b"]), w["fc1"], w["fc2"], w["conv"])
                            + _block_shortcut(x, w, s))),
]

# (in_channels, out_channels, stride, ratio, size): identity and projection shortcuts
_BLOCK_CASES = [(32, 32, 1, 16, 8), (16, 32, 2, 4, 9), (24, 48, 1, 8, 6), (32, 32, 1, None, 7)]


def _block_transplant(module: nn.Module, name: str, w: dict, c_out: int, ratio: int) -> None:
    """Known weights into the learner's block, by shape; every BatchNorm gets the same values, so
    which BatchNorm is which does not matter (and conv1 and conv2 share one kernel when in == out)."""
    __tracebackhide__ = True
    bn_params = set()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.num_features != c_out or not m.affine or m.running_mean is None:
                    raise _fail(name, f"It has a {type(m).__name__}({m.num_features}) I did not expect: the "
                                      f"block's BatchNorms follow convolutions with out_channels={c_out} "
                                      f"outputs (affine, with running statistics, as nn.BatchNorm2d).")
                m.weight.copy_(w["bn_g"])
                m.bias.copy_(w["bn_b"])
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.eps = 1e-5
                bn_params.update({id(m.weight), id(m.bias)})
    roles = {r: w[r] for r in ("conv1", "conv2", "shortcut", "fc1", "fc2", "conv") if r in w}
    want = {r: 1 for r in roles}
    if roles["conv1"].shape == roles["conv2"].shape:   # in == out: one shape, two convolutions
        del roles["conv2"]
        want = {r: 1 for r in roles}
        want["conv1"] = 2
    params = [(n, p) for n, p in module.named_parameters() if id(p) not in bn_params]
    found = ", ".join(f"{n} {tuple(p.shape)}" for n, p in module.named_parameters()) or "none"
    diagnosis = next((d for d in (_diagnose_shape(tuple(p.shape), c_out, ratio, None) for _, p in params) if d), "")
    counts = {r: 0 for r in roles}
    with torch.no_grad():
        for pname, p in params:
            if p.dim() == 1:
                p.zero_()                        # biases of the convolutions or the MLP: off
                continue
            role = next((r for r, t in roles.items() if tuple(p.shape) == tuple(t.shape)
                         or _core_shape(p.shape) == tuple(t.shape)), None)
            if role is None:
                raise _fail(name, f"{diagnosis}It has a parameter I did not expect: {pname} with shape "
                                  f"{tuple(p.shape)}. A CBAM BasicBlock has two 3x3 convolutions, a 1x1 "
                                  f"shortcut convolution only when the shape changes, BatchNorms and one "
                                  f"CBAM(out_channels, ratio). Your parameters: {found}.")
            counts[role] += 1
            p.copy_(roles[role].reshape(p.shape))
    for role, n in counts.items():
        if n != want[role]:
            what = {"conv1": "3x3 convolution", "conv2": "3x3 convolution", "fc1": "CBAM's MLP first layer",
                    "fc2": "CBAM's MLP second layer", "conv": "CBAM's spatial convolution",
                    "shortcut": "1x1 shortcut convolution (needed when stride != 1 or the channels change)"}[role]
            raise _fail(name, f"{diagnosis}I found {n} tensor(s) shaped like the {what} "
                              f"{tuple(roles[role].shape)}, expected {want[role]}. Your parameters: {found}.")


@_checker("class")
def check_cbam_basic_block(cls: type, name: str = "") -> str:
    """Check lesson 04's ``cls(in_channels, out_channels, stride=1, ratio=16)``: ResNet's BasicBlock
    with CBAM on the residual branch, after the second BatchNorm, before the addition (the official
    code, Jongchan/attention-module ``MODELS/model_resnet.py``), compared in eval mode."""
    __tracebackhide__ = True
    for c_in, c_out, stride, r, size in _BLOCK_CASES:
        kwargs = {"stride": stride, **_ratio_kwargs(r)}
        module, built = _build(cls, name, (c_in, c_out), kwargs)
        ratio = r or 16
        x = torch.randn(2, c_in, size, size)
        if _still_a_stub(module, x):
            raise _NotDone()
        w = {"conv1": torch.randn(c_out, c_in, 3, 3) / (3 * c_in ** 0.5),
             "conv2": torch.randn(c_out, c_out, 3, 3) / (3 * c_out ** 0.5),
             **_mlp_weights(c_out, ratio), "conv": torch.randn(1, 2, 7, 7) / 7,
             "bn_g": torch.rand(c_out) + 0.5, "bn_b": torch.randn(c_out) * 0.3}
        if c_in == c_out:
            w["conv2"] = w["conv1"]
        if stride != 1 or c_in != c_out:
            w["shortcut"] = torch.randn(c_out, c_in, 1, 1) / c_in ** 0.5
        _block_transplant(module, name, w, c_out, ratio)
        module.eval()
        expected = basic_block_reference(x, w, stride)
        y = _forward(module, built, x)
        if not isinstance(y, torch.Tensor) or y.shape != expected.shape:
            raise _fail(name, f"{built}.forward(x) returned {_shape(y)} for an input of shape "
                              f"{tuple(x.shape)}; expected {tuple(expected.shape)}: the first convolution "
                              f"and the shortcut take the stride, out_channels sets the channels.")
        if _close(y, expected):
            continue
        if module.training:
            raise _fail(name, "forward switched the module to training mode (model.train()); leave "
                              "the mode to the caller.")
        for hint, wrong in _BLOCK_MISTAKES:
            if _close(y, wrong(x, w, stride)):
                raise _fail(name, hint)
        err = (y - expected).abs().max().item()
        raise _fail(name, f"Its output differs from the official code's BasicBlock with CBAM by up to "
                          f"{err:.3g} ({built}, input {tuple(x.shape)}, eval mode, your weights replaced "
                          f"by known ones). None of the usual mistakes explains it. Write forward as: "
                          f"out = relu(bn1(conv1(x))); out = bn2(conv2(out)); out = cbam(out); "
                          f"return relu(out + shortcut(x)).")
    return ("conv-BN-ReLU, conv-BN, CBAM on the residual branch, then relu(out + shortcut(x)), with "
            f"identity and projection shortcuts and strides 1 and 2; matches the official code's "
            f"placement on {len(_BLOCK_CASES)} blocks with known weights (eval mode).")


@_checker("class")
def check_se_block(cls: type, name: str = "") -> str:
    """Check ``cls(in_channels, ratio=16)``: SE after Hu et al., with or without biases."""
    __tracebackhide__ = True
    for c, r, h, w in _CHANNEL_CASES:
        module, built = _build(cls, name, (c,), _ratio_kwargs(r))
        ratio = r or 16
        weights = _mlp_weights(c, ratio)
        b1, b2 = torch.randn(c // ratio) * 0.5, torch.randn(c) * 0.5
        has_bias = [p.numel() for p in module.parameters() if p.dim() == 1]
        describe = {"fc1": "the first fully connected layer (squeeze C -> C/r)",
                    "fc2": "the second fully connected layer (C/r -> C)"}
        x = torch.randn(3, c, h, w)
        args = (weights["fc1"], b1 if c // ratio in has_bias else None,
                weights["fc2"], b2 if c in has_bias else None)
        expected = se_reference(x, *args)
        _transplant(module, name, weights, {c // ratio: b1, c: b2}, describe, x, channels=c, ratio=ratio,
                    reference=expected)
        _compare(module, name, built, x, expected, _SE_MISTAKES, args,
                 "SE block (average pool, FC, ReLU, FC, sigmoid, scale)",
                 lambda forward, x, y: _one_weight_per_channel(x, y))
    return ("average pool -> FC C->C/r -> ReLU -> FC C/r->C -> sigmoid scales x (default ratio 16); "
            f"matches Hu et al. on {len(_CHANNEL_CASES)} sizes with known weights and biases.")


_AVG_ONLY_MISTAKES = [
    ("With pooling='avg' the max branch is still there: the switch is ignored. In 'avg' mode compute "
     "sigmoid(mlp(avg)) only; 'avg+max' adds mlp(max) before the sigmoid.",
     lambda x, w1, w2: channel_attention_reference(x, w1, w2)),
    ("With pooling='avg' you ran the average through the MLP twice (mlp(avg) + mlp(avg)): the ablation "
     "removes the max branch, it does not replace it with a second average.",
     lambda x, w1, w2: x * _gate(2 * _mlp(_avg(x), w1, w2))),
    ("With pooling='avg' only the max-pooled descriptor is used: 'avg' keeps the average branch and "
     "drops the max branch, not the other way round.",
     lambda x, w1, w2: x * _gate(_mlp(_max(x), w1, w2))),
    ("With pooling='avg' your module returns the attention map, not the re-weighted features: end "
     "forward with `return x * attention`.",
     lambda x, w1, w2: _gate(_mlp(_avg(x), w1, w2)).expand_as(x)),
    ("With pooling='avg' there is no gate: apply torch.sigmoid to mlp(avg) before scaling x.",
     lambda x, w1, w2: x * _mlp(_avg(x), w1, w2)[:, :, None, None]),
    ("With pooling='avg' you added a residual (x + x * attention); return x * attention only.",
     lambda x, w1, w2: x + x * _gate(_mlp(_avg(x), w1, w2))),
]

_BOTH_MISTAKES = [
    ("With pooling='avg+max' only the average is used: is the test of `pooling` inverted, or does it "
     "compare with another string? 'avg+max' is the paper's channel attention, "
     "sigmoid(mlp(avg) + mlp(max)).",
     lambda x, w1, w2: x * _gate(_mlp(_avg(x), w1, w2))),
    ("With pooling='avg+max' you summed the descriptors before the MLP, mlp(avg + max): twice the "
     "logits of timm's LightChannelAttn (one MLP pass on 0.5 * avg + 0.5 * max), a cheaper variant, "
     "not the paper's sigmoid(mlp(avg) + mlp(max)).",
     lambda x, w1, w2: x * _gate(_mlp(_avg(x) + _max(x), w1, w2))),
    ("With pooling='avg+max' you ran the MLP on 0.5 * avg + 0.5 * max: that is timm's "
     "LightChannelAttn, a cheaper variant, not the paper's sigmoid(mlp(avg) + mlp(max)).",
     lambda x, w1, w2: x * _gate(_mlp(0.5 * _avg(x) + 0.5 * _max(x), w1, w2))),
] + _CHANNEL_MISTAKES


@_checker("class")
def check_pooling_channel_attention(cls: type, name: str = "") -> str:
    """Check lesson 06's ablation module ``cls(in_channels, ratio=16, pooling="avg+max")``.

    ``pooling="avg+max"`` (the default) must be CBAM's channel attention,
    x * sigmoid(MLP(avg) + MLP(max)); ``pooling="avg"`` the same module without the max branch,
    x * sigmoid(MLP(avg)). Both modes have the same shared MLP, so only the pooling differs.
    """
    __tracebackhide__ = True
    describe = {"fc1": "the MLP's first layer", "fc2": "the MLP's second layer"}
    modes = [("avg+max", channel_attention_reference, _BOTH_MISTAKES, "channel attention (avg+max)"),
             ("avg", lambda x, w1, w2: x * _gate(_mlp(_avg(x), w1, w2)), _AVG_ONLY_MISTAKES,
              "channel attention without the max branch, x * sigmoid(MLP(avg))"),
             (None, channel_attention_reference, [
                 ("Without a pooling argument your module uses the average only: make the default "
                  "pooling='avg+max', the paper's channel attention.",
                  lambda x, w1, w2: x * _gate(_mlp(_avg(x), w1, w2)))] + _BOTH_MISTAKES,
              "channel attention with the default pooling, which must be 'avg+max'")]
    for pooling, reference, mistakes, formula in modes:
        for c, r, h, w in _CHANNEL_CASES[:3]:
            kwargs = {"ratio": r, **({} if pooling is None else {"pooling": pooling})}
            module, built = _build(cls, name, (c,), kwargs)
            weights = _mlp_weights(c, r)
            zeros = {c // r: torch.zeros(c // r), c: torch.zeros(c)}
            x = torch.randn(3, c, h, w)
            expected = reference(x, weights["fc1"], weights["fc2"])
            _transplant(module, name, weights, zeros, describe, x, channels=c, ratio=r, reference=expected)
            probes = _channel_probes if pooling != "avg" else (lambda f, x, y: _one_weight_per_channel(x, y))
            _compare(module, name, built, x, expected, mistakes, (weights["fc1"], weights["fc2"]), formula,
                     probes)
    return ("pooling='avg+max' (the default) is sigmoid(MLP(avg) + MLP(max)) and pooling='avg' is "
            "sigmoid(MLP(avg)), one shared MLP; both scale x and match the formulas on "
            "3 sizes each with known weights.")


# --------------------------------------------------------------------------------------------
# Function checkers: descriptors and the parameter count
# --------------------------------------------------------------------------------------------

@_checker("function")
def check_channel_attention_params(fn: Callable, name: str = "") -> str:
    """Check ``fn(in_channels, ratio) -> int``: the shared bias-free MLP has 2 * C * (C // r) weights."""
    __tracebackhide__ = True
    cases = [(64, 16), (128, 8), (100, 16), (256, 16), (10, 3)]
    for c, r in cases:
        got = _run(f"{name}({c}, {r})", fn, c, r)
        want = 2 * c * (c // r)
        if isinstance(got, bool) or not isinstance(got, (int, float)) and not (
                isinstance(got, torch.Tensor) and got.numel() == 1):
            raise _fail(name, f"{name}({c}, {r}) returned {got!r}; return a whole number (an int).")
        got_value = float(got)
        if got_value == want:
            if not isinstance(got, int):
                raise _fail(name, f"{name}({c}, {r}) returned {got!r}, the right value but not an int: "
                                  f"use integer division // (or int(...)).")
            continue
        h = c // r
        diagnoses = [
            (2 * c * c / r if isinstance(got, float) else None,
             "You divided by the ratio without rounding down: the hidden layer has "
             "in_channels // ratio units (a whole number), so count 2 * C * (C // r)."),
            ((2 * c * c) // r, "Round the hidden size down first: 2 * C * (C // r), not (2 * C * C) // r."),
            (c * h, "That is one layer: the MLP has two, C -> C/r and C/r -> C, so 2 * C * (C // r)."),
            (2 * c * h + h + c, "You counted biases; the Day 50 lesson's MLP has none (bias=False): "
                                "2 * C * (C // r)."),
            (4 * c * h, "You counted the MLP twice; it is shared by both descriptors, so count it once."),
            (c * c, "Each layer has C * (C // r) weights, not C * C: the ratio shrinks the hidden layer."),
        ]
        hint = next((msg for value, msg in diagnoses if value is not None and math.isclose(got_value, value)),
                    "Count the weights of Linear(C, C//r) and Linear(C//r, C) without biases.")
        raise _fail(name, f"{name}({c}, {r}) returned {got!r}, expected {want}. {hint}")
    return f"2 * C * (C // r) for {len(cases)} pairs (C, r), including ratios that do not divide C."


def _as_pair(result: Any, call: str, name: str) -> tuple:
    __tracebackhide__ = True
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise _fail(name, f"{call} returned {_shape(result)}; return a pair: return avg, mx.")
    return tuple(result)


@_checker("function")
def check_channel_descriptors(fn: Callable, name: str = "") -> str:
    """Check ``fn(x) -> (avg, max)``: the per-channel global average and maximum, each (B, C)."""
    __tracebackhide__ = True
    for shape in [(2, 6, 5, 4), (3, 16, 7, 7)]:
        x = torch.randn(*shape) + 0.3
        call = f"{name}(x with shape {shape})"
        avg, mx = _as_pair(_run(call, fn, x.clone()), call, name)
        b, c = shape[:2]
        want_avg, want_max = _avg(x), _max(x)
        for label, got in (("first (average)", avg), ("second (max)", mx)):
            if isinstance(got, tuple):
                raise _fail(name, f"The {label} result is a tuple: torch.max(x, dim) returns (values, "
                                  f"indices); take the values, or use x.amax(dim=(2, 3)).")
            if not isinstance(got, torch.Tensor):
                raise _fail(name, f"The {label} result is {type(got).__name__}, not a tensor.")
            if got.shape != (b, c):
                hint = ""
                if tuple(got.shape) == (b, c, 1, 1):
                    hint = " Flatten it with .view(B, C) (or .flatten(1)), or pool without keepdim."
                elif got.dim() == 3 and got.shape[:2] == (b, c):
                    hint = " Pool over both spatial axes: dim=(2, 3)."
                elif tuple(got.shape) in {(b, *shape[2:]), (b, 1, *shape[2:])}:
                    hint = " You pooled over the channels (dim=1); channel descriptors pool over space, dim=(2, 3)."
                raise _fail(name, f"The {label} descriptor has shape {tuple(got.shape)} for an input of "
                                  f"shape {shape}; expected (B, C) = {(b, c)}.{hint}")
        if _close(avg, want_max) and _close(mx, want_avg):
            raise _fail(name, "The two results are swapped: return (average, max), in that order.")
        if not _close(avg, want_avg):
            hint = " It equals the max: did you compute the max twice?" if _close(avg, want_max) else (
                " Use x.mean(dim=(2, 3)).")
            raise _fail(name, f"The first result is not the per-channel average.{hint}")
        if not _close(mx, want_max):
            hint = " It equals the average: did you compute the average twice?" if _close(mx, want_avg) else (
                " Use x.amax(dim=(2, 3)).")
            raise _fail(name, f"The second result is not the per-channel maximum.{hint}")
    return "returns (average, max) over height and width, each of shape (B, C)."


@_checker("function")
def check_spatial_descriptors(fn: Callable, name: str = "") -> str:
    """Check ``fn(x) -> (B, 2, H, W)``: channel 0 the mean over channels, channel 1 the max."""
    __tracebackhide__ = True
    for shape in [(2, 6, 5, 4), (3, 16, 7, 7)]:
        x = torch.randn(*shape) + 0.3
        call = f"{name}(x with shape {shape})"
        got = _run(call, fn, x.clone())
        b, _, h, w = shape
        if isinstance(got, (tuple, list)):
            raise _fail(name, f"{call} returned a {type(got).__name__}; concatenate the two maps into "
                              f"one tensor: torch.cat([avg_out, max_out], dim=1). If it came from "
                              f"torch.max(x, dim=1), take [0] (the values).")
        if not isinstance(got, torch.Tensor):
            raise _fail(name, f"{call} returned {type(got).__name__}, not a tensor.")
        if got.shape != (b, 2, h, w):
            hint = ""
            if got.dim() == 4 and got.shape[2:] == (1, 1):
                hint = " You pooled over space; spatial descriptors pool over the channels (dim=1)."
            elif got.dim() == 3 or tuple(got.shape) == (2 * b, 1, h, w):
                hint = " Keep the channel axis (keepdim=True) and concatenate along dim=1."
            raise _fail(name, f"{call} returned shape {tuple(got.shape)}; expected (B, 2, H, W) = "
                              f"{(b, 2, h, w)}.{hint}")
        mean, mx = x.mean(1, keepdim=True), x.amax(1, keepdim=True)
        if _close(got, torch.cat([mean, mx], 1)):
            continue
        if _close(got, torch.cat([mx, mean], 1)):
            raise _fail(name, "The order is [max, mean]; the Day 50 lesson uses [mean, max] (channel 0 the "
                              "mean, channel 1 the max), and its convolution weights depend on that order.")
        if _close(got[:, :1], x.sum(1, keepdim=True)):
            raise _fail(name, "Channel 0 is the sum over channels; take the mean: torch.mean(x, dim=1, keepdim=True).")
        if not _close(got[:, :1], mean):
            raise _fail(name, "Channel 0 is not the mean over channels: torch.mean(x, dim=1, keepdim=True).")
        raise _fail(name, "Channel 1 is not the max over channels: torch.max(x, dim=1, keepdim=True)[0].")
    return "returns the (B, 2, H, W) map [mean over channels, max over channels]."


# --------------------------------------------------------------------------------------------
# Training-loop checkers (lesson 05)
# --------------------------------------------------------------------------------------------

def _tiny_classifier() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 4))


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, atol=1e-6, rtol=1e-5) for x, y in zip(a, b))


@_checker("function")
def check_train_step(fn: Callable, name: str = "") -> str:
    """Check ``fn(model, images, labels, optimizer, criterion) -> float``: one optimisation step.

    The reference does zero_grad, forward, loss, backward, step on a deep copy. The learner's
    model starts with stale gradients already in ``.grad``, so a missing zero_grad shows.
    """
    __tracebackhide__ = True
    model = _tiny_classifier()
    images, labels = torch.randn(6, 3, 4, 4), torch.randint(0, 4, (6,))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)  # not the default, so a hard-coded one shows
    start = _params(model)
    stale = [torch.randn_like(p) for p in model.parameters()]

    reference = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    ref_loss = criterion(reference(images), labels)
    ref_loss.backward()
    ref_opt.step()
    after_step = _params(reference)
    with torch.no_grad():
        loss_after = criterion(reference(images), labels).item()
        plain_loss = F.cross_entropy(model(images), labels).item()
    accumulated = [p - 0.5 * (g + s) for p, g, s in zip(start, (q.grad for q in reference.parameters()), stale)]

    for p, s in zip(model.parameters(), stale):
        p.grad = s.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    call = f"{name}(model, images, labels, optimizer, criterion)"
    got = _run(call, fn, model, images.clone(), labels.clone(), optimizer, criterion)
    now = _params(model)

    if _same(now, start):
        no_grads = all(p.grad is None or not p.grad.any() for p in model.parameters())
        hint = ("and the gradients are empty: call loss.backward() before optimizer.step(), and "
                "optimizer.zero_grad() before the forward pass, not between backward and step."
                if no_grads else "Did you call optimizer.step() after loss.backward()?")
        raise _fail(name, f"The model's parameters did not change {hint}")
    if _same(now, accumulated):
        raise _fail(name, "The update used old gradients plus the new ones: call optimizer.zero_grad() "
                          "first, because PyTorch adds each backward's gradients to .grad.")
    if not _same(now, after_step):
        raise _fail(name, "The parameters changed, but not as one step of the optimizer you were given "
                          "would change them: use the optimizer and criterion passed in (do not create "
                          "your own), and call optimizer.step() exactly once.")
    if isinstance(got, torch.Tensor):
        raise _fail(name, f"{call} returned a tensor; return loss.item(), a plain float (a tensor "
                          f"keeps the whole graph alive).")
    if got is None:
        raise _fail(name, f"{call} returned None: end with `return loss.item()`.")
    if not isinstance(got, (int, float)):
        raise _fail(name, f"{call} returned {type(got).__name__}; return loss.item(), a float.")
    if not math.isclose(got, ref_loss.item(), rel_tol=1e-5, abs_tol=1e-6):
        if math.isclose(got, loss_after, rel_tol=1e-5):
            hint = "It is the loss after the step: return the loss you called backward() on."
        elif math.isclose(got, plain_loss, rel_tol=1e-5):
            hint = "It is a plain cross-entropy: use the criterion passed in, not a new one."
        else:
            hint = "Return criterion(model(images), labels).item(), the loss of this batch before the step."
        raise _fail(name, f"It returned {got:.6f}, expected {ref_loss.item():.6f}. {hint}")
    return ("zero_grad, forward, loss, backward, step: the parameters moved exactly as one optimizer "
            "step, stale gradients were cleared, and the batch's loss came back as a float.")


class _EvalProbe(nn.Module):
    """A tiny classifier with dropout and batch norm that records how forward was called."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                  nn.Dropout(0.5), nn.Linear(16, 3))
        self.calls: list[tuple[bool, bool]] = []   # (grad enabled, training) per forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return self.body(x)


@_checker("function")
def check_evaluate(fn: Callable, name: str = "") -> str:
    """Check ``fn(model, loader, criterion, device) -> (mean loss per batch, accuracy in %)``.

    As the Day 50 lesson's test loop: model.eval(), torch.no_grad(), loss averaged over batches,
    accuracy = 100 * correct / total. The loader's last batch is smaller, as in real loaders.
    """
    __tracebackhide__ = True
    model = _EvalProbe()
    with torch.no_grad():
        model.body[2].running_mean.uniform_(-0.5, 0.5)
        model.body[2].running_var.uniform_(0.5, 2.0)
    images = torch.randn(10, 3, 2, 2)
    model.eval()
    with torch.no_grad():
        predicted = model(images).argmax(1)
    labels = torch.where(torch.arange(10) < 6, predicted, (predicted + 1) % 3)  # 60% right
    dataset = torch.utils.data.TensorDataset(images, labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=False)
    criterion = nn.CrossEntropyLoss()
    with torch.no_grad():
        batch_losses = [criterion(model(xb), yb).item() for xb, yb in loader]
        per_image = F.cross_entropy(model(images), labels).item()
    want_loss, want_acc = sum(batch_losses) / len(batch_losses), 60.0
    model.calls.clear()
    model.train()

    call = f"{name}(model, loader, criterion, device)"
    result = _run(call, fn, model, loader, criterion, torch.device("cpu"))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise _fail(name, f"{call} returned {_shape(result)}; return a pair (mean loss, accuracy in %).")
    if not model.calls:
        raise _fail(name, "The model was never called: loop over the loader and call model(images).")
    if any(training for _, training in model.calls):
        raise _fail(name, "The model ran in training mode: call model.eval() before the loop, so "
                          "dropout is off and batch norm uses its running statistics.")
    if any(grad for grad, _ in model.calls):
        raise _fail(name, "Gradients were tracked during evaluation: wrap the loop in "
                          "`with torch.no_grad():` (it saves memory and time).")
    loss, acc = result
    for label, value in (("loss", loss), ("accuracy", acc)):
        if isinstance(value, torch.Tensor):
            raise _fail(name, f"The {label} is a tensor; return plain numbers (use .item()).")
        if not isinstance(value, (int, float)):
            raise _fail(name, f"The {label} is {type(value).__name__}; return plain numbers.")
    if not math.isclose(acc, want_acc, abs_tol=1e-6):
        hint = ("That is a fraction: multiply by 100 for a percentage (100 * correct / total)."
                if math.isclose(acc, want_acc / 100) else
                "Count predictions (output.argmax(1) == labels) over all images, divide by the number "
                "of images (not batches), times 100.")
        raise _fail(name, f"The accuracy is {acc}, expected {want_acc}. {hint}")
    if not math.isclose(loss, want_loss, rel_tol=1e-5):
        if math.isclose(loss, sum(batch_losses), rel_tol=1e-5):
            hint = "That is the sum over batches: divide by len(loader), the number of batches."
        elif math.isclose(loss, per_image, rel_tol=1e-5):
            hint = ("That is the mean over images; the Day 50 lesson averages the per-batch losses: "
                    "total / len(loader).")
        else:
            hint = "Add criterion(outputs, labels).item() for each batch, then divide by len(loader)."
        raise _fail(name, f"The loss is {loss}, expected {want_loss:.6f}. {hint}")
    return ("model.eval() and torch.no_grad() used; mean loss per batch and accuracy in percent "
            "match the Day 50 lesson's test loop (with a smaller last batch).")
