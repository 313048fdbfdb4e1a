"""Shared set-up of the fast layer's tests (cbam_course.fast).

- Tests marked ``numba`` need the optional extra. Where numba cannot be imported they FAIL with
  a message saying so, never skip: a green run must mean the compiled loops were tested.
  ``make unit`` deselects them (``-m "not numba"``); the fast layer's CI step installs numba and
  runs them all.
- ``fused_path``: runs a test once on numba's compiled loops (marked ``numba``) and once on the
  PyTorch fused step, and checks that the intended one ran.
"""
import sys
from pathlib import Path

import pytest

# fast_helpers.py, next to this file, is imported by the test modules here
sys.path.insert(0, str(Path(__file__).parent))

NEEDS_NUMBA = "this test needs numba: pip install -e .[fast]"


def numba_importable() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture runs (they may import cbam_course.fast.kernels): a ``numba`` test
    where numba is missing fails here, with the fix."""
    if item.get_closest_marker("numba") is not None and not numba_importable():
        pytest.fail(f"{item.nodeid}: {NEEDS_NUMBA}", pytrace=False)


@pytest.fixture(params=[pytest.param("compiled", marks=pytest.mark.numba), "pytorch"])
def fused_path(request, monkeypatch):
    """``accelerate`` for one of FastCBAM's two CPU paths: numba's compiled loops ("compiled",
    ``accelerate(model)``) or the PyTorch fused step ("pytorch", ``accelerate(model, loops=False)``).
    The test calls it on its model; afterwards the fixture checks that the path ran, and that
    the other one did not."""
    import cbam_course.fast.modules as modules
    from cbam_course.fast import accelerate

    calls = {"compiled": 0, "pytorch": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    try:
        import cbam_course.fast.kernels as kernels
    except ImportError:  # no numba: only the PyTorch step can run (the hook above failed "compiled")
        kernels = None
    if kernels is not None:
        monkeypatch.setattr(kernels, "compiled_cbam", counting("compiled", kernels.compiled_cbam))
    monkeypatch.setattr(modules, "fused_cbam", counting("pytorch", modules.fused_cbam))
    loops = request.param == "compiled"
    if loops:
        assert modules.compiled_loops() is kernels, \
            "numba is installed but its loops cannot run here (no OpenMP or TBB threading layer)"
    yield lambda model: accelerate(model, loops=loops, keep_memory=False)
    other = "pytorch" if loops else "compiled"
    assert calls[request.param] > 0 and calls[other] == 0, f"the {request.param} path did not run: {calls}"
