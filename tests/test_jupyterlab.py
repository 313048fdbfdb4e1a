"""JupyterLab starts the way `make lab` starts it, answers on loopback, opens lesson 01 and serves
the whole course: lessons, exercises and solutions; `make lab LANG=zh` does the same in Chinese."""
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

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_lab(lang: str) -> tuple[dict[str, str], list[str]]:
    """The environment and the arguments `make lab LANG=...` gives `jupyter lab`, read from
    `make -n` (the settings file it would write, written here into ``settings``)."""
    out = subprocess.run(["make", "-n", "-o", ".venv/.installed", "lab", f"LANG={lang}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "jupyter lab" in l)
    words = shlex.split(line.split("$(", 1)[0])   # the --allow-root test at its end is the shell's
    cut = next(i for i, w in enumerate(words) if w.endswith("jupyter"))
    env = dict(w.split("=", 1) for w in words[:cut])
    args = words[cut + 2:]
    assert not [a for a in args if a.endswith(".ipynb") and not a.startswith("--")], (
        "make lab must name no notebook: a notebook path makes Jupyter serve that notebook's folder alone")
    return env, args


@pytest.mark.parametrize("lang, lesson, locale", [("C.UTF-8", "notebooks/01_concepts.ipynb", None),
                                                  ("zh", "notebooks/zh/01_concepts.ipynb", "zh_CN")])
def test_jupyterlab_starts_as_make_lab_does_and_serves_the_exercises(tmp_path, lang, lesson, locale):
    """`make lab` opens English lesson 01; `make lab LANG=zh` opens Chinese lesson 01, with the package
    speaking Chinese in its kernels and JupyterLab's own menus in Chinese (the zh-CN language pack)."""
    made, args = _make_lab(lang)
    port = _free_port()
    token = "cbam-course-test"
    env = dict(os.environ, **made, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    env.pop("CBAM_COURSE_PROFILE", None)
    if "JUPYTERLAB_SETTINGS_DIR" in made:  # what `make lab` writes there, written into a folder of the test's
        plan = subprocess.run(["make", "-n", "-o", ".venv/.installed", "lab", f"LANG={lang}"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
        content, target = re.search(r"echo '(\{.*?\})' > ([^\s;]+)", plan).groups()
        settings = tmp_path / "settings" / Path(target).relative_to(made["JUPYTERLAB_SETTINGS_DIR"])
        settings.parent.mkdir(parents=True)
        settings.write_text(content)
        env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "settings")
    assert env.get("CBAM_COURSE_LANG") == ("zh" if locale else None)   # the kernels' language
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", *args, "--no-browser", f"--port={port}",
         f"--IdentityProvider.token={token}", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )

    def get(path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{'&' if '?' in path else '?'}token={token}",
                                    timeout=10) as r:
            return r.geturl(), r.read()

    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline and proc.poll() is None:
            try:
                status = json.loads(get("/api/status")[1])
                break
            except OSError:
                time.sleep(0.5)
        if status is None:
            proc.kill()
            log = proc.communicate()[0].decode(errors="replace")[-2000:]
            raise AssertionError(f"JupyterLab did not answer within 60 s; its log ends:\n{log}")
        assert b"JupyterLab" in get(f"/lab/tree/{lesson}")[1]
        # the first lesson is where `make lab` opens (the server's front page leads there) ...
        assert get("/")[0].split("?")[0].endswith(f"/lab/tree/{lesson}")
        names = {item["name"] for item in json.loads(get(f"/api/contents/{Path(lesson).parent}")[1])["content"]}
        assert "01_concepts.ipynb" in names
        # ... and the exercises and solutions a class works on are served too, not only notebooks/
        for path in ("exercises/02_channel_attention.ipynb", "solutions/02_channel_attention.ipynb",
                     "exercises/zh/02_channel_attention.ipynb"):
            assert json.loads(get(f"/api/contents/{path}?content=0")[1])["path"] == path
        # JupyterLab's own language: its translation setting, and the language pack that serves it
        chosen = json.loads(get("/lab/api/settings/@jupyterlab/translation-extension:plugin")[1])
        assert json.loads(chosen.get("raw") or "{}").get("locale", "default") == (locale or "default"), chosen
        if locale:
            pack = json.loads(get(f"/lab/api/translations/{locale}")[1])
            assert pack["data"] and not pack.get("message"), pack.get("message")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
