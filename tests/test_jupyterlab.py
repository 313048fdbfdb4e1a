"""JupyterLab starts the way `make lab` starts it, and answers on loopback."""
import json
import os
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


def test_jupyterlab_starts_and_answers(tmp_path):
    port = _free_port()
    token = "cbam-course-test"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
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
        # the first lesson is where `make lab` opens, and the server can see it
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}", timeout=10) as r:
            names = {item["name"] for item in json.load(r)["content"]}
        assert "01_concepts.ipynb" in names
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
