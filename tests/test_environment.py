"""environment.yml (conda, Binder/repo2docker) gives the same environment as `make setup`:
the package with every extra pyproject.toml defines but the opt-in ones, installed through pip
from the repository, on a Python that requires-python allows. What needs Binder itself stays
documented, untested."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml  # PyYAML comes with JupyterLab (jupyter_events), which the `lab` extra installs
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# Extras neither `make setup` nor environment.yml installs: numba's speed layer (`make test-fast`).
OPT_IN_EXTRAS = {"fast"}

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _environment() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert isinstance(env, dict), "environment.yml must be a mapping (name, channels, dependencies)"
    return env


def _pip_lines(env: dict) -> list[str]:
    sections = [d["pip"] for d in env.get("dependencies", []) if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one `- pip:` section"
    return [str(line) for line in sections[0]]


def _local_install(env: dict) -> tuple[str, set[str]]:
    """The pip line that installs this repository and the extras it asks for."""
    local = [line for line in _pip_lines(env) if re.match(r"^(-e\s+|--editable[= ])?\.(\[|$)", line.strip())]
    assert len(local) == 1, f"environment.yml's pip section should install the repository once (`-e .[...]`), has {local}"
    extras = re.search(r"\[([^\]]*)\]", local[0])
    return local[0], {e.strip() for e in extras.group(1).split(",")} if extras else set()


def _conda_python(env: dict) -> str:
    specs = [d for d in env.get("dependencies", []) if isinstance(d, str) and re.match(r"^python\b(?!-)", d)]
    assert len(specs) == 1, f"environment.yml should name python once, has {specs}"
    return specs[0][len("python"):].strip()


def _as_specifier(conda_spec: str) -> SpecifierSet:
    """A conda version spec (``>=3.10``, ``=3.11``, ``3.11``, ``>=3.10,<3.13``) as a pip SpecifierSet."""
    parts = []
    for part in filter(None, (p.strip() for p in conda_spec.split(","))):
        if re.fullmatch(r"=?\d+(\.\d+)*", part):  # conda's "=3.11" means 3.11.*
            parts.append(f"=={part.lstrip('=')}.*")
        else:
            parts.append(part)
    return SpecifierSet(",".join(parts))


def test_environment_file_is_where_repo2docker_looks():
    assert (ROOT / "environment.yml").is_file()
    for folder in ("binder", ".binder"):
        # repo2docker reads only binder/ when it exists: root files would be ignored
        assert not (ROOT / folder).exists() or (ROOT / folder / "environment.yml").exists(), \
            f"{folder}/ exists without environment.yml: Binder would ignore the root environment.yml"


def test_environment_installs_the_package_with_every_extra():
    env = _environment()
    assert "pip" in env["dependencies"], "list `pip` as a conda dependency so the pip section runs"
    line, extras = _local_install(env)
    defined = set(_pyproject()["project"].get("optional-dependencies", {}))
    assert OPT_IN_EXTRAS <= defined, f"pyproject no longer defines the opt-in extras {sorted(OPT_IN_EXTRAS - defined)}"
    assert extras == defined - OPT_IN_EXTRAS, \
        f"environment.yml installs extras {sorted(extras)}, pyproject defines {sorted(defined)}" \
        f" of which {sorted(OPT_IN_EXTRAS)} are opt-in"
    # repo2docker stages the whole repository before a local (`.`) pip requirement is installed
    assert line.split()[-1].startswith("."), line


def test_environment_and_makefile_install_the_same_extras():
    _, extras = _local_install(_environment())
    # the recipe that builds .venv ($(STAMP)), not test-fast's or test-pythons' installs
    setup = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert setup, "the Makefile no longer has the `$(STAMP):` rule that sets up .venv"
    make = re.search(r"pip install[^\n]*-e\s+'?\.\[([^\]]*)\]", setup.group(1))
    assert make, "the Makefile's set-up no longer installs `-e '.[...]'`: keep it and environment.yml alike"
    assert {e.strip() for e in make.group(1).split(",")} == extras


def test_python_version_agrees_with_requires_python():
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    allowed = _as_specifier(_conda_python(_environment()))
    candidates = [Version(f"3.{minor}.0") for minor in range(6, 16)]
    env_ok = [v for v in candidates if allowed.contains(v)]
    assert env_ok, f"environment.yml's python{allowed} allows no Python 3 release"
    too_old = [str(v) for v in env_ok if not requires.contains(v)]
    assert not too_old, f"environment.yml allows Python {too_old}, which requires-python {requires} refuses"


def test_the_pip_line_resolves_to_this_package(tmp_path):
    """Run environment.yml's pip line as pip would (dry run, offline) on a copy of the package."""
    line, extras = _local_install(_environment())
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "cbam_course", tmp_path / "cbam_course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # pip builds the metadata with this environment's setuptools (no build isolation, no network).
    # Ask a fresh interpreter whether it has one: importing setuptools here, after something in this
    # process loaded the standard library's distutils (Python 3.10), trips setuptools' distutils shim.
    probe = subprocess.run([sys.executable, "-c", "import setuptools; print(setuptools.__version__)"],
                           capture_output=True, text=True, timeout=60)
    has_setuptools = probe.returncode == 0 and Version(probe.stdout.split()[-1]) >= Version("64")
    if probe.returncode != 0:  # no setuptools is fine (3.12+ venvs); a broken one is not
        assert "ModuleNotFoundError" in probe.stderr, f"importing setuptools failed:\n{probe.stderr[-2000:]}"
    if has_setuptools:
        report = tmp_path / "report.json"
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps",
                               "--no-build-isolation", "--quiet", "--report", str(report), *line.split()],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"pip could not resolve `{line}`:\n{done.stderr[-2000:]}"
        resolved = json.loads(report.read_text())
        (item,) = resolved["install"]
        metadata, requested = item["metadata"], set(item.get("requested_extras", []))
        assert item["download_info"]["dir_info"].get("editable") is ("-e" in line.split())
        # pip 23.0 (what `python3.10 -m venv` brings) leaves requested_extras out of the report for an
        # editable directory, though it installs them; pip 23.2 writes them
        if requested or Version(resolved["pip_version"]) >= Version("23.2"):
            assert requested == extras
    else:  # Python 3.12+ venvs have no setuptools (and one older than 64 builds no editable):
        # read what `make setup` installed from pyproject
        from importlib.metadata import metadata as installed
        meta = installed("cbam-course")
        metadata = {"name": meta["Name"], "provides_extra": meta.get_all("Provides-Extra") or []}
    assert metadata["name"] == _pyproject()["project"]["name"]
    assert extras <= set(metadata.get("provides_extra", [])), metadata.get("provides_extra")
