"""The executed edition in a real browser: tools/build_html.py renders a small generated lesson set,
and Debian's chromium, started here headless, shows the index links, the lesson text and the
figures (decoded images, not just <img> tags).

Chromium is driven through its DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON
messages on file descriptors 3 and 4), so the test needs no Python package beyond the standard library.
Run with `make test-browser`.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import build_html  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LESSON_TEXT = "Attention re-weights the feature map, one channel at a time."
TITLE_ONE, TITLE_TWO = "Lesson one: a sine and a widget", "Lesson two: stops early"


def _lessons(folder: Path) -> Path:
    """Two small lessons: one with text, a figure, a widget drawing a figure, a progress bar and a
    quick-mode print;
    one whose second cell fails (it must still be listed and rendered)."""
    folder.mkdir(parents=True)
    one = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_markdown_cell(f"# {TITLE_ONE}\n\n{LESSON_TEXT}\n\n## A figure"),
        new_code_cell("import os\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
                      "print('quick mode is', os.environ.get('CBAM_COURSE_QUICK'))"),
        new_code_cell("x = np.linspace(0, 2 * np.pi, 64)\nfig, ax = plt.subplots(figsize=(4, 3))\n"
                      "ax.plot(x, np.sin(x))\nax.set_title('A sine')\nax.set_xlabel('x')\nax.set_ylabel('sin x')\nplt.show()"),
        new_code_cell("from ipywidgets import interact\n\n@interact(k=(1, 4))\ndef wave(k=2):\n"
                      "    fig, ax = plt.subplots(figsize=(3, 2))\n    ax.plot(x, np.sin(k * x))\n"
                      "    ax.set_title(f'k = {k}')\n    ax.set_xlabel('x')\n    plt.show()"),
        new_code_cell("from tqdm.auto import tqdm\n\nfor step in tqdm(range(5), desc='training steps'):\n    pass"),
    ])
    two = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_markdown_cell(f"# {TITLE_TWO}\n\nThis one fails on purpose."),
        new_code_cell("raise RuntimeError('planned failure for the test')"),
    ])
    nbformat.write(one, folder / "01_one.ipynb")
    nbformat.write(two, folder / "02_two.ipynb")
    return folder


class Chromium:
    """A headless chromium and one page in it, driven over the DevTools pipe."""

    def __init__(self, profile: Path):
        if not Path(CHROMIUM).exists():
            pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium "
                        "(`apt-get install -y chromium`; .ci/run installs it), or CHROMIUM=/path/to/chromium.")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds():  # chromium reads commands on fd 3 and answers on fd 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self._log = profile / "chromium.log"

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: CDN scripts fail at once
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log.open("wb"),
            preexec_fn=wire_fds, close_fds=False)  # close_fds=False keeps 3 and 4 open in chromium
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id, self._buffer = 0, b""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"chromium refused {method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                log = self._log.read_text(errors="replace")[-2000:]
                raise TimeoutError(f"no answer from chromium to {method} within {timeout} s; its log ends:\n{log}")
            ready, _, _ = select.select([self._from_chrome], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=self.session, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 30) -> None:
        """Load ``url`` and wait until the document and its images have finished loading."""
        self.call("Page.navigate", session=self.session, url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.evaluate("document.URL + ' ' + document.readyState + ' ' "
                                  "+ Array.from(document.images).every(i => i.complete)")
            if state == f"{url} complete true":
                return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not finish loading in {timeout} s (last state: {state})")

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The executed edition of the two generated lessons, built in quick mode."""
    base = tmp_path_factory.mktemp("html")
    src = _lessons(base / "notebooks")
    code = build_html.main(["--mode", "quick", "--src", str(src), "--out", str(base / "html")])
    assert code == 1, "the build must exit 1 when a lesson fails"
    return base / "html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chrome = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chrome
    chrome.close()


def test_the_build_writes_an_index_and_one_page_per_lesson(site):
    assert sorted(p.name for p in site.iterdir()) == ["01_one.html", "02_two.html", "index.html"]


def test_index_links_every_lesson_by_title(site, browser):
    browser.open(site.joinpath("index.html").as_uri())
    links = browser.evaluate("Array.from(document.querySelectorAll('#lessons a'))"
                             ".map(a => [a.innerText, a.href, a.offsetHeight > 0])")
    assert [(text, href.rsplit("/", 1)[-1], shown) for text, href, shown in links] == [
        (TITLE_ONE, "01_one.html", True), (TITLE_TWO, "02_two.html", True)]
    text = browser.evaluate("document.body.innerText")
    assert "quick mode" in text and "stopped with an error" in text

    browser.open(links[0][1])  # follow the first link: it leads to the rendered lesson
    assert browser.evaluate("document.querySelector('h1').innerText").startswith(TITLE_ONE)


def test_lesson_text_and_outputs_render(site, browser):
    browser.open(site.joinpath("01_one.html").as_uri())
    text = browser.evaluate("document.body.innerText")
    assert LESSON_TEXT in text
    assert "quick mode is 1" in text, "quick mode did not reach the kernel"
    assert "k 2" in text and "run the notebook to change these" in text  # the slider's starting value
    assert "google.colab" not in text
    assert "training steps" in text and "5/5" in text, "the progress bar's text should stay"
    bars = browser.evaluate("Array.from(document.querySelectorAll('progress')).map(p => [p.value, p.max])")
    assert bars == [[5, 5]], bars


def test_figures_are_embedded_and_decoded(site, browser):
    browser.open(site.joinpath("01_one.html").as_uri())
    images = browser.evaluate(
        "Array.from(document.images).filter(i => i.src.startsWith('data:image/'))"
        ".map(i => ({w: i.naturalWidth, h: i.naturalHeight, shown: i.getBoundingClientRect().width}))")
    assert len(images) == 2, f"expected the sine and the widget's figure, found {images}"
    for image in images:
        assert image["w"] > 100 and image["h"] > 80, f"figure not decoded: {image}"
        assert image["shown"] > 0, f"figure decoded but not laid out: {image}"
    sine, widget = images
    assert sine["w"] > widget["w"], "the 4x3 sine should be wider than the 3x2 widget figure"


def test_a_failed_lesson_is_rendered_with_its_error(site, browser):
    browser.open(site.joinpath("02_two.html").as_uri())
    text = browser.evaluate("document.body.innerText")
    assert "This lesson stopped with an error" in text and "planned failure for the test" in text
    assert "This one fails on purpose." in text
