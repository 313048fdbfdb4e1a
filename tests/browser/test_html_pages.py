"""The executed edition in a real browser: tools/build_html.py renders a small generated lesson set
(and a one-lesson Chinese edition), and Debian's chromium, started here headless with no network,
shows the index links, the lesson text, the figures (decoded images, not just <img> tags) and the
formulas, typeset by the MathJax copied beside the pages: every request the page makes stays on
this machine.

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
FORMULAS = "The square $x^2$ and the gate\n\n$$\\sigma(x) = \\frac{1}{1 + e^{-x}}$$"
ZH_TITLE = "第 1 课 · 通道注意力"
ZH_TEXT = "通道注意力给每个通道一个 0 到 1 之间的权重。"
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/cbam-course/cbam-course/blob/main/notebooks/zh/01_zh.ipynb)\n\n")


def _lessons(folder: Path) -> Path:
    """Two small lessons: one with text, a figure, a widget drawing a figure, a progress bar and a
    quick-mode print;
    one whose second cell fails (it must still be listed and rendered)."""
    folder.mkdir(parents=True)
    one = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_markdown_cell(f"# {TITLE_ONE}\n\n{LESSON_TEXT}\n\n## A figure"),
        new_code_cell("import os\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
                      "print('quick mode is', os.environ.get('CBAM_COURSE_QUICK'))"),
        new_markdown_cell(f"## A formula\n\n{FORMULAS}"),
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


def _zh_lessons(folder: Path) -> Path:
    """One Chinese lesson as tools/translate.py and tools/colab.py write them: the badge, then the
    Colab set-up cell, which sets CBAM_COURSE_LANG=zh (it must run, and be left out of the page)."""
    folder.mkdir(parents=True)
    lesson = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_markdown_cell(f"{BADGE}# {ZH_TITLE}\n\n{ZH_TEXT}\n\n{FORMULAS}", metadata={"tags": ["colab-badge"]}),
        new_code_cell('import os\n\nos.environ["CBAM_COURSE_LANG"] = "zh"', metadata={"tags": ["colab-setup"]}),
        new_code_cell('from cbam_course.i18n import language\n\nprint("课程包的语言：", language())'),
    ])
    nbformat.write(lesson, folder / "01_zh.ipynb")
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
        self.events: list[dict] = []  # what chromium reported on its own (Network.* once enabled)
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
                if "method" in reply and "id" not in reply:
                    self.events.append(reply)
                elif reply.get("id") == self._next_id:
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
def zh_site(tmp_path_factory) -> Path:
    """The Chinese executed edition of one generated lesson, built in quick mode."""
    base = tmp_path_factory.mktemp("html-zh")
    src = _zh_lessons(base / "notebooks")
    code = build_html.main(["--edition", "zh", "--mode", "quick", "--src", str(src), "--out", str(base / "html")])
    assert code == 0, "the Chinese lesson should run and render without an error"
    return base / "html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chrome = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chrome
    chrome.close()


def test_the_build_writes_an_index_one_page_per_lesson_and_mathjax(site):
    assert sorted(p.name for p in site.iterdir()) == ["01_one.html", "02_two.html", "index.html", "mathjax"]
    assert (site / "mathjax" / "MathJax.js").is_file()


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


def _typeset_offline(browser: Chromium, url: str) -> dict:
    """Open ``url`` with the network cut, wait until MathJax has typeset the page, and report what
    it rendered and every request the page made."""
    browser.events.clear()
    browser.call("Network.enable", session=browser.session)
    browser.call("Network.emulateNetworkConditions", session=browser.session, offline=True, latency=0,
                 downloadThroughput=-1, uploadThroughput=-1)
    try:
        browser.open(url)
        assert browser.evaluate("typeof MathJax") == "object", "MathJax did not load from the page's mathjax/ copy"
        browser.evaluate("new Promise(done => MathJax.Hub.Queue(() => done(true)))")
        found = browser.evaluate("""({
            inline: document.querySelectorAll('span.MathJax').length,
            display: document.querySelectorAll('div.MathJax_Display').length,
            errors: document.querySelectorAll('.MathJax_Error, [data-mjx-error]').length,
            text: document.body.innerText,
            font: MathJax.OutputJax['HTML-CSS'].fontInUse,
            fonts: Array.from(document.fonts).filter(f => f.status === 'loaded').map(f => f.family),
            lang: document.documentElement.lang,
        })""")
    finally:
        browser.call("Network.emulateNetworkConditions", session=browser.session, offline=False, latency=0,
                     downloadThroughput=-1, uploadThroughput=-1)
        browser.call("Network.disable", session=browser.session)
    sent = {e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in browser.events if e["method"] == "Network.requestWillBeSent"}
    found["requests"] = sorted(set(sent.values()))
    # MathJax tests font loading with url(about:blank), which fails by design.
    found["failed"] = [(sent.get(e["params"]["requestId"]), e["params"]["errorText"])
                       for e in browser.events if e["method"] == "Network.loadingFailed"
                       and sent.get(e["params"]["requestId"]) != "about:blank"]
    return found


def _assert_formulas_rendered(found: dict) -> None:
    assert found["inline"] >= 2 and found["display"] == 1, found  # $x^2$ and the display both typeset
    assert found["errors"] == 0, found
    assert "$x^2$" not in found["text"] and "\\sigma" not in found["text"] and "\\frac" not in found["text"], \
        "the TeX source is still on the page: MathJax did not typeset it"
    assert found["font"] == "STIX-Web" and any(f.startswith("STIXMathJax") for f in found["fonts"]), \
        f"formulas are not in MathJax's web fonts: {found['font']}, {found['fonts']}"
    off_machine = [u for u in found["requests"] if not u.startswith(("file://", "data:", "about:"))]
    assert off_machine == [], f"the page asked the network for {off_machine}"
    assert any("/mathjax/MathJax.js" in u for u in found["requests"]), found["requests"]
    assert found["failed"] == [], f"files the page needed but did not find: {found['failed']}"


def test_formulas_render_offline_from_the_bundled_mathjax(site, browser):
    found = _typeset_offline(browser, site.joinpath("01_one.html").as_uri())
    _assert_formulas_rendered(found)
    assert found["lang"] == "en"


def test_the_chinese_edition_is_in_chinese(zh_site, browser):
    assert sorted(p.name for p in zh_site.iterdir()) == ["01_zh.html", "index.html", "mathjax"]
    browser.open(zh_site.joinpath("index.html").as_uri())
    assert browser.evaluate("document.documentElement.lang") == "zh-CN"
    assert browser.evaluate("document.title") == build_html.EDITIONS["zh"].title
    text = browser.evaluate("document.body.innerText")
    assert "运行模式：quick" in text and "Run in" not in text, text
    links = browser.evaluate("Array.from(document.querySelectorAll('#lessons a')).map(a => a.innerText)")
    assert links == [ZH_TITLE]

    found = _typeset_offline(browser, zh_site.joinpath("01_zh.html").as_uri())
    _assert_formulas_rendered(found)
    assert found["lang"] == "zh-CN"
    assert ZH_TEXT in found["text"]
    # The set-up cell ran (the package speaks Chinese in the next cell) but is not on the page.
    assert "课程包的语言： zh" in found["text"], "the Colab set-up cell did not run: CBAM_COURSE_LANG is not zh"
    assert "CBAM_COURSE_LANG" not in found["text"]
    assert not any("colab" in u for u in found["requests"]), "the Colab badge is an image from the network"
