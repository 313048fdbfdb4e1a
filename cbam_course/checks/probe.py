"""The probe: the only part of the checkers that touches a learner's code.

It builds the learner's module or calls the learner's function with the inputs and weights the
judge chose, and reports what came back as plain data: output tensors, return values, parameter
names and shapes, the errors raised. It compares nothing and decides nothing; the judge
(``judge.py``) does that, from these reports alone.

In a lesson the probe and the judge share the learner's process, and a check answers at once.
When a class is graded, ``python -m cbam_course grade`` sends this file's source into each learner's
kernel and asks it questions there, one request at a time (:meth:`Probe.serve`), while the judge
runs in the grader's own process, which never runs learner code. A notebook that patches torch,
the checkers or this probe can then change only what its own code seems to return: the one way to
pass is to compute the right function.

The wire format (:func:`encode`, :func:`decode`) is JSON: tensors travel as their raw bytes (base64)
with dtype and shape, and nothing is ever unpickled. This file imports only the standard library
and torch, so that it runs as it is wherever it is sent.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

__all__ = ["Probe", "Raised", "Other", "ProbeError", "encode", "decode", "tiny_classifier", "EvalModel",
           "VALUE_FIELDS"]

DTYPES = {str(d): d for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8,
                              torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)}
MAX_ELEMENTS = 1 << 24     # per tensor: a reply larger than the checkers ever need is refused
MAX_DEPTH = 6              # nested tuples and lists


class ProbeError(ValueError):
    """A reply that is not what a probe sends: malformed, too large, or of an unknown kind."""


@dataclass(frozen=True)
class Raised:
    """The learner's code raised: the exception's type and message (the object itself only in a
    lesson, where the judge chains it so the traceback shows the learner's line)."""

    type: str
    message: str
    not_implemented: bool = False
    exception: BaseException | None = None


@dataclass(frozen=True)
class Other:
    """A value the wire format does not carry as itself (a string, a dict, an object): its type
    and a short repr, enough to say what came back."""

    type: str
    text: str


# ----------------------------------------------------------------------------------------------
# the wire format


def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able data: None, bool, int, float, tensors, tuples and lists of them;
    anything else as its type and a short repr."""
    try:
        kind = type(value)
        if value is None:
            return {"t": "none"}
        if kind is bool:
            return {"t": "bool", "v": value}
        if kind is int:
            return {"t": "int", "v": str(value)}
        if kind is float:
            return {"t": "float", "v": repr(value)}
        if kind is str:
            return {"t": "str", "v": value[:10_000]}
        if isinstance(value, torch.Tensor):
            t = torch.Tensor.detach(value).to("cpu").contiguous()
            if str(t.dtype) not in DTYPES or t.numel() > MAX_ELEMENTS:
                return {"t": "other", "type": f"tensor of {t.dtype}, {t.numel()} elements", "v": ""}
            raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            return {"t": "tensor", "dtype": str(t.dtype), "shape": list(t.shape),
                    "data": base64.b64encode(raw).decode("ascii"), "grad": bool(value.requires_grad)}
        if isinstance(value, (tuple, list, dict)) and depth >= MAX_DEPTH:
            return {"t": "other", "type": kind.__name__, "v": "nested too deep"}
        if isinstance(value, (tuple, list)):  # torch.max's (values, indices) is a tuple too
            return {"t": "list" if isinstance(value, list) else "tuple", "items": [encode(v, depth + 1) for v in value]}
        if isinstance(value, dict) and all(type(k) is str for k in value):
            return {"t": "dict", "items": [[k, encode(v, depth + 1)] for k, v in value.items()]}
        return {"t": "other", "type": kind.__name__, "v": repr(value)[:200]}
    except Exception as err:  # noqa: BLE001 - a value that cannot even be described
        return {"t": "other", "type": "unreadable", "v": f"{type(err).__name__}: {err}"[:200]}


def decode(data: Any, depth: int = 0) -> Any:
    """The value :func:`encode` described, checked on the way in: raises :class:`ProbeError` for
    anything a probe does not send."""
    if not isinstance(data, dict) or depth > MAX_DEPTH + 1:
        raise ProbeError("not a value of the wire format")
    kind = data.get("t")
    if kind == "none":
        return None
    if kind == "bool" and type(data.get("v")) is bool:
        return data["v"]
    if kind == "int" and isinstance(data.get("v"), str) and len(data["v"]) < 400:
        return int(data["v"])
    if kind == "float" and isinstance(data.get("v"), str) and len(data["v"]) < 40:
        return float(data["v"])
    if kind == "str" and isinstance(data.get("v"), str) and len(data["v"]) <= 10_000:
        return data["v"]
    if kind == "tensor":
        dtype, shape, text = DTYPES.get(str(data.get("dtype"))), data.get("shape"), data.get("data")
        if (dtype is None or not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape)
                or not isinstance(text, str)):
            raise ProbeError("a malformed tensor")
        numel = math.prod(shape)
        raw = base64.b64decode(text, validate=True)
        size = torch.empty((), dtype=dtype).element_size()
        if numel > MAX_ELEMENTS or len(raw) != numel * size:
            raise ProbeError("a tensor whose data does not match its shape")
        if numel == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape).clone()
    if kind in ("tuple", "list") and isinstance(data.get("items"), list):
        items = [decode(v, depth + 1) for v in data["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict" and isinstance(data.get("items"), list):
        if not all(isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) for i in data["items"]):
            raise ProbeError("a malformed dict")
        return {k: decode(v, depth + 1) for k, v in data["items"]}
    if kind == "other":
        return Other(str(data.get("type"))[:100], str(data.get("v"))[:200])
    raise ProbeError(f"an unknown kind of value {str(kind)[:20]!r}")


def _raised(err: BaseException) -> dict:
    return {"raised": {"type": type(err).__name__, "message": str(err)[:2000],
                       "not_implemented": isinstance(err, NotImplementedError)}}


# ----------------------------------------------------------------------------------------------
# the tiny models the training-loop checks hand to the learner's functions


def tiny_classifier() -> nn.Module:
    """What ``check_train_step`` trains one step: 3x4x4 images, 4 classes."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 4))


class EvalModel(nn.Module):
    """What ``check_evaluate`` evaluates: a tiny classifier with dropout and batch norm that
    records, for every forward, whether gradients were on and whether it was in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                  nn.Dropout(0.5), nn.Linear(16, 3))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return self.body(x)


# ----------------------------------------------------------------------------------------------
# the probe


class Probe:
    """Answers the judge's requests about the learner's definitions in ``namespace`` (a
    notebook's globals). Each request is a dict ``{"op": ..., ...}``; :meth:`serve` takes and
    returns JSON text, :meth:`handle` the decoded dicts (a lesson's checks use it directly)."""

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace
        self.built: dict[int, nn.Module] = {}
        self.last_exception: BaseException | None = None

    def serve(self, request: str) -> str:
        """One request as JSON text, its reply as JSON text: what the grader sends and reads."""
        try:
            message = json.loads(request)
            reply = self.handle(message["op"], {k: decode(v) if k in VALUE_FIELDS else v for k, v in message.items()})
        except Exception as err:  # noqa: BLE001 - a request the probe cannot read is an answer too
            reply = {"probe_error": f"{type(err).__name__}: {err}"[:500]}
        return json.dumps(reply)

    def handle(self, op: str, request: dict) -> dict:
        """The reply to one request, values encoded: see the ``_op_*`` methods."""
        return getattr(self, f"_op_{op}")(**{k: v for k, v in request.items() if k != "op"})

    # -- finding and building --
    def _op_find(self, name: str) -> dict:
        if name not in self.namespace:
            return {"kind": "missing"}
        obj = self.namespace[name]
        kind = "class" if isinstance(obj, type) else "function" if callable(obj) else "other"
        return {"kind": kind, "type": type(obj).__name__}

    def _op_build(self, name: str, args: tuple = (), kwargs: dict | None = None) -> dict:
        """Build the learner's class; the reply names its parameters (and BatchNorms) too."""
        __tracebackhide__ = True
        try:
            module = self.namespace[name](*args, **(kwargs or {}))
        except BaseException as err:  # noqa: BLE001 - the learner's error, reported
            return self._keep(err)
        if not isinstance(module, nn.Module):
            return {"built": encode(module)}
        handle = len(self.built)
        self.built[handle] = module
        normed = {id(p) for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                  for p in m.parameters(recurse=False)}
        return {"handle": handle,
                "parameters": [[n, list(p.shape), id(p) in normed] for n, p in module.named_parameters()],
                "batchnorms": [[type(m).__name__, getattr(m, "num_features", 0), bool(getattr(m, "affine", False)),
                                getattr(m, "running_mean", None) is not None]
                               for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]}

    def _op_load(self, handle: int, params: dict, batchnorm: tuple | None = None,
                 x: torch.Tensor | None = None) -> dict:
        """Set the named parameters (unnamed ones are left alone) and, with ``batchnorm`` =
        (weight, bias), every BatchNorm to those values, running mean 0 and variance 1; with ``x``,
        then run forward on it (one request for both)."""
        module = self.built[handle]
        named = dict(module.named_parameters())
        with torch.no_grad():
            for name, value in params.items():
                named[name].copy_(value.reshape(named[name].shape))
            if batchnorm is not None:
                for m in module.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.weight.copy_(batchnorm[0])
                        m.bias.copy_(batchnorm[1])
                        m.running_mean.zero_()
                        m.running_var.fill_(1.0)
                        m.eps = 1e-5
        return {} if x is None else self._op_forward(handle, x)

    def _op_mode(self, handle: int, training: bool) -> dict:
        self.built[handle].train(training)
        return {}

    # -- calling --
    def _op_forward(self, handle: int, x: torch.Tensor) -> dict:
        __tracebackhide__ = True
        module = self.built[handle]
        try:
            with torch.no_grad():
                y = module(x)
        except BaseException as err:  # noqa: BLE001
            return self._keep(err)
        return {"value": encode(y), "training": bool(module.training)}

    def _op_call(self, name: str, args: tuple = ()) -> dict:
        __tracebackhide__ = True
        try:
            value = self.namespace[name](*args)
        except BaseException as err:  # noqa: BLE001
            return self._keep(err)
        return {"value": encode(value)}

    def _op_train_step(self, name: str, params: list, stale: list, images: torch.Tensor, labels: torch.Tensor,
                       lr: float, label_smoothing: float) -> dict:
        """The learner's ``train_step`` on :func:`tiny_classifier` with ``params``, stale gradients
        already in ``.grad``, SGD at ``lr`` and a cross-entropy with ``label_smoothing``."""
        __tracebackhide__ = True
        model = tiny_classifier()
        with torch.no_grad():
            for p, value, grad in zip(model.parameters(), params, stale):
                p.copy_(value)
                p.grad = grad.clone()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        try:
            value = self.namespace[name](model, images, labels, optimizer, criterion)
        except BaseException as err:  # noqa: BLE001
            return self._keep(err)
        return {"value": encode(value), "params": encode([p.detach() for p in model.parameters()]),
                "grads_empty": all(p.grad is None or not p.grad.any() for p in model.parameters())}

    def _op_evaluate(self, name: str, state: dict, images: torch.Tensor, labels: torch.Tensor,
                     batch_size: int) -> dict:
        """The learner's ``evaluate`` on :class:`EvalModel` with ``state``, left in training mode,
        over a DataLoader of ``images`` (the last batch smaller)."""
        __tracebackhide__ = True
        model = EvalModel()
        model.load_state_dict(state)
        model.train()
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=batch_size)
        try:
            value = self.namespace[name](model, loader, nn.CrossEntropyLoss(), torch.device("cpu"))
        except BaseException as err:  # noqa: BLE001
            return self._keep(err)
        return {"value": encode(value), "calls": model.calls}

    def _keep(self, err: BaseException) -> dict:
        """The learner's exception as a reply; in a lesson the judge also gets the object itself."""
        self.last_exception = err
        return _raised(err)


VALUE_FIELDS = {"args", "kwargs", "params", "batchnorm", "x", "stale", "images", "labels", "state"}  # sent encoded
