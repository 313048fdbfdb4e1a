"""The judge's side of the checkers, part two: the checkers themselves.

Each checker asks a :class:`Target`, the learner's definition seen through a probe
(``probe.py``), to build modules and run them with inputs and weights the checker chose, and judges
what comes back against the references and the mistake tables (``formulas.py``). It never touches
the learner's objects: in a lesson the probe runs beside it, when a class is graded the probe runs
in the learner's kernel and this code in the grader's own process.

A checker returns what it verified, raises :class:`NotDone` for an untouched stub, and raises
:class:`Failure` (an AssertionError) with a hint naming the likely mistake. Modules are judged by
behaviour, never by names: ``nn.Linear`` or a 1x1 ``nn.Conv2d``, pooling modules or
``x.mean((2, 3))``, any attribute names. Known weights go into the learner's parameters by shape,
so the output can be compared with the Day 50 lesson's formula.
"""
from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..i18n import LANGUAGES, N_, speaking, tr
from . import formulas as f
from .probe import VALUE_FIELDS, EvalModel, Other, Raised, decode, encode, tiny_classifier

ATOL, RTOL = 1e-5, 1e-4


class NotDone(Exception):
    """The learner's code still raises NotImplementedError."""


class Failure(AssertionError):
    """Not right yet; the message is the hint. ``learner_error``: the learner's own code raised."""

    def __init__(self, message: str, learner_error: bool = False) -> None:
        super().__init__(message)
        self.learner_error = learner_error


# --------------------------------------------------------------------------------------------
# The learner's definition, through a probe
# --------------------------------------------------------------------------------------------

class Target:
    """The learner's definition called ``name``, reached through ``ask``: a function that takes a
    request as JSON text and returns the probe's reply as JSON text. ``exception`` gives the last
    exception the learner's code raised where the probe shares this process (a lesson), so a
    failure can chain it; elsewhere it gives None."""

    def __init__(self, name: str, ask: Callable[[str], str],
                 exception: Callable[[], BaseException | None] = lambda: None) -> None:
        self.name, self._ask, self._exception = name, ask, exception

    def request(self, op: str, **fields: Any) -> dict:
        """Send one request (tensors and other values encoded) and return the decoded reply."""
        message = {"op": op, "name": self.name, **{k: encode(v) if k in VALUE_FIELDS else v for k, v in fields.items()}}
        if op in ("load", "mode", "forward"):
            message.pop("name")
        reply = json.loads(self._ask(json.dumps(message)))
        if not isinstance(reply, dict):
            raise ValueError(tr("the probe's reply is not an object"))
        if "probe_error" in reply:
            raise RuntimeError(tr("the probe could not answer: {why}", why=str(reply["probe_error"])[:300]))
        if "raised" in reply:
            r = reply["raised"]
            return {"raised": Raised(str(r.get("type"))[:100], str(r.get("message"))[:2000],
                                     bool(r.get("not_implemented")), self._exception())}
        return reply

    def kind(self) -> str:
        return str(self.request("find").get("kind"))

    def build(self, *args: Any, **kwargs: Any) -> "Built":
        __tracebackhide__ = True
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        described = f"{self.name}({shown})"
        reply = self.request("build", args=args, kwargs=kwargs)
        if "raised" in reply:
            raise learner_error(described, reply["raised"])
        if "built" in reply:
            raise fail(self.name, tr("{described} is a {type}, not an nn.Module: subclass nn.Module and call "
                                     "super().__init__() first in __init__.",
                                     described=described, type=decode(reply["built"]).type))
        return Built(self, int(reply["handle"]), described, reply)

    def call(self, described: str, *args: Any) -> Any:
        """The learner's function called with ``args``; ``described`` names the call in a hint."""
        __tracebackhide__ = True
        reply = self.request("call", args=args)
        if "raised" in reply:
            raise learner_error(described, reply["raised"])
        return decode(reply["value"])

    def task(self, op: str, described: str, **spec: Any) -> dict:
        """One of the probe's prepared calls (``train_step``, ``evaluate``): its whole reply."""
        __tracebackhide__ = True
        reply = self.request(op, **spec)
        if "raised" in reply:
            raise learner_error(described, reply["raised"])
        return reply


class Built:
    """A module the learner's class built in the probe: its parameters, known weights put in,
    forward run on the judge's inputs. The last forward's output is kept, so asking again for the
    same input with the same weights costs no request."""

    def __init__(self, target: Target, handle: int, described: str, reply: dict) -> None:
        self.target, self.handle, self.described = target, handle, described
        self.params = [(str(n), tuple(int(d) for d in s), bool(b)) for n, s, b in reply["parameters"]]
        self.batchnorms = reply["batchnorms"]
        self.training = True
        self._last: tuple[torch.Tensor, Any] | None = None

    def parameters(self) -> tuple[list[tuple[str, tuple[int, ...], bool]], list[list]]:
        """``[(name, shape, in a BatchNorm)]`` and the BatchNorms ``[[class, features, affine, running]]``."""
        return self.params, self.batchnorms

    def load(self, params: dict[str, torch.Tensor], batchnorm: tuple | None = None,
             then: torch.Tensor | None = None) -> Any:
        """Put ``params`` in (and ``batchnorm``'s values in every BatchNorm); with ``then``, run
        forward on it in the same request and return what :meth:`attempt` would."""
        reply = self.target.request("load", handle=self.handle, params=params, batchnorm=batchnorm, x=then)
        self._last = None
        return None if then is None else self._answer(then, reply)

    def mode(self, training: bool) -> None:
        self.target.request("mode", handle=self.handle, training=training)
        self._last = None

    def attempt(self, x: torch.Tensor) -> Any:
        """forward(x): its output (decoded), or :class:`Raised`."""
        if self._last is not None and self._last[0] is x:
            return self._last[1]
        return self._answer(x, self.target.request("forward", handle=self.handle, x=x))

    def _answer(self, x: torch.Tensor, reply: dict) -> Any:
        if "raised" in reply:
            y = reply["raised"]
        else:
            self.training = bool(reply.get("training"))
            y = decode(reply["value"])
        self._last = (x, y)
        return y

    def forward(self, x: torch.Tensor) -> Any:
        """forward(x), a learner error raised as a failure that names the call."""
        __tracebackhide__ = True
        y = self.attempt(x)
        if isinstance(y, Raised):
            call = tr("{described}.forward(x with shape {shape})", described=self.described, shape=tuple(x.shape))
            err = learner_error(call, y)
            if not isinstance(err, NotDone) and y.type == "RuntimeError" and re.search(r"shape|size", y.message):
                err = Failure(f"{err}\n{tr(SHAPE_HINT)}", learner_error=True)
                err.__cause__ = y.exception
            raise err
        return y


# The line after "... raised ...": true in a lesson, where the learner's traceback is printed above the
# failure; a reader that shows no traceback (the grader's feedback) takes it out (traceback_pointers).
TRACEBACK_POINTER = N_("The first traceback above ends at the line of your code that failed.")
DEVICE_HINT = N_("The checker runs on the CPU: do not move tensors with a global `device` inside the function "
                 "or the module; use the `device` argument, or the model's device (next(model.parameters()).device).")


def learner_error(call: str, raised: Raised) -> Exception:
    """What the judge raises when the learner's code raised: NotDone for a stub, else a failure
    that names the call (chained to the learner's exception where the judge has it)."""
    if raised.not_implemented:
        err: Exception = NotDone()
    else:
        hint = f"\n{tr(DEVICE_HINT)}" if "device" in raised.message else ""
        said = tr("{call} raised {type}: {message}", call=call, type=raised.type, message=raised.message)
        err = Failure(f"{said}\n{tr(TRACEBACK_POINTER)}{hint}", learner_error=True)
    err.__cause__ = raised.exception
    return err


def traceback_pointers() -> list[str]:
    """The line that points at the learner's traceback, as a failure writes it (line break first), in
    every language: what a reader that shows no traceback takes out of a hint, whatever the
    language the hint was written in."""
    pointers = []
    for lang in LANGUAGES:
        with speaking(lang):
            pointers.append(f"\n{tr(TRACEBACK_POINTER)}")
    return pointers


def fail(name: str, hint: str) -> Failure:
    """The failure for ``name`` with ``hint`` (already in the learner's language)."""
    return Failure(tr("{name} is not right yet. {hint}", name=name, hint=hint))


def close(a: Any, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(
        a.float(), b.float(), atol=ATOL, rtol=RTOL)


def shape_of(t: Any) -> str:
    if isinstance(t, torch.Tensor):
        return str(tuple(t.shape))
    return t.type if isinstance(t, Other) else type(t).__name__


# --------------------------------------------------------------------------------------------
# Known weights into the learner's module, whatever it calls them
# --------------------------------------------------------------------------------------------

def core_shape(shape: tuple) -> tuple[int, ...]:
    """(h, C, 1, 1) -> (h, C): a 1x1 convolution's weight is a Linear weight."""
    dims = list(shape)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


def _role_of(shape: tuple, weights: dict[str, torch.Tensor], transposed: bool) -> str | None:
    core = core_shape(shape)
    if transposed and len(shape) == 2:
        core = core[::-1]
    return next((r for r, w in weights.items() if core == tuple(w.shape)), None)


def _assignments(params, weights, biases, transposed: bool = False) -> dict[str, torch.Tensor]:
    """Each parameter's known value, by role; ``transposed`` for matrices used as x @ W."""
    out = {}
    for name, shape, _ in params:
        if len(shape) == 1 and math.prod(shape) in biases:
            out[name] = biases[math.prod(shape)]
        else:
            w = weights[_role_of(shape, weights, transposed)]
            out[name] = w.T if transposed and len(shape) == 2 else w.reshape(shape)
    return out


def is_stub(module: Built, x: torch.Tensor) -> bool:
    """True when forward still raises NotImplementedError (checked before blaming the parameters)."""
    y = module.attempt(x)
    return isinstance(y, Raised) and y.not_implemented


def transplant(module: Built, name: str, weights: dict[str, torch.Tensor], biases: dict[int, torch.Tensor],
               describe: dict[str, str], probe: torch.Tensor, channels: int | None = None, ratio: int | None = None,
               kernel: int | None = None, reference: torch.Tensor | None = None) -> None:
    """Put ``weights`` (role -> tensor) into the learner's parameters, matched by shape.

    Matrices match a role by shape (Linear or 1x1 convolution alike); 1-D parameters are biases,
    set from ``biases`` by length. Every role must be found exactly once; anything left over or
    missing is reported with the shapes found, which usually points at the mistake. A module
    whose forward still raises NotImplementedError on ``probe`` is reported as not done first.
    A learner who keeps raw matrices and computes ``v @ W`` stores them transposed: when the
    output misses ``reference`` the transposed reading is tried too.
    """
    __tracebackhide__ = True
    if is_stub(module, probe):
        raise NotDone()
    extra_hint = (_ratio_hint(channels, ratio) if channels else "") + (_kernel_hint(kernel) if kernel else "")
    params, _ = module.parameters()
    diagnosis = next((d for d in (diagnose_shape(shape, channels, ratio, kernel) for _, shape, _ in params) if d), "")
    found = ", ".join(f"{n} {s}" for n, s, _ in params) or tr("none")
    counts = {role: 0 for role in weights}
    for pname, shape, _ in params:
        if len(shape) == 1 and math.prod(shape) in biases:
            continue
        role = _role_of(shape, weights, transposed=False)
        if role is None:
            raise fail(name, tr("{diagnosis}It has a parameter I did not expect: {param} with shape {shape}. "
                                "Expected only {expected}. Your parameters: {found}.{extra}",
                                diagnosis=diagnosis, param=pname, shape=shape, expected=_expected(weights, describe),
                                found=found, extra=extra_hint))
        counts[role] += 1
    for role, n in counts.items():
        if n == 0:
            empty = (tr("It has no parameters at all: create the layers in __init__ as attributes "
                        "(self.fc = ...), not inside forward, so PyTorch registers them. ")
                     if not params else "")
            raise fail(name, tr("{empty}{diagnosis}I could not find {what} with shape {shape}. "
                                "Your parameters: {found}.{extra}",
                                empty=empty, diagnosis=diagnosis, what=tr(describe[role]),
                                shape=tuple(weights[role].shape), found=found, extra=extra_hint))
        if n > 1:
            raise fail(name, tr("It has {n} tensors shaped like {what} {shape}: did you build a separate MLP for "
                                "each descriptor? CBAM shares one MLP between the average and the max descriptor: "
                                "create it once in __init__ and call it twice in forward. Your parameters: {found}.",
                                n=n, what=tr(describe[role]), shape=tuple(weights[role].shape), found=found))
    y = module.load(_assignments(params, weights, biases), then=probe)
    matrices = [shape for _, shape, _ in params if len(shape) == 2]
    if reference is None or not matrices or close(y, reference):
        return
    if sorted(_role_of(s, weights, True) or "" for s in matrices) == sorted(_role_of(s, weights, False) for s in matrices):
        if close(module.load(_assignments(params, weights, biases, transposed=True), then=probe), reference):
            return
        module.load(_assignments(params, weights, biases), then=probe)  # back to the usual reading for the diagnosis


def diagnose_shape(shape: tuple, channels: int | None, ratio: int | None, kernel: int | None) -> str:
    """Name the mistake a wrong parameter shape reveals: the ratio or the kernel size ignored."""
    core = core_shape(shape)
    if kernel and len(core) == 4 and core[:2] == (1, 2) and core[2:] != (kernel, kernel):
        return tr("Its convolution has a {kh}x{kw} kernel, but kernel_size={k} was asked: kernel_size was "
                  "ignored (pass it to nn.Conv2d, with padding=kernel_size // 2). ", kh=core[2], kw=core[3], k=kernel)
    if channels and ratio and len(core) == 2 and channels in core:
        hidden = core[1] if core[0] == channels else core[0]
        if hidden != channels // ratio:
            return tr("A layer of shape {shape} has {hidden} hidden units, but in_channels // ratio = "
                      "{c} // {r} = {h}: the ratio was ignored (or fixed). ",
                      shape=core, hidden=hidden, c=channels, r=ratio, h=channels // ratio)
    return ""


def _expected(weights, describe) -> str:
    """"the MLP's first layer (2, 32) and the MLP's second layer (32, 2) (plus optional biases)"."""
    layers = [f"{tr(describe[r])} {tuple(w.shape)}" for r, w in weights.items()]
    return tr("{layers} (plus optional biases)",
              layers=functools.reduce(lambda a, b: tr("{first} and {second}", first=a, second=b), layers))


def mlp_weights(c: int, r: int) -> dict[str, torch.Tensor]:
    h = c // r
    return {"fc1": torch.randn(h, c) / math.sqrt(c), "fc2": torch.randn(c, h) * 1.5 / math.sqrt(h)}


def _ratio_hint(c: int, r: int) -> str:
    return tr(" With in_channels={c} and ratio={r} the hidden layer has {c} // {r} = {h} units: "
              "Linear({c}, {h}) then Linear({h}, {c}) (or 1x1 convolutions; biases are "
              "optional). If you see ({c}, {c}), the ratio was ignored.", c=c, r=r, h=c // r)


def _kernel_hint(k: int) -> str:
    return tr(" The spatial attention has one convolution from 2 channels to 1 with a {k}x{k} kernel "
              "(kernel_size={k}), weight shape (1, 2, {k}, {k}): if your kernel has another size, "
              "kernel_size was ignored.", k=k)


# --------------------------------------------------------------------------------------------
# Comparing a module with the reference, and diagnosing a difference
# --------------------------------------------------------------------------------------------

SHAPE_HINT = N_("Print x.shape after each line of forward: channel descriptors pool over space "
                "(dim=(2, 3)) to (B, C); spatial descriptors pool over the channels (dim=1) to (B, 1, H, W); "
                "a k x k convolution keeps H and W only with padding=kernel_size // 2.")


def compare(module: Built, name: str, x, reference, mistakes, weights_args, formula, probes=None,
            advice: str = N_("Print the shapes after each line of forward and compare them with the lesson.")) -> None:
    """Raise a failure with a hint unless ``module(x)`` equals ``reference``. ``formula``, ``advice``
    and the mistakes' hints are messages (``N_``), translated here when shown.

    A difference is diagnosed in turn by: the output's shape, whether images in a batch leak
    into each other, the table of known ``mistakes``, then ``probes`` (properties any right
    answer has, e.g. attention values in (0, 1) constant over space), then a generic message.
    """
    __tracebackhide__ = True
    built = module.described
    y = module.forward(x)
    if not isinstance(y, torch.Tensor):
        raise fail(name, tr("{built}.forward returned {got}; it should return a tensor shaped like its input.",
                            built=built, got=shape_of(y)))
    if y.shape != x.shape:
        b, c = x.shape[:2]
        hint = ""
        if tuple(y.shape) in {(b, c, 1, 1), (b, c), (b, 1, *x.shape[2:])}:
            hint = tr(" That is the shape of the attention map: return x multiplied by it.")
        elif y.dim() == 4 and y.shape[:2] == x.shape[:2]:
            hint = tr(" The height and width changed: pad the convolution with kernel_size // 2.")
        raise fail(name, tr("{built}.forward(x) returned shape {got} for an input of shape {shape}; the output "
                            "must have the input's shape.{hint}",
                            built=built, got=tuple(y.shape), shape=tuple(x.shape), hint=hint))
    if close(y, reference):
        return
    x2 = x.clone()
    x2[1:] = torch.randn_like(x2[1:]) * 3
    y2 = module.forward(x2)
    if isinstance(y2, torch.Tensor) and y2.shape == y.shape and not close(y2[0], y[0]):
        raise fail(name, tr("The output for the first image changed when I changed only the other images "
                            "in the batch: did you pool over dim 0 (the batch)? Pool each image on its own."))
    for hint, wrong in mistakes:
        try:
            if close(y, wrong(x, *weights_args)):
                raise fail(name, tr(hint))
        except RuntimeError:
            continue
    if probes is not None:
        hint = probes(module.forward, x, y)
        if hint:
            raise fail(name, hint)
    err = (y - reference).abs().max().item()
    raise fail(name, tr("Its output differs from the expected {formula} by up to {err:.3g} (input shape "
                        "{shape}, your weights replaced by known ones). None of the usual mistakes explains it. "
                        "{advice}", formula=tr(formula), err=err, shape=tuple(x.shape), advice=tr(advice)))


def _scale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The factor by which the module scaled each element of x (x has no zeros: it is random)."""
    return y / x


def gate_probe(x, y) -> str | None:
    scale = _scale(x, y)
    if not ((scale > 0) & (scale < 1)).all():
        return tr("Your output is not x times an attention value between 0 and 1 (factors from "
                  "{low:.3g} to {high:.3g}): is the sigmoid gate missing, or did you add x back (a residual)?",
                  low=scale.min().item(), high=scale.max().item())
    return None


def one_value_per_channel(x, y) -> str | None:
    hint = gate_probe(x, y)
    if hint:
        return hint
    scale = _scale(x, y).flatten(2)
    if (scale.amax(2) - scale.amin(2)).max() > 1e-4:
        return tr("The factor that scales a channel differs from position to position: channel attention "
                  "gives one value per channel, shape (B, C, 1, 1), the same at every position.")
    return None


def channel_probes(forward, x, y) -> str | None:
    """Properties of channel attention: one value per channel, from both descriptors."""
    hint = one_value_per_channel(x, y)
    if hint:
        return hint
    values = _scale(x, y).flatten(2).mean(2)
    flat = x.flatten(2)
    hi, lo = flat.argmax(2, keepdim=True), flat.argmin(2, keepdim=True)
    max_only = flat.clone().scatter_add(2, hi, torch.ones_like(hi, dtype=x.dtype))
    max_only = max_only.scatter_add(2, lo, -torch.ones_like(lo, dtype=x.dtype)).view_as(x)  # same mean
    mean_only = (flat - 0.5 * (torch.arange(flat.shape[2]) != hi).to(x.dtype)).view_as(x)  # same max
    for probe, hint in ((max_only, N_("The output does not change when only the max-pooled descriptor "
                                      "changes: did you use the average descriptor twice?")),
                        (mean_only, N_("The output does not change when only the average-pooled "
                                       "descriptor changes: did you use the max descriptor twice?"))):
        changed = forward(probe)
        if isinstance(changed, torch.Tensor) and torch.allclose(_scale(probe, changed).flatten(2).mean(2),
                                                                  values, atol=1e-6):
            return tr(hint)
    return None


def spatial_probes(forward, x, y) -> str | None:
    """Properties of spatial attention: one value per position, shared by all channels."""
    hint = gate_probe(x, y)
    if hint:
        return hint
    scale = _scale(x, y)
    if (scale.amax(1) - scale.amin(1)).max() > 1e-4:
        return tr("The factor at one position differs from channel to channel: spatial attention gives one "
                  "value per position, shape (B, 1, H, W), shared by all channels.")
    return None


def _ratio_kwargs(r: int | None) -> dict:
    return {} if r is None else {"ratio": r}


# (in_channels, ratio, height, width); ratio None means "use the default, 16"
CHANNEL_CASES = [(64, 16, 8, 8), (32, 4, 5, 7), (48, 8, 3, 3), (64, None, 6, 6)]
KERNEL_CASES = [(7, 9, 9), (3, 6, 5), (5, 4, 7), (None, 8, 8)]
CBAM_CASES = [(64, 16, 7, 8, 8), (32, 4, 3, 5, 7), (48, 8, 5, 6, 6), (64, None, None, 9, 9)]

# (in_channels, out_channels, stride, ratio, size): identity and projection shortcuts
BLOCK_CASES = [(32, 32, 1, 16, 8), (16, 32, 2, 4, 9), (24, 48, 1, 8, 6), (32, 32, 1, None, 7)]


def _channel_modules(target: Target) -> Iterator[tuple]:
    """For each of CHANNEL_CASES: the learner's module ``cls(C, ratio=r)`` (no ratio argument for the
    default case), C, the ratio in effect, H, W and known MLP weights to transplant into it."""
    __tracebackhide__ = True
    for c, r, h, w in CHANNEL_CASES:
        module = target.build(c, **_ratio_kwargs(r))
        ratio = r or 16
        yield module, c, ratio, h, w, mlp_weights(c, ratio)


# --------------------------------------------------------------------------------------------
# The module checkers
# --------------------------------------------------------------------------------------------

def channel_attention(target: Target) -> str:
    """``cls(in_channels, ratio=16)``: forward(x) = x * sigmoid(MLP(avg) + MLP(max))."""
    __tracebackhide__ = True
    name = target.name
    for module, c, ratio, h, w, weights in _channel_modules(target):
        describe = {"fc1": N_("the MLP's first layer"), "fc2": N_("the MLP's second layer")}
        zeros = {c // ratio: torch.zeros(c // ratio), c: torch.zeros(c)}
        x = torch.randn(3, c, h, w)
        expected = f.channel_attention_reference(x, weights["fc1"], weights["fc2"])
        transplant(module, name, weights, zeros, describe, x, channels=c, ratio=ratio, reference=expected)
        compare(module, name, x, expected, f.CHANNEL_MISTAKES, (weights["fc1"], weights["fc2"]),
                N_("channel attention"), channel_probes)
    return tr("one shared MLP C -> C/r -> C (default ratio 16), sigmoid(MLP(avg) + MLP(max)) scales x; "
              "matches the Day 50 lesson's formula on {n} sizes (C, r, H, W) with known weights.",
              n=len(CHANNEL_CASES))


def spatial_attention(target: Target) -> str:
    """``cls(kernel_size=7)``: forward(x) = x * sigmoid(conv(cat[mean_c(x), max_c(x)]))."""
    __tracebackhide__ = True
    name = target.name
    for k, h, w in KERNEL_CASES:
        module = target.build(**({} if k is None else {"kernel_size": k}))
        k = k or 7
        weights = {"conv": torch.randn(1, 2, k, k) / k}
        x = torch.randn(2, 6, h, w)
        expected = f.spatial_attention_reference(x, weights["conv"])
        transplant(module, name, weights, {1: torch.zeros(1)}, {"conv": N_("the convolution's weight")}, x, kernel=k)
        compare(module, name, x, expected, f.SPATIAL_MISTAKES, (weights["conv"],), N_("spatial attention"),
                spatial_probes)
    return tr("one conv from [mean, max] over channels to a map (kernel_size honoured, default 7, "
              "size kept), sigmoid gate scales x; matches the Day 50 lesson's formula on {n} sizes.",
              n=len(KERNEL_CASES))


def _two_stage(target: Target, reference, mistakes, order) -> None:
    __tracebackhide__ = True
    name = target.name
    for c, r, k, h, w in CBAM_CASES:
        kwargs = _ratio_kwargs(r)
        if k is not None:
            kwargs["kernel_size"] = k
        module = target.build(c, **kwargs)
        ratio, k = r or 16, k or 7
        weights = {**mlp_weights(c, ratio), "conv": torch.randn(1, 2, k, k) / k}
        describe = {"fc1": N_("the channel MLP's first layer"), "fc2": N_("the channel MLP's second layer"),
                    "conv": N_("the spatial convolution's weight")}
        zeros = {c // ratio: torch.zeros(c // ratio), c: torch.zeros(c), 1: torch.zeros(1)}
        x = torch.randn(2, c, h, w)
        args = (weights["fc1"], weights["fc2"], weights["conv"])
        expected = reference(x, *args)
        transplant(module, name, weights, zeros, describe, x, channels=c, ratio=ratio, kernel=k, reference=expected)
        advice = N_("If it uses your own ChannelAttention and SpatialAttention, run "
                    "check_channel_attention and check_spatial_attention on them first.")
        compare(module, name, x, expected, mistakes, args, order, lambda forward, x, y: gate_probe(x, y), advice)


def cbam(target: Target) -> str:
    """``cls(in_channels, ratio=16, kernel_size=7)``: channel attention, then spatial."""
    __tracebackhide__ = True
    _two_stage(target, f.cbam_reference, f.CBAM_MISTAKES, N_("CBAM (channel, then spatial)"))
    return tr("channel attention then spatial attention, ratio and kernel_size honoured (defaults 16 "
              "and 7); matches the Day 50 lesson's CBAM on {n} sizes with known weights.", n=len(CBAM_CASES))


def spatial_first_cbam(target: Target) -> str:
    """Lesson 04's variant ``cls(in_channels, ratio=16, kernel_size=7)``: spatial, then channel."""
    __tracebackhide__ = True

    def reference(x, w1, w2, wc):
        return f.channel_attention_reference(f.spatial_attention_reference(x, wc), w1, w2)

    _two_stage(target, reference, f.SPATIAL_FIRST_MISTAKES, N_("spatial-first CBAM"))
    return tr("spatial attention first, then channel attention on its output; matches on "
              "{n} sizes with known weights.", n=len(CBAM_CASES))


def parallel_cbam(target: Target) -> str:
    """Lesson 04's parallel arrangement ``cls(in_channels, ratio=16, kernel_size=7)``.

    The course's reading of Woo et al. 2018 (arXiv v2, §4.1), which gives no equation: both branches
    see the input, and their outputs "are added and normalized with the sigmoid function", read as
    the logits added under one sigmoid (as in BAM's sigma(Mc + Ms)):
    x * sigmoid(MLP(avg) + MLP(max) + conv([mean; max])), a (B, C, H, W) map from a (B, C, 1, 1) and
    a (B, 1, H, W) logit map. Other readings (x * Mc * Ms, BAM's code's product) fail with a hint
    that names them as readings.
    """
    __tracebackhide__ = True
    _two_stage(target, f.parallel_cbam_reference, f.PARALLEL_MISTAKES,
               N_("parallel CBAM (the course's reading), x * sigmoid(channel logits + spatial logits)"))
    return tr("both branches computed from x, their logits added (a (B, C, H, W) map) and one sigmoid; "
              "matches the course's reading of the paper's §4.1 on {n} sizes with known weights.",
              n=len(CBAM_CASES))


def _block_transplant(module: Built, name: str, w: dict, c_out: int, ratio: int) -> None:
    """Known weights into the learner's block, by shape; every BatchNorm gets the same values, so
    which BatchNorm is which does not matter (and conv1 and conv2 share one kernel when in == out)."""
    __tracebackhide__ = True
    params, batchnorms = module.parameters()
    for kind, features, affine, running in batchnorms:
        if features != c_out or not affine or not running:
            raise fail(name, tr("It has a {kind}({features}) I did not expect: the block's BatchNorms follow "
                                "convolutions with out_channels={c_out} outputs (affine, with running "
                                "statistics, as nn.BatchNorm2d).", kind=kind, features=features, c_out=c_out))
    roles = {r: w[r] for r in ("conv1", "conv2", "shortcut", "fc1", "fc2", "conv") if r in w}
    want = {r: 1 for r in roles}
    if roles["conv1"].shape == roles["conv2"].shape:   # in == out: one shape, two convolutions
        del roles["conv2"]
        want = {r: 1 for r in roles}
        want["conv1"] = 2
    found = ", ".join(f"{n} {s}" for n, s, _ in params) or tr("none")
    own = [(n, s) for n, s, in_bn in params if not in_bn]
    diagnosis = next((d for d in (diagnose_shape(s, c_out, ratio, None) for _, s in own) if d), "")
    counts, values = {r: 0 for r in roles}, {}
    for pname, shape in own:
        if len(shape) == 1:
            values[pname] = torch.zeros(shape)       # biases of the convolutions or the MLP: off
            continue
        role = next((r for r, t in roles.items() if shape == tuple(t.shape) or core_shape(shape) == tuple(t.shape)), None)
        if role is None:
            raise fail(name, tr("{diagnosis}It has a parameter I did not expect: {param} with shape {shape}. "
                                "A CBAM BasicBlock has two 3x3 convolutions, a 1x1 shortcut convolution only "
                                "when the shape changes, BatchNorms and one CBAM(out_channels, ratio). "
                                "Your parameters: {found}.", diagnosis=diagnosis, param=pname, shape=shape, found=found))
        counts[role] += 1
        values[pname] = roles[role].reshape(shape)
    for role, n in counts.items():
        if n != want[role]:
            what = {"conv1": N_("3x3 convolution"), "conv2": N_("3x3 convolution"), "fc1": N_("CBAM's MLP first layer"),
                    "fc2": N_("CBAM's MLP second layer"), "conv": N_("CBAM's spatial convolution"),
                    "shortcut": N_("1x1 shortcut convolution (needed when stride != 1 or the channels change)")}[role]
            raise fail(name, tr("{diagnosis}I found {n} tensor(s) shaped like the {what} {shape}, expected {want}. "
                                "Your parameters: {found}.", diagnosis=diagnosis, n=n, what=tr(what),
                                shape=tuple(roles[role].shape), want=want[role], found=found))
    module.load(values, batchnorm=(w["bn_g"], w["bn_b"]))


def cbam_basic_block(target: Target) -> str:
    """Lesson 04's ``cls(in_channels, out_channels, stride=1, ratio=16)``: ResNet's BasicBlock with
    CBAM on the residual branch, after the second BatchNorm, before the addition (the official code,
    Jongchan/attention-module ``MODELS/model_resnet.py``), compared in eval mode."""
    __tracebackhide__ = True
    name = target.name
    for c_in, c_out, stride, r, size in BLOCK_CASES:
        module = target.build(c_in, c_out, stride=stride, **_ratio_kwargs(r))
        ratio = r or 16
        x = torch.randn(2, c_in, size, size)
        if is_stub(module, x):
            raise NotDone()
        w = {"conv1": torch.randn(c_out, c_in, 3, 3) / (3 * c_in ** 0.5),
             "conv2": torch.randn(c_out, c_out, 3, 3) / (3 * c_out ** 0.5),
             **mlp_weights(c_out, ratio), "conv": torch.randn(1, 2, 7, 7) / 7,
             "bn_g": torch.rand(c_out) + 0.5, "bn_b": torch.randn(c_out) * 0.3}
        if c_in == c_out:
            w["conv2"] = w["conv1"]
        if stride != 1 or c_in != c_out:
            w["shortcut"] = torch.randn(c_out, c_in, 1, 1) / c_in ** 0.5
        _block_transplant(module, name, w, c_out, ratio)
        module.mode(training=False)
        expected = f.basic_block_reference(x, w, stride)
        y = module.forward(x)
        if not isinstance(y, torch.Tensor) or y.shape != expected.shape:
            raise fail(name, tr("{built}.forward(x) returned {got} for an input of shape {shape}; expected "
                                "{want}: the first convolution and the shortcut take the stride, out_channels "
                                "sets the channels.", built=module.described, got=shape_of(y),
                                shape=tuple(x.shape), want=tuple(expected.shape)))
        if close(y, expected):
            continue
        if module.training:
            raise fail(name, tr("forward switched the module to training mode (model.train()); leave "
                                "the mode to the caller."))
        for hint, wrong in f.BLOCK_MISTAKES:
            if close(y, wrong(x, w, stride)):
                raise fail(name, tr(hint))
        err = (y - expected).abs().max().item()
        raise fail(name, tr("Its output differs from the official code's BasicBlock with CBAM by up to "
                            "{err:.3g} ({built}, input {shape}, eval mode, your weights replaced by known ones). "
                            "None of the usual mistakes explains it. Write forward as: "
                            "out = relu(bn1(conv1(x))); out = bn2(conv2(out)); out = cbam(out); "
                            "return relu(out + shortcut(x)).", err=err, built=module.described, shape=tuple(x.shape)))
    return tr("conv-BN-ReLU, conv-BN, CBAM on the residual branch, then relu(out + shortcut(x)), with "
              "identity and projection shortcuts and strides 1 and 2; matches the official code's "
              "placement on {n} blocks with known weights (eval mode).", n=len(BLOCK_CASES))


def se_block(target: Target) -> str:
    """``cls(in_channels, ratio=16)``: SE after Hu et al., with or without biases."""
    __tracebackhide__ = True
    name = target.name
    for module, c, ratio, h, w, weights in _channel_modules(target):
        b1, b2 = torch.randn(c // ratio) * 0.5, torch.randn(c) * 0.5
        has_bias = [math.prod(s) for _, s, _ in module.parameters()[0] if len(s) == 1]
        describe = {"fc1": N_("the first fully connected layer (squeeze C -> C/r)"),
                    "fc2": N_("the second fully connected layer (C/r -> C)")}
        x = torch.randn(3, c, h, w)
        args = (weights["fc1"], b1 if c // ratio in has_bias else None, weights["fc2"], b2 if c in has_bias else None)
        expected = f.se_reference(x, *args)
        transplant(module, name, weights, {c // ratio: b1, c: b2}, describe, x, channels=c, ratio=ratio,
                   reference=expected)
        compare(module, name, x, expected, f.SE_MISTAKES, args,
                N_("SE block (average pool, FC, ReLU, FC, sigmoid, scale)"),
                lambda forward, x, y: one_value_per_channel(x, y))
    return tr("average pool -> FC C->C/r -> ReLU -> FC C/r->C -> sigmoid scales x (default ratio 16); "
              "matches Hu et al. on {n} sizes with known weights and biases.", n=len(CHANNEL_CASES))


def pooling_channel_attention(target: Target) -> str:
    """Lesson 06's ablation module ``cls(in_channels, ratio=16, pooling="avg+max")``.

    ``pooling="avg+max"`` (the default) must be CBAM's channel attention,
    x * sigmoid(MLP(avg) + MLP(max)); ``pooling="avg"`` the same module without the max branch,
    x * sigmoid(MLP(avg)). Both modes have the same shared MLP, so only the pooling differs.
    """
    __tracebackhide__ = True
    name = target.name
    describe = {"fc1": N_("the MLP's first layer"), "fc2": N_("the MLP's second layer")}
    modes = [("avg+max", f.channel_attention_reference, f.BOTH_MISTAKES, N_("channel attention (avg+max)")),
             ("avg", f.avg_branch_only, f.AVG_ONLY_MISTAKES,
              N_("channel attention without the max branch, x * sigmoid(MLP(avg))")),
             (None, f.channel_attention_reference, [
                 (N_("Without a pooling argument your module uses the average only: make the default "
                     "pooling='avg+max', the paper's channel attention."),
                  f.avg_branch_only)] + f.BOTH_MISTAKES,
              N_("channel attention with the default pooling, which must be 'avg+max'"))]
    for pooling, reference, mistakes, formula in modes:
        for c, r, h, w in CHANNEL_CASES[:3]:
            module = target.build(c, ratio=r, **({} if pooling is None else {"pooling": pooling}))
            weights = mlp_weights(c, r)
            zeros = {c // r: torch.zeros(c // r), c: torch.zeros(c)}
            x = torch.randn(3, c, h, w)
            expected = reference(x, weights["fc1"], weights["fc2"])
            transplant(module, name, weights, zeros, describe, x, channels=c, ratio=r, reference=expected)
            probes = channel_probes if pooling != "avg" else (lambda forward, x, y: one_value_per_channel(x, y))
            compare(module, name, x, expected, mistakes, (weights["fc1"], weights["fc2"]), formula, probes)
    return tr("pooling='avg+max' (the default) is sigmoid(MLP(avg) + MLP(max)) and pooling='avg' is "
              "sigmoid(MLP(avg)), one shared MLP; both scale x and match the formulas on "
              "{n} sizes each with known weights.", n=len(CHANNEL_CASES[:3]))


# --------------------------------------------------------------------------------------------
# Function checkers: descriptors and parameter counts
# --------------------------------------------------------------------------------------------

def _count(target: Target, cases, want: Callable[[int, int], int], diagnose: Callable[[int, int, Any], list]) -> None:
    """``fn(C, r) -> int`` for each case: the right whole number, or the hint its value points at."""
    __tracebackhide__ = True
    name = target.name
    for c, r in cases:
        call = f"{name}({c}, {r})"
        got = target.call(call, c, r)
        expected = want(c, r)
        if isinstance(got, bool) or not isinstance(got, (int, float)) and not (
                isinstance(got, torch.Tensor) and got.numel() == 1):
            raise fail(name, tr("{call} returned {got}; return a whole number (an int).", call=call, got=_shown(got)))
        value = float(got)
        if value == expected:
            if not isinstance(got, int):
                raise fail(name, tr("{call} returned {got}, the right value but not an int: "
                                    "use integer division // (or int(...)).", call=call, got=_shown(got)))
            continue
        hint = next((msg for v, msg in diagnose(c, r, got) if v is not None and math.isclose(value, v)), None)
        raise fail(name, tr("{call} returned {got}, expected {expected}. {hint}", call=call, got=_shown(got),
                            expected=expected, hint=tr(hint or diagnose(c, r, None)[-1][1])))


def _shown(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor({value.reshape(-1)[0].item() if value.numel() == 1 else '...'})"
    return value.text if isinstance(value, Other) else repr(value)


def channel_attention_params(target: Target) -> str:
    """``fn(in_channels, ratio) -> int``: the shared bias-free MLP has 2 * C * (C // r) weights."""
    __tracebackhide__ = True
    cases = [(64, 16), (128, 8), (100, 16), (256, 16), (10, 3)]

    def diagnose(c, r, got):
        h = c // r
        return [(2 * c * c / r if isinstance(got, float) else None,
                 N_("You divided by the ratio without rounding down: the hidden layer has "
                    "in_channels // ratio units (a whole number), so count 2 * C * (C // r).")),
                ((2 * c * c) // r, N_("Round the hidden size down first: 2 * C * (C // r), not (2 * C * C) // r.")),
                (c * h, N_("That is one layer: the MLP has two, C -> C/r and C/r -> C, so 2 * C * (C // r).")),
                (2 * c * h + h + c, N_("You counted biases; the Day 50 lesson's MLP has none (bias=False): "
                                       "2 * C * (C // r).")),
                (4 * c * h, N_("You counted the MLP twice; it is shared by both descriptors, so count it once.")),
                (c * c, N_("Each layer has C * (C // r) weights, not C * C: the ratio shrinks the hidden layer.")),
                (None, N_("Count the weights of Linear(C, C//r) and Linear(C//r, C) without biases."))]

    _count(target, cases, lambda c, r: 2 * c * (c // r), diagnose)
    return tr("2 * C * (C // r) for {n} pairs (C, r), including ratios that do not divide C.", n=len(cases))


def se_parameters(target: Target) -> str:
    """``fn(in_channels, ratio) -> int``: SE's two layers with biases, 2 * C * (C // r) + C // r + C."""
    __tracebackhide__ = True
    cases = [(64, 16), (128, 16), (256, 8), (100, 16)]

    def diagnose(c, r, got):
        h = c // r
        return [(2 * c * h, N_("Did you forget the biases? SE's layers have them, as in its released models: "
                               "two weight matrices of C x C//r each, plus C//r + C biases.")),
                (2 * c * h + h, N_("Only the first layer's biases are counted: the second has C more.")),
                (2 * c * h + c, N_("Only the second layer's biases are counted: the first has C//r more.")),
                (None, N_("Two weight matrices of C x C//r each, plus a bias for each of the C//r hidden "
                          "units and for each of the C outputs."))]

    _count(target, cases, lambda c, r: 2 * c * (c // r) + c // r + c, diagnose)
    return tr("2 * C * (C // r) weights plus C // r + C biases, for {n} sizes.", n=len(cases))


def _descriptor_calls(target: Target) -> Iterator[tuple]:
    """The learner's descriptor function called on two inputs: (shape, x, the call as a learner would
    write it, what it returned)."""
    __tracebackhide__ = True
    for shape in [(2, 6, 5, 4), (3, 16, 7, 7)]:
        x = torch.randn(*shape) + 0.3
        call = tr("{name}(x with shape {shape})", name=target.name, shape=shape)
        yield shape, x, call, target.call(call, x)


def _pair(result: Any, call: str, name: str) -> tuple:
    __tracebackhide__ = True
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise fail(name, tr("{call} returned {got}; return a pair: return avg, mx.", call=call, got=shape_of(result)))
    return tuple(result)


def channel_descriptors(target: Target) -> str:
    """``fn(x) -> (avg, max)``: the per-channel global average and maximum, each (B, C)."""
    __tracebackhide__ = True
    name = target.name
    for shape, x, call, result in _descriptor_calls(target):
        avg, mx = _pair(result, call, name)
        b, c = shape[:2]
        want_avg, want_max = f.avg_pool(x), f.max_pool(x)
        for label, got in ((tr("first (average)"), avg), (tr("second (max)"), mx)):
            if isinstance(got, tuple):
                raise fail(name, tr("The {label} result is a tuple: torch.max(x, dim) returns (values, "
                                    "indices); take the values, or use x.amax(dim=(2, 3)).", label=label))
            if not isinstance(got, torch.Tensor):
                raise fail(name, tr("The {label} result is {got}, not a tensor.", label=label, got=shape_of(got)))
            if got.shape != (b, c):
                hint = ""
                if tuple(got.shape) == (b, c, 1, 1):
                    hint = tr(" Flatten it with .view(B, C) (or .flatten(1)), or pool without keepdim.")
                elif got.dim() == 3 and got.shape[:2] == (b, c):
                    hint = tr(" Pool over both spatial axes: dim=(2, 3).")
                elif tuple(got.shape) in {(b, *shape[2:]), (b, 1, *shape[2:])}:
                    hint = tr(" You pooled over the channels (dim=1); channel descriptors pool over space, dim=(2, 3).")
                raise fail(name, tr("The {label} descriptor has shape {got} for an input of shape {shape}; "
                                    "expected (B, C) = {want}.{hint}",
                                    label=label, got=tuple(got.shape), shape=shape, want=(b, c), hint=hint))
        if close(avg, want_max) and close(mx, want_avg):
            raise fail(name, tr("The two results are swapped: return (average, max), in that order."))
        if not close(avg, want_avg):
            hint = tr(" It equals the max: did you compute the max twice?") if close(avg, want_max) else (
                tr(" Use x.mean(dim=(2, 3))."))
            raise fail(name, tr("The first result is not the per-channel average.{hint}", hint=hint))
        if not close(mx, want_max):
            hint = tr(" It equals the average: did you compute the average twice?") if close(mx, want_avg) else (
                tr(" Use x.amax(dim=(2, 3))."))
            raise fail(name, tr("The second result is not the per-channel maximum.{hint}", hint=hint))
    return tr("returns (average, max) over height and width, each of shape (B, C).")


def spatial_descriptors(target: Target) -> str:
    """``fn(x) -> (B, 2, H, W)``: channel 0 the mean over channels, channel 1 the max."""
    __tracebackhide__ = True
    name = target.name
    for shape, x, call, got in _descriptor_calls(target):
        b, _, h, w = shape
        if isinstance(got, (tuple, list)):
            raise fail(name, tr("{call} returned a {type}; concatenate the two maps into one tensor: "
                                "torch.cat([avg_out, max_out], dim=1). If it came from torch.max(x, dim=1), "
                                "take [0] (the values).", call=call, type=type(got).__name__))
        if not isinstance(got, torch.Tensor):
            raise fail(name, tr("{call} returned {got}, not a tensor.", call=call, got=shape_of(got)))
        if got.shape != (b, 2, h, w):
            hint = ""
            if got.dim() == 4 and got.shape[2:] == (1, 1):
                hint = tr(" You pooled over space; spatial descriptors pool over the channels (dim=1).")
            elif got.dim() == 3 or tuple(got.shape) == (2 * b, 1, h, w):
                hint = tr(" Keep the channel axis (keepdim=True) and concatenate along dim=1.")
            raise fail(name, tr("{call} returned shape {got}; expected (B, 2, H, W) = {want}.{hint}",
                                call=call, got=tuple(got.shape), want=(b, 2, h, w), hint=hint))
        mean, mx = x.mean(1, keepdim=True), x.amax(1, keepdim=True)
        if close(got, torch.cat([mean, mx], 1)):
            continue
        if close(got, torch.cat([mx, mean], 1)):
            raise fail(name, tr("The order is [max, mean]; the Day 50 lesson uses [mean, max] (channel 0 the "
                                "mean, channel 1 the max), and its convolution weights depend on that order."))
        if close(got[:, :1], x.sum(1, keepdim=True)):
            raise fail(name, tr("Channel 0 is the sum over channels; take the mean: "
                                "torch.mean(x, dim=1, keepdim=True)."))
        if not close(got[:, :1], mean):
            raise fail(name, tr("Channel 0 is not the mean over channels: torch.mean(x, dim=1, keepdim=True)."))
        raise fail(name, tr("Channel 1 is not the max over channels: torch.max(x, dim=1, keepdim=True)[0]."))
    return tr("returns the (B, 2, H, W) map [mean over channels, max over channels].")


# --------------------------------------------------------------------------------------------
# Training-loop checkers (lesson 05)
# --------------------------------------------------------------------------------------------

def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(isinstance(x, torch.Tensor) and x.shape == y.shape
                                    and torch.allclose(x, y, atol=1e-6, rtol=1e-5) for x, y in zip(a, b))


def train_step(target: Target) -> str:
    """``fn(model, images, labels, optimizer, criterion) -> float``: one optimisation step.

    The probe hands the learner a tiny classifier with stale gradients already in ``.grad`` (so a
    missing zero_grad shows), SGD at lr 0.5 and a label-smoothed cross-entropy; the reference does
    zero_grad, forward, loss, backward, step on its own copy here.
    """
    __tracebackhide__ = True
    name = target.name
    reference = tiny_classifier()
    images, labels = torch.randn(6, 3, 4, 4), torch.randint(0, 4, (6,))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)  # not the default, so a hard-coded one shows
    start = [p.detach().clone() for p in reference.parameters()]
    stale = [torch.randn_like(p) for p in start]
    with torch.no_grad():
        plain_loss = F.cross_entropy(reference(images), labels).item()
    ref_loss = criterion(reference(images), labels)
    ref_loss.backward()
    torch.optim.SGD(reference.parameters(), lr=0.5).step()
    after_step = [p.detach().clone() for p in reference.parameters()]
    with torch.no_grad():
        loss_after = criterion(reference(images), labels).item()
    accumulated = [p - 0.5 * (q.grad + s) for p, q, s in zip(start, reference.parameters(), stale)]

    call = f"{name}(model, images, labels, optimizer, criterion)"
    reply = target.task("train_step", call, params=start, stale=stale, images=images, labels=labels,
                        lr=0.5, label_smoothing=0.1)
    got, now = decode(reply["value"]), decode(reply["params"])
    if _same(now, start):
        raise fail(name, tr("The model's parameters did not change and the gradients are empty: call "
                            "loss.backward() before optimizer.step(), and optimizer.zero_grad() before the "
                            "forward pass, not between backward and step.") if reply.get("grads_empty") else
                   tr("The model's parameters did not change Did you call optimizer.step() after loss.backward()?"))
    if _same(now, accumulated):
        raise fail(name, tr("The update used old gradients plus the new ones: call optimizer.zero_grad() "
                            "first, because PyTorch adds each backward's gradients to .grad."))
    if not _same(now, after_step):
        raise fail(name, tr("The parameters changed, but not as one step of the optimizer you were given "
                            "would change them: use the optimizer and criterion passed in (do not create "
                            "your own), and call optimizer.step() exactly once."))
    if isinstance(got, torch.Tensor):
        raise fail(name, tr("{call} returned a tensor; return loss.item(), a plain float (a tensor "
                            "keeps the whole graph alive).", call=call))
    if got is None:
        raise fail(name, tr("{call} returned None: end with `return loss.item()`.", call=call))
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise fail(name, tr("{call} returned {got}; return loss.item(), a float.", call=call, got=shape_of(got)))
    if not math.isclose(got, ref_loss.item(), rel_tol=1e-5, abs_tol=1e-6):
        if math.isclose(got, loss_after, rel_tol=1e-5):
            hint = tr("It is the loss after the step: return the loss you called backward() on.")
        elif math.isclose(got, plain_loss, rel_tol=1e-5):
            hint = tr("It is a plain cross-entropy: use the criterion passed in, not a new one.")
        else:
            hint = tr("Return criterion(model(images), labels).item(), the loss of this batch before the step.")
        raise fail(name, tr("It returned {got:.6f}, expected {want:.6f}. {hint}", got=got, want=ref_loss.item(),
                            hint=hint))
    return tr("zero_grad, forward, loss, backward, step: the parameters moved exactly as one optimizer "
              "step, stale gradients were cleared, and the batch's loss came back as a float.")


def evaluate(target: Target) -> str:
    """``fn(model, loader, criterion, device) -> (mean loss per batch, accuracy in %)``.

    As the Day 50 lesson's test loop: model.eval(), torch.no_grad(), loss averaged over batches,
    accuracy = 100 * correct / total. The loader's last batch is smaller, as in real loaders.
    """
    __tracebackhide__ = True
    name = target.name
    model = EvalModel()
    with torch.no_grad():
        model.body[2].running_mean.uniform_(-0.5, 0.5)
        model.body[2].running_var.uniform_(0.5, 2.0)
    images = torch.randn(10, 3, 2, 2)
    model.eval()
    with torch.no_grad():
        predicted = model(images).argmax(1)
        labels = torch.where(torch.arange(10) < 6, predicted, (predicted + 1) % 3)  # 60% right
        criterion = nn.CrossEntropyLoss()
        batch_losses = [criterion(model(images[i:i + 4]), labels[i:i + 4]).item() for i in range(0, 10, 4)]
        per_image = F.cross_entropy(model(images), labels).item()
    want_loss, want_acc = sum(batch_losses) / len(batch_losses), 60.0

    call = f"{name}(model, loader, criterion, device)"
    reply = target.task("evaluate", call, state=dict(model.state_dict()), images=images, labels=labels, batch_size=4)
    result, calls = decode(reply["value"]), reply.get("calls") or []
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise fail(name, tr("{call} returned {got}; return a pair (mean loss, accuracy in %).",
                            call=call, got=shape_of(result)))
    if not calls:
        raise fail(name, tr("The model was never called: loop over the loader and call model(images)."))
    if any(bool(training) for _, training in calls):
        raise fail(name, tr("The model ran in training mode: call model.eval() before the loop, so "
                            "dropout is off and batch norm uses its running statistics."))
    if any(bool(grad) for grad, _ in calls):
        raise fail(name, tr("Gradients were tracked during evaluation: wrap the loop in "
                            "`with torch.no_grad():` (it saves memory and time)."))
    loss, acc = result
    for label, value in ((tr("loss"), loss), (tr("accuracy"), acc)):
        if isinstance(value, torch.Tensor):
            raise fail(name, tr("The {label} is a tensor; return plain numbers (use .item()).", label=label))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(name, tr("The {label} is {got}; return plain numbers.", label=label, got=shape_of(value)))
    if not math.isclose(acc, want_acc, abs_tol=1e-6):
        hint = (tr("That is a fraction: multiply by 100 for a percentage (100 * correct / total).")
                if math.isclose(acc, want_acc / 100) else
                tr("Count predictions (output.argmax(1) == labels) over all images, divide by the number "
                   "of images (not batches), times 100."))
        raise fail(name, tr("The accuracy is {got}, expected {want}. {hint}", got=acc, want=want_acc, hint=hint))
    if not math.isclose(loss, want_loss, rel_tol=1e-5):
        if math.isclose(loss, sum(batch_losses), rel_tol=1e-5):
            hint = tr("That is the sum over batches: divide by len(loader), the number of batches.")
        elif math.isclose(loss, per_image, rel_tol=1e-5):
            hint = tr("That is the mean over images; the Day 50 lesson averages the per-batch losses: "
                      "total / len(loader).")
        else:
            hint = tr("Add criterion(outputs, labels).item() for each batch, then divide by len(loader).")
        raise fail(name, tr("The loss is {got}, expected {want:.6f}. {hint}", got=loss, want=want_loss, hint=hint))
    return tr("model.eval() and torch.no_grad() used; mean loss per batch and accuracy in percent "
              "match the Day 50 lesson's test loop (with a smaller last batch).")
