"""The checkers accept every right implementation and reject every usual mistake with a fitting hint."""
import re

import pytest
import torch
import torch.nn as nn

import cbam_course
import learner_impls as li
from cbam_course import checks
from cbam_course.checks import formulas
from cbam_course.train import loops


def _name(obj):
    return getattr(obj, "__name__", repr(obj))


def assert_rejects(check, impl, hint):
    with pytest.raises(AssertionError) as info:
        check(impl)
    message = str(info.value)
    assert hint.lower() in message.lower(), f"hint {hint!r} not in: {message}"
    assert "is not right yet" in message or "raised" in message


def assert_accepts(check, impl, capsys):
    assert check(impl) is True
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"✔ {_name(impl)} is correct: "), out


MODULE_CASES = {
    "channel": (checks.check_channel_attention, li.RIGHT_CHANNEL, li.WRONG_CHANNEL),
    "spatial": (checks.check_spatial_attention, li.RIGHT_SPATIAL, li.WRONG_SPATIAL),
    "cbam": (checks.check_cbam, li.RIGHT_CBAM, li.WRONG_CBAM),
    "spatial_first": (checks.check_spatial_first_cbam, li.RIGHT_SPATIAL_FIRST, li.WRONG_SPATIAL_FIRST),
    "se": (checks.check_se_block, li.RIGHT_SE, li.WRONG_SE),
    "parallel": (checks.check_parallel_cbam, li.RIGHT_PARALLEL, li.WRONG_PARALLEL),
    "block": (checks.check_cbam_basic_block, li.RIGHT_BLOCK, li.WRONG_BLOCK),
}
RIGHT = [(k, impl) for k, (_, right, _) in MODULE_CASES.items() for impl in right]
WRONG = [(k, impl, hint) for k, (_, _, wrong) in MODULE_CASES.items() for impl, hint in wrong]


@pytest.mark.parametrize("kind,impl", RIGHT, ids=[f"{k}-{i.__name__}" for k, i in RIGHT])
def test_right_module_passes(kind, impl, capsys):
    assert_accepts(MODULE_CASES[kind][0], impl, capsys)


@pytest.mark.parametrize("kind,impl,hint", WRONG, ids=[f"{k}-{i.__name__}" for k, i, _ in WRONG])
def test_wrong_module_gets_hint(kind, impl, hint):
    assert_rejects(MODULE_CASES[kind][0], impl, hint)


ALL_CHECKS = [checks.check_channel_attention, checks.check_spatial_attention, checks.check_cbam,
              checks.check_spatial_first_cbam, checks.check_se_block, checks.check_parallel_cbam]
FUNCTION_CHECKS = [checks.check_channel_attention_params, checks.check_se_parameters, checks.check_channel_descriptors,
                   checks.check_spatial_descriptors, checks.check_train_step, checks.check_evaluate]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("stub", [li.StubInit, li.StubForward], ids=lambda s: s.__name__)
def test_stub_class_is_not_done_without_raising(check, stub, capsys):
    assert check(stub) is False
    out = capsys.readouterr().out.strip()
    assert out == (f"✘ not done yet: {stub.__name__} still raises NotImplementedError — "
                   f"fill in the cells marked YOUR CODE HERE")


@pytest.mark.parametrize("stub", [li.StubBlock, li.StubBlockInit], ids=lambda s: s.__name__)
def test_stub_block_is_not_done_without_raising(stub, capsys):
    assert checks.check_cbam_basic_block(stub) is False
    assert capsys.readouterr().out.startswith(f"✘ not done yet: {stub.__name__} still raises NotImplementedError")


def test_the_parallel_reference_is_the_packages_parallel_cbam():
    """The checker's formula and cbam_course.variants.ParallelCBAM are one definition (the course's
    reading of the paper's §4.1)."""
    from cbam_course.variants import ParallelCBAM
    torch.manual_seed(0)
    m = ParallelCBAM(32, ratio=8, kernel_size=5)
    x = torch.randn(2, 32, 6, 7)
    w1, w2 = m.channel_attention.fc[0].weight, m.channel_attention.fc[2].weight
    with torch.no_grad():
        torch.testing.assert_close(formulas.parallel_cbam_reference(x, w1, w2, m.spatial_attention.conv.weight), m(x))


def test_the_product_of_maps_is_named_another_reading_and_still_fails():
    """x * Mc(x) * Ms(x) is a reading of §4.1, not a plain mistake (the paper gives no equation); the
    hint says so and names the course's reading, but the check fails: the exercise asks for that reading."""
    with pytest.raises(AssertionError) as info:
        checks.check_parallel_cbam(li.CBAMParallel)
    message = str(info.value)
    assert "is not right yet" in message
    for needed in ("another reading", "not a plain mistake", "gives no equation", "the course's reading",
                   "sigmoid(channel_logits + spatial_logits)", "BAM's formula sigma(Mc + Ms)"):
        assert needed in message, f"{needed!r} not in: {message}"


def test_no_hint_or_verdict_calls_the_day_50_lesson_the_seed():
    """"seed" means a random seed (the project's guide); hints and verdicts say "the Day 50 lesson".
    Every string of the judge's side but its docstrings is a hint, a verdict or a formula's name."""
    import ast
    from pathlib import Path

    strings = []
    for module in ("__init__.py", "judge.py", "formulas.py"):
        tree = ast.parse((Path(checks.__file__).parent / module).read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        strings += [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and id(node) not in docstrings]
    assert len(strings) > 100                        # the hints are there to be searched
    offending = [text for text in strings if re.search(r"\bseed\b", text, re.IGNORECASE)]
    assert not offending, offending


@pytest.mark.parametrize("check", FUNCTION_CHECKS, ids=lambda c: c.__name__)
def test_stub_function_is_not_done_without_raising(check, capsys):
    assert check(li.stub_function) is False
    assert capsys.readouterr().out.startswith("✘ not done yet: stub_function still raises NotImplementedError")


def test_learner_exception_names_the_call():
    with pytest.raises(AssertionError) as info:
        checks.check_channel_attention(li.CACrashes)
    message = str(info.value)
    assert re.search(r"CACrashes\(64, ratio=16\)\.forward\(x with shape \(3, 64, 8, 8\)\) raised RuntimeError", message)
    assert isinstance(info.value.__cause__, RuntimeError)  # the learner's own traceback is kept


def test_exception_in_constructor_names_the_call():
    class Broken(nn.Module):
        def __init__(self, in_channels, ratio=16):
            super().__init__()
            raise KeyError("oops")

    with pytest.raises(AssertionError, match=r"Broken\(64, ratio=16\) raised KeyError"):
        checks.check_channel_attention(Broken)


def test_device_error_gets_a_device_hint():
    def step_on_meta(model, images, labels, optimizer, criterion):
        images = images.to("meta")   # like a global `device` that is not the model's
        return train_step(model, images, labels, optimizer, criterion)

    assert_rejects(checks.check_train_step, step_on_meta, "the checker runs on the cpu")


def test_instance_instead_of_class_is_a_clear_type_error():
    with pytest.raises(TypeError, match="the class itself"):
        checks.check_channel_attention(li.CAConv(64))


def test_checkers_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_channel_attention(li.CAConv)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- functions: parameter count

@pytest.mark.parametrize("fn", [lambda c, r: 2 * c * (c // r), lambda c, r: c * (c // r) * 2,
                                lambda c, r: sum(p.numel() for p in cbam_course.ChannelAttention(c, r).parameters())])
def test_params_right(fn, capsys):
    assert checks.check_channel_attention_params(fn) is True


@pytest.mark.parametrize("fn,hint", [
    (lambda c, r: 2 * c * c / r, "integer division"),
    (lambda c, r: 2 * c * c / r if c % r else 2 * c * c // r, "without rounding down"),
    (lambda c, r: (2 * c * c) // r, "Round the hidden size down first"),
    (lambda c, r: c * (c // r), "That is one layer"),
    (lambda c, r: 2 * c * (c // r) + c // r + c, "biases"),
    (lambda c, r: 4 * c * (c // r), "shared"),
    (lambda c, r: float(2 * c * (c // r)), "not an int"),
    (lambda c, r: None, "whole number"),
])
def test_params_wrong(fn, hint):
    assert_rejects(checks.check_channel_attention_params, fn, hint)


# ---------------------------------------------------------------- functions: descriptors

def channel_descriptors(x):
    return x.mean((2, 3)), x.amax((2, 3))


def channel_descriptors_pools(x):
    b, c = x.shape[:2]
    return nn.AdaptiveAvgPool2d(1)(x).view(b, c), torch.max(x.flatten(2), dim=2)[0]


def test_channel_descriptors_right(capsys):
    assert checks.check_channel_descriptors(channel_descriptors)
    assert checks.check_channel_descriptors(channel_descriptors_pools)


@pytest.mark.parametrize("fn,hint", [
    (lambda x: (x.amax((2, 3)), x.mean((2, 3))), "swapped"),
    (lambda x: (x.mean((2, 3)), x.mean((2, 3))), "average twice"),
    (lambda x: (x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)), "Flatten"),
    (lambda x: (x.mean(1), x.amax(1)), "pooled over the channels"),
    (lambda x: (x.mean(2), x.amax(2)), "both spatial axes"),
    (lambda x: (x.mean((2, 3)), torch.max(x.flatten(2), dim=2)), "(values, indices)"),
    (lambda x: x.mean((2, 3)), "return a pair"),
])
def test_channel_descriptors_wrong(fn, hint):
    assert_rejects(checks.check_channel_descriptors, fn, hint)


def spatial_descriptors(x):
    return torch.cat([torch.mean(x, dim=1, keepdim=True), torch.max(x, dim=1, keepdim=True)[0]], dim=1)


def test_spatial_descriptors_right(capsys):
    assert checks.check_spatial_descriptors(spatial_descriptors)
    assert checks.check_spatial_descriptors(lambda x: torch.stack([x.mean(1), x.amax(1)], 1))


@pytest.mark.parametrize("fn,hint", [
    (lambda x: torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1), "[mean, max]"),
    (lambda x: torch.cat([x.sum(1, keepdim=True), x.amax(1, keepdim=True)], 1), "sum over channels"),
    (lambda x: torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], 1), "pooled over space"),
    (lambda x: torch.cat([x.mean(1), x.amax(1)], 1), "keepdim=True"),
    (lambda x: (x.mean(1, keepdim=True), x.amax(1, keepdim=True)), "torch.cat"),
    (lambda x: torch.cat([x.mean(1, keepdim=True), x.mean(1, keepdim=True)], 1), "max over channels"),
])
def test_spatial_descriptors_wrong(fn, hint):
    assert_rejects(checks.check_spatial_descriptors, fn, hint)


# ---------------------------------------------------------------- functions: training step

def train_step(model, images, labels, optimizer, criterion):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_step_model_zero_grad(model, images, labels, optimizer, criterion):
    model.train()
    model.zero_grad(set_to_none=False)
    outputs = model(images)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def test_train_step_right(capsys):
    assert checks.check_train_step(loops.train_step)   # the package's own
    assert checks.check_train_step(train_step)
    assert checks.check_train_step(train_step_model_zero_grad)


def no_zero_grad(model, images, labels, optimizer, criterion):
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def zero_grad_after_backward(model, images, labels, optimizer, criterion):
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def no_step(model, images, labels, optimizer, criterion):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    return loss.item()


def returns_tensor(model, images, labels, optimizer, criterion):
    optimizer.zero_grad()
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def own_criterion(model, images, labels, optimizer, criterion):
    return train_step(model, images, labels, optimizer, nn.CrossEntropyLoss())


def own_optimizer(model, images, labels, optimizer, criterion):
    return train_step(model, images, labels, torch.optim.Adam(model.parameters()), criterion)


def loss_after_step(model, images, labels, optimizer, criterion):
    train_step(model, images, labels, optimizer, criterion)
    with torch.no_grad():
        return criterion(model(images), labels).item()


@pytest.mark.parametrize("fn,hint", [
    (no_zero_grad, "zero_grad"),
    (zero_grad_after_backward, "not between backward and step"),
    (no_step, "optimizer.step()"),
    (returns_tensor, "loss.item()"),
    (own_criterion, "criterion passed in"),
    (own_optimizer, "optimizer you were given"),
    (loss_after_step, "loss after the step"),
])
def test_train_step_wrong(fn, hint):
    assert_rejects(checks.check_train_step, fn, hint)


# ---------------------------------------------------------------- functions: evaluation loop

def evaluate(model, loader, criterion, device):
    model.eval()
    total_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            outputs = model(images)
            total_loss += criterion(outputs, labels).item()
            correct += outputs.argmax(1).eq(labels).sum().item()
            total += labels.size(0)
    return total_loss / len(loader), 100.0 * correct / total


@torch.inference_mode()
def evaluate_inference_mode(model, loader, criterion, device):
    model.eval()
    losses, hits, n = [], 0, 0
    for images, labels in loader:
        out = model(images.to(device))
        losses.append(criterion(out, labels.to(device)).item())
        hits += int((out.max(1)[1] == labels).sum())
        n += len(labels)
    return sum(losses) / len(losses), hits / n * 100


def test_evaluate_right(capsys):
    assert checks.check_evaluate(loops.evaluate)   # the package's own
    assert checks.check_evaluate(evaluate)
    assert checks.check_evaluate(evaluate_inference_mode)


def no_eval(model, loader, criterion, device):
    model.train()
    return _loop(model, loader, criterion, device)


def _loop(model, loader, criterion, device, grad=False, fraction=False, summed=False):
    total_loss, correct, total = 0.0, 0, 0
    with torch.set_grad_enabled(grad):
        for images, labels in loader:
            outputs = model(images.to(device))
            total_loss += criterion(outputs, labels).item()
            correct += outputs.argmax(1).eq(labels).sum().item()
            total += labels.size(0)
    loss = total_loss if summed else total_loss / len(loader)
    return loss, (correct / total if fraction else 100.0 * correct / total)


def with_grad(model, loader, criterion, device):
    model.eval()
    return _loop(model, loader, criterion, device, grad=True)


def fraction(model, loader, criterion, device):
    model.eval()
    return _loop(model, loader, criterion, device, fraction=True)


def summed(model, loader, criterion, device):
    model.eval()
    return _loop(model, loader, criterion, device, summed=True)


def per_image(model, loader, criterion, device):
    model.eval()
    with torch.no_grad():
        total, n, correct = 0.0, 0, 0
        for images, labels in loader:
            out = model(images)
            total += criterion(out, labels).item() * len(labels)
            n += len(labels)
            correct += (out.argmax(1) == labels).sum().item()
    return total / n, 100.0 * correct / n


@pytest.mark.parametrize("fn,hint", [
    (no_eval, "model.eval()"),
    (with_grad, "torch.no_grad()"),
    (fraction, "fraction"),
    (summed, "sum over batches"),
    (per_image, "mean over images"),
])
def test_evaluate_wrong(fn, hint):
    assert_rejects(checks.check_evaluate, fn, hint)


def test_the_checkers_reference_formulas_are_the_day_50_lessons_modules():
    """The checkers judge against formulas of explicit weights (so that mistakes can be written as
    variants of them); those formulas must be the one reference copy of the Day 50 lesson, cbam_course.day50."""
    from cbam_course import day50

    torch.manual_seed(0)
    x = torch.randn(3, 32, 9, 7)
    theirs = day50.CBAM(32, ratio=8, kernel_size=5)
    w1, w2 = theirs.channel_attention.fc[0].weight, theirs.channel_attention.fc[2].weight
    wc = theirs.spatial_attention.conv.weight
    with torch.no_grad():
        torch.testing.assert_close(formulas.channel_attention_reference(x, w1, w2), theirs.channel_attention(x))
        torch.testing.assert_close(formulas.spatial_attention_reference(x, wc), theirs.spatial_attention(x))
        torch.testing.assert_close(formulas.cbam_reference(x, w1, w2, wc), theirs(x))


# ---------------------------------------------------------------- in the learner's language (issue 29)

def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_a_wrong_answer_gets_its_hint_in_chinese(monkeypatch):
    monkeypatch.setenv("CBAM_COURSE_LANG", "zh")
    with pytest.raises(AssertionError) as info:
        checks.check_channel_attention(li.CASigmoidEachBranch)
    message = str(info.value)
    assert message.startswith("CASigmoidEachBranch 还没有写对。"), message
    assert "先把两个 MLP 的输出相加" in message and "sigmoid(mlp(avg) + mlp(max))" in message  # the code stays as it is
    assert "is not right yet" not in message and "each branch" not in message


def test_a_right_answer_and_a_stub_print_their_verdicts_in_chinese(monkeypatch, capsys):
    monkeypatch.setenv("CBAM_COURSE_LANG", "zh")
    assert checks.check_channel_attention(li.CAConv) is True
    right = capsys.readouterr().out.strip()
    assert right.startswith("✔ CAConv 正确：") and "Day 50 课程的公式" in right and "is correct" not in right, right
    assert checks.check_channel_attention(li.StubForward) is False
    assert capsys.readouterr().out.strip() == (
        "✘ 还没完成：StubForward 仍然抛出 NotImplementedError —— 请填写标有 YOUR CODE HERE 的单元格")
    with pytest.raises(TypeError, match="需要的是类本身"):
        checks.check_channel_attention(li.CAConv(64))


def test_the_learners_own_error_is_reported_in_chinese_and_the_grader_strips_its_pointer(monkeypatch):
    """In a lesson the failure points at the learner's traceback above it; the grader's feedback has no
    traceback, so grade.hint() takes that line out, whatever the language the checker wrote it in."""
    from cbam_course.grading.grade import hint
    from cbam_course.i18n import tr

    monkeypatch.setenv("CBAM_COURSE_LANG", "zh")
    with pytest.raises(AssertionError) as info:
        checks.check_channel_attention(li.CACrashes)
    message = str(info.value)
    pointer = tr(checks.judge.TRACEBACK_POINTER)
    assert re.search(r"CACrashes\(64, ratio=16\)\.forward\(形状为 \(3, 64, 8, 8\) 的 x\) 抛出了 RuntimeError", message)
    assert _chinese(pointer) and f"\n{pointer}" in message
    assert pointer not in hint(message) and "CACrashes" in hint(message)
    monkeypatch.setenv("CBAM_COURSE_LANG", "en")
    with pytest.raises(AssertionError) as info:
        checks.check_channel_attention(li.CACrashes)
    english = str(info.value)
    assert "\nThe first traceback above ends at the line of your code that failed." in english
    assert "first traceback" not in hint(english) and "raised RuntimeError" in hint(english)


def test_verdict_speaks_the_language_the_grader_chose(monkeypatch):
    from cbam_course.i18n import speaking

    monkeypatch.delenv("CBAM_COURSE_LANG", raising=False)
    with speaking("zh"):
        fail = checks.verdict("check_channel_attention", checks.local_target(li.CASigmoidEachBranch))
        right = checks.verdict("check_channel_attention", checks.local_target(li.CAConv))
        stub = checks.verdict("check_channel_attention", checks.local_target(li.StubForward))
    assert fail[0] == "fail" and fail[1].startswith("CASigmoidEachBranch 还没有写对。") and _chinese(fail[1])
    assert right[0] == "pass" and right[1].startswith("CAConv 正确：") and _chinese(right[1])
    assert stub == ("not_done", "StubForward 仍然抛出 NotImplementedError —— 请填写标有 YOUR CODE HERE 的单元格")
    english = checks.verdict("check_channel_attention", checks.local_target(li.CASigmoidEachBranch))
    assert english[1].startswith("CASigmoidEachBranch is not right yet.")  # outside the block: English again
