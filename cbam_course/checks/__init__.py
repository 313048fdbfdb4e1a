"""Exercise checkers: instant, behaviour-based feedback on a learner's code.

Each ``check_*`` function takes the learner's class (or function) and judges what it *does*,
never what it is called or which layers it uses. Three outcomes:

- right: prints one line starting with ``✔`` that says what was verified, returns ``True``;
- not written yet (still raises ``NotImplementedError``): prints ``✘ not done yet: ...`` and
  returns ``False`` without raising, so an untouched exercise notebook runs to the end;
- wrong: raises ``AssertionError`` whose message names the likely mistake and how to find it.
  An exception inside the learner's code becomes an ``AssertionError`` that says which call
  failed, with the original error chained below it.

Every verdict and hint is in the learner's language (``cbam_course.i18n``: ``CBAM_COURSE_LANG=zh``
for Simplified Chinese), written in the code as an English template (``tr``/``N_``).

Two sides, in three files:

- ``probe.py`` builds the learner's module or calls the learner's function with the inputs and
  weights the judge chose, and reports what came back as plain data. It is the only code that
  touches learner code.
- ``judge.py`` (the checkers) and ``formulas.py`` (the references and the mistakes learners
  make) decide: they compare what the probe reported with the right answers and name the mistake.

In a lesson both sides run in the learner's process. When a class is graded
(``python -m cbam_course grade``) the probe runs in each learner's kernel and the judge in the
grader's process (:func:`verdict`), so a notebook that patches torch or the checkers can change
only what its own code seems to return.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from ..i18n import tr
from . import judge
from .judge import Failure, NotDone, Target
from .probe import Probe

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
    "check_se_parameters",
    "check_channel_descriptors",
    "check_spatial_descriptors",
    "check_train_step",
    "check_evaluate",
]

# Each public checker: the judge's function, and what the learner passes ("class" or "function").
CHECKERS: dict[str, tuple[Callable[[Target], str], str]] = {
    "check_channel_attention": (judge.channel_attention, "class"),
    "check_spatial_attention": (judge.spatial_attention, "class"),
    "check_cbam": (judge.cbam, "class"),
    "check_se_block": (judge.se_block, "class"),
    "check_pooling_channel_attention": (judge.pooling_channel_attention, "class"),
    "check_spatial_first_cbam": (judge.spatial_first_cbam, "class"),
    "check_parallel_cbam": (judge.parallel_cbam, "class"),
    "check_cbam_basic_block": (judge.cbam_basic_block, "class"),
    "check_channel_attention_params": (judge.channel_attention_params, "function"),
    "check_se_parameters": (judge.se_parameters, "function"),
    "check_channel_descriptors": (judge.channel_descriptors, "function"),
    "check_spatial_descriptors": (judge.spatial_descriptors, "function"),
    "check_train_step": (judge.train_step, "function"),
    "check_evaluate": (judge.evaluate, "function"),
}


def _wrong_kind(checker: str, kind: str, found: str, shown: str) -> str | None:
    """Why the learner passed the wrong thing, or None."""
    if kind == "class" and found != "class":
        return tr("{checker} expects the class itself, not {shown}(...): write {checker}({shown}), "
                  "without parentheses after the class name.", checker=checker, shown=shown)
    if kind == "function" and found != "function":
        return tr("{checker} expects a function, got {shown}.", checker=checker, shown=shown)
    return None


def verdict(checker: str, target: Target) -> tuple[str, str]:
    """``(status, text)`` of ``checker`` on ``target``: "pass" with what was verified, "fail" or
    "error" with the hint (error: the learner's code raised), "not_done", or "missing" when the
    notebook defines no such name. The grader's entry: it runs only judge code here; whatever the
    learner's code does happens behind ``target``'s probe."""
    run, kind = CHECKERS[checker]
    found = target.kind()
    if found == "missing":
        return "missing", ""
    wrong = _wrong_kind(checker, kind, found, target.name)
    if wrong:
        return "error", wrong
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            text = run(target)
        except NotDone:
            return "not_done", tr("{name} still raises NotImplementedError — fill in the cells marked YOUR CODE HERE",
                                  name=target.name)
        except Failure as err:
            return ("error" if err.learner_error else "fail"), str(err)
    return "pass", tr("{name} is correct: {verified}", name=target.name, verified=text)


def local_target(obj: Any) -> Target:
    """``obj`` through a probe in this process: what a lesson's check uses."""
    name = getattr(obj, "__name__", type(obj).__name__)
    probe = Probe({name: obj})
    return Target(name, probe.serve, lambda: probe.last_exception)


def _lesson_check(checker: str) -> Callable[[Any], bool]:
    """The public ``check_*`` function: judge ``obj`` here and now, print the outcome."""
    run, kind = CHECKERS[checker]

    def check(obj: Any) -> bool:
        __tracebackhide__ = True
        is_class = isinstance(obj, type)
        wrong = _wrong_kind(checker, kind, "class" if is_class else "function" if callable(obj) else "other",
                            type(obj).__name__ if kind == "class" else repr(obj))
        if wrong:
            raise TypeError(wrong)
        target = local_target(obj)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            try:
                verified = run(target)
            except NotDone:
                print(tr("✘ not done yet: {name} still raises NotImplementedError — fill in the cells marked "
                         "YOUR CODE HERE", name=target.name))
                return False
        print(tr("✔ {name} is correct: {verified}", name=target.name, verified=verified))
        return True

    check.__name__ = check.__qualname__ = checker
    check.__doc__ = f"Check {run.__doc__.strip()}" if run.__doc__ else None
    first = inspect.Parameter("cls" if kind == "class" else "fn", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    check.__signature__ = inspect.Signature([first], return_annotation=bool)  # help() shows what a learner passes
    return check


check_channel_attention = _lesson_check("check_channel_attention")
check_spatial_attention = _lesson_check("check_spatial_attention")
check_cbam = _lesson_check("check_cbam")
check_se_block = _lesson_check("check_se_block")
check_pooling_channel_attention = _lesson_check("check_pooling_channel_attention")
check_spatial_first_cbam = _lesson_check("check_spatial_first_cbam")
check_parallel_cbam = _lesson_check("check_parallel_cbam")
check_cbam_basic_block = _lesson_check("check_cbam_basic_block")
check_channel_attention_params = _lesson_check("check_channel_attention_params")
check_se_parameters = _lesson_check("check_se_parameters")
check_channel_descriptors = _lesson_check("check_channel_descriptors")
check_spatial_descriptors = _lesson_check("check_spatial_descriptors")
check_train_step = _lesson_check("check_train_step")
check_evaluate = _lesson_check("check_evaluate")
