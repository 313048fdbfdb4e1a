"""JupyterLab starts the way `make lab` starts it, answers on loopback, opens lesson 01 and serves
the whole course: lessons, exercises and solutions."""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_lab_args() -> list[str]:
    """The arguments `make lab` gives `jupyter lab` (the Makefile's LAB_ARGS, which its lab rule uses)."""
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "$(LAB_ARGS)" in rule and ".ipynb" not in rule, (
        "make lab must take its arguments from LAB_ARGS and name no notebook: a notebook path makes "
        "Jupyter serve that notebook's folder alone")
    return shlex.split(re.search(r"^LAB_ARGS\s*:?=\s*(.*)$", makefile, re.M).group(1))


def test_jupyterlab_starts_as_make_lab_does_and_serves_the_exercises(tmp_path):
    port = _free_port()
    token = "cbam-course-test"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *_make_lab_args(), "--no-browser", f"--port={port}",
         f"--IdentityProvider.token={token}", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    status = json.load(r)
                    break
            except OSError:
                time.sleep(0.5)
        if status is None:
            proc.kill()
            log = proc.communicate()[0].decode(errors="replace")[-2000:]
            raise AssertionError(f"JupyterLab did not answer within 60 s; its log ends:\n{log}")
        lesson = f"http://127.0.0.1:{port}/lab/tree/notebooks/01_concepts.ipynb?token={token}"
        with urllib.request.urlopen(lesson, timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        # the first lesson is where `make lab` opens (the server's front page leads there) ...
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10) as r:
            assert r.geturl().split("?")[0].endswith("/lab/tree/notebooks/01_concepts.ipynb"), r.geturl()
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}", timeout=10) as r:
            names = {item["name"] for item in json.load(r)["content"]}
        assert "01_concepts.ipynb" in names
        # ... and the exercises and solutions a class works on are served too, not only notebooks/
        for path in ("exercises/02_channel_attention.ipynb", "solutions/02_channel_attention.ipynb"):
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/contents/{path}?content=0&token={token}", timeout=10) as r:
                assert r.status == 200 and json.load(r)["path"] == path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
