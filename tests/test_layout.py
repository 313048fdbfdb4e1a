"""The package's promises about its own shape: a teaching core small enough to read in an evening,
whose attention modules are the formulas and nothing else, with training and speed beside it."""
from __future__ import annotations

import ast
from pathlib import Path

import cbam_course

PACKAGE = Path(cbam_course.__file__).resolve().parent


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_teaching_core_fits_its_line_budget():
    core = {p.name: _lines(p) for p in PACKAGE.glob("*.py") if p.name != "checks.py"}
    assert sum(core.values()) <= 1600, f"the core (without checks.py) is {sum(core.values())} lines: {core}"


def test_the_trainer_class_fits_in_200_lines():
    tree = ast.parse((PACKAGE / "train" / "trainer.py").read_text(encoding="utf-8"))
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    assert trainer.end_lineno - trainer.lineno + 1 <= 200


def test_the_core_exports_about_25_names_and_its_docstring_gives_the_reading_order():
    assert len(cbam_course.__all__) <= 25, cbam_course.__all__
    assert all(hasattr(cbam_course, name) for name in cbam_course.__all__)
    doc = cbam_course.__doc__
    order = [doc.index(f"``{m}``") for m in ("attention", "models", "variants", "measure", "checks")]
    assert order == sorted(order), "the reading order starts with the core, attention first"
    assert doc.index("``checks``") < doc.index("cbam_course.train") < doc.index("cbam_course.fast")


def test_attention_py_holds_the_formulas_only():
    """No dispatch, flags or dtype workarounds: what runs when a learner calls CBAM(x) is what they read."""
    text = (PACKAGE / "attention.py").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    tree = ast.parse(code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imports = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    imports |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    for word in ("fused", "kernels", "numba", "compiled", "bfloat16", "fast"):
        assert not any(word in x.lower() for x in names | imports), f"attention.py refers to {word!r}"


def test_the_seed_network_is_written_once():
    """One reference copy of the Day 50 lesson's code (cbam_course/seed.py), imported by the rest."""
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *(root / "tests").rglob("*.py"), *(root / "tools").rglob("*.py")]
    marks = ("class CBAM_CNN", "class SeedCBAM_CNN", "class _SeedCBAM")
    copies = [p for p in files if p.resolve() != Path(__file__).resolve()
              and any(m in p.read_text(encoding="utf-8") for m in marks)]
    assert copies == [PACKAGE / "seed.py"], copies


def test_one_interleaved_timer():
    root = PACKAGE.parent
    timers = [p for p in PACKAGE.rglob("*.py") if "def interleave" in p.read_text(encoding="utf-8")
              or "def _interleaved" in p.read_text(encoding="utf-8")]
    assert timers == [PACKAGE / "measure.py"], timers
    assert "interleave" in (PACKAGE / "fast" / "bench.py").read_text(encoding="utf-8")
    assert not (root / "cbam_course" / "exercises.py").exists()  # the generator is a build tool: tools/
