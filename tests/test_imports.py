"""Every module of the package and every tool imports: the first thing to break on another Python
(syntax, typing, a standard-library change). ``make test-pythons`` runs this on the oldest and the
newest Python the README admits."""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import pytest

import cbam_course

ROOT = Path(cbam_course.__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(cbam_course.__path__, "cbam_course."))
TOOLS = sorted(p.stem for p in (ROOT / "tools").glob("*.py"))


def test_every_module_is_found():
    assert {"cbam_course.attention", "cbam_course.train.trainer", "cbam_course.bench.speed",
            "cbam_course.grading.grade", "cbam_course.fast.kernels"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    if name == "cbam_course.fast.kernels" and importlib.util.find_spec("numba") is None:
        with pytest.raises(ImportError, match="numba"):  # the optional extra: accelerate() does without
            importlib.import_module(name)
        return
    importlib.import_module(name)


@pytest.mark.parametrize("name", TOOLS)
def test_tool_imports(name, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    module = importlib.import_module(name)
    assert module.__doc__, f"tools/{name}.py says what it does"
    sys.modules.pop(name, None)
