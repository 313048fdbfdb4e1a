"""tools/build_html.py without a kernel or a browser: the pages load nothing from the network (MathJax
from the copy beside them, no CDN script, no Colab badge), each edition has its language and its
folders, and the build copies the MathJax the pages load. tests/browser/ shows the same pages
rendering in chromium with the network cut (`make test-browser`)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_html  # noqa: E402
from cbam_course.grading.run import Run  # noqa: E402

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/cbam-course/cbam-course/blob/main/notebooks/01.ipynb)\n\n")
# What chromium fetched to typeset $x^2$ and a $$...$$ display on a Chinese page (the browser test's
# request log): each must be in the copy.
LOADED = ["MathJax.js", "config/TeX-AMS-MML_HTMLorMML-full.js", "config/Safe.js", "extensions/Safe.js",
          "localization/zh-hans/zh-hans.js", "localization/zh-hans/HTML-CSS.js", "localization/zh-hans/MathMenu.js",
          "jax/output/HTML-CSS/fonts/STIX-Web/fontdata.js", "jax/output/HTML-CSS/fonts/STIX-Web/Main/Regular/Main.js",
          "jax/output/HTML-CSS/fonts/STIX-Web/Normal/Italic/Main.js",
          "fonts/HTML-CSS/STIX-Web/woff/STIXMathJax_Main-Regular.woff",
          "fonts/HTML-CSS/STIX-Web/woff/STIXMathJax_Normal-Italic.woff",
          # what the reader can reach from MathJax's menu: the accessibility menu, zoom, English
          "extensions/a11y/accessibility-menu.js", "extensions/MathZoom.js", "localization/en/en.js", "LICENSE"]


def _lesson(*cells) -> nbformat.NotebookNode:
    return new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=list(cells))


def _formula_lesson() -> nbformat.NotebookNode:
    return _lesson(new_markdown_cell(f"{BADGE}# A formula\n\n$x^2$ and\n\n$$\\sigma(x)$$", metadata={"tags": ["colab-badge"]}),
                   new_code_cell('import os\nos.environ["CBAM_COURSE_LANG"] = "zh"', metadata={"tags": ["colab-setup"]}),
                   new_code_cell("print(1)"))


def test_remote_resources_finds_what_a_page_would_load_and_not_its_links():
    page = """<html><head>
    <script src="https://cdn.example/require.js"></script><script src="mathjax/MathJax.js?config=x"></script>
    <link rel="stylesheet" href="//fonts.example/css"><link rel="stylesheet" href="local.css">
    <style>/* see https://docs.example/why */ @font-face { src: url('https://fonts.example/a.woff') }
    @import "http://styles.example/b.css"; .x { background: url(data:image/png;base64,AAAA) }</style>
    <script type="module">const m = await import("https://cdn.example/mermaid.mjs");</script>
    </head><body><img src="http://img.example/badge.svg"><img src="data:image/png;base64,AAAA">
    <img srcset="pic.png 1x, https://img.example/pic2.png 2x"><div style="background: url(https://img.example/bg.png)"></div>
    <a href="https://github.com/example">a link is not loaded</a><p>https://in.text.example is text</p>
    </body></html>"""
    assert build_html.remote_resources(page) == sorted([
        "https://cdn.example/require.js", "//fonts.example/css", "https://fonts.example/a.woff",
        "http://styles.example/b.css", "https://cdn.example/mermaid.mjs", "http://img.example/badge.svg",
        "https://img.example/pic2.png", "https://img.example/bg.png"])


@pytest.mark.parametrize("edition, lesson", [("en", "notebooks/02_channel_attention.ipynb"),
                                             ("zh", "notebooks/zh/02_channel_attention.ipynb")])
def test_a_lesson_page_loads_nothing_from_the_network(edition, lesson):
    nb = nbformat.read(ROOT / lesson, as_version=4)
    assert "colab-badge.svg" in nb.cells[0].source, "the lessons carry the Colab badge (an image from Colab)"
    page = build_html.render(nb, "lesson", edition)
    assert build_html.remote_resources(page) == []
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]*)"', page)
    assert scripts == [build_html.mathjax_url(edition).replace("&", "&amp;")], scripts
    assert scripts[0].startswith("mathjax/MathJax.js?config=")  # relative: the copy beside the page
    assert "colab-badge.svg" not in page and "require.js" not in page and "mermaid" not in page


def test_each_edition_has_its_language():
    nb = _formula_lesson()
    zh, en = build_html.render(nb, "t", "zh"), build_html.render(nb, "t", "en")
    assert '<html lang="zh-CN">' in zh and "locale=zh-hans" in zh
    assert '<html lang="en">' in en and "locale=en" in en
    assert "CBAM_COURSE_LANG" not in zh, "the Colab set-up cell is left out of the page"
    assert "$x^2$" in zh and "$$\\sigma(x)$$" in zh, "the TeX stays for MathJax to typeset"
    assert nb.cells[0].source.startswith(BADGE), "render() must not change the notebook it is given"
    index = build_html.index_page([{"title": "第 1 课", "href": "01.html", "seconds": 3.0, "error": "Boom"}],
                                  "quick", "2025-01-01 00:00 UTC", "zh")
    assert '<html lang="zh-CN">' in index and "<title>CBAM 课程：运行过的各课</title>" in index
    assert "运行出错，已中止：Boom" in index and "3 秒" in index


def test_main_picks_the_editions_folders(monkeypatch):
    calls = []
    monkeypatch.setattr(build_html, "build", lambda *args: calls.append(args) or [])
    assert build_html.main(["--edition", "zh", "--mode", "quick"]) == 0
    assert build_html.main(["--mode", "quick"]) == 0
    assert build_html.main(["--edition", "zh", "--mode", "quick", "--src", "a", "--out", "b"]) == 0
    assert [(c[0], c[1], c[4]) for c in calls] == [
        (ROOT / "notebooks" / "zh", ROOT / "dist" / "html-zh", "zh"),
        (ROOT / "notebooks", ROOT / "dist" / "html", "en"),
        (Path("a"), Path("b"), "zh")]


@pytest.fixture
def no_kernel(monkeypatch):
    """build() with each lesson 'run' as it is (no kernel): rendering and copying are what is tested."""
    ran = []

    def run_notebook(path, mode, timeout=-1):
        ran.append(Path(path).name)
        return Run(nbformat.read(path, as_version=4), 0.5, None, None)
    monkeypatch.setattr(build_html, "run_notebook", run_notebook)
    return ran


def test_build_copies_the_mathjax_the_pages_load(tmp_path, no_kernel):
    src = tmp_path / "zh"
    src.mkdir()
    nbformat.write(_formula_lesson(), src / "01_formula.ipynb")
    out = tmp_path / "html-zh"
    (out / "mathjax").mkdir(parents=True)
    (out / "mathjax" / "stale.js").write_text("from an older copy")
    entries = build_html.build(src, out, "quick", edition="zh")
    assert no_kernel == ["01_formula.ipynb"] and [e["error"] for e in entries] == [None]
    assert sorted(p.name for p in out.iterdir()) == ["01_formula.html", "index.html", "mathjax"]
    mathjax = out / "mathjax"
    missing = [f for f in LOADED if not (mathjax / f).is_file()]
    assert missing == [], f"the pages load these, and the copy lacks them: {missing}"
    assert not (mathjax / "stale.js").exists(), "an older copy is replaced, not added to"
    # left out: the SVG output, other menu languages, other speech rules
    assert not (mathjax / "jax/output/SVG").exists()
    assert sorted(p.name for p in (mathjax / "localization").iterdir()) == ["en", "zh-hans"]
    assert sorted(p.name for p in (mathjax / "extensions/a11y/mathmaps").iterdir()) == ["en.js", "nemeth.js"]
    size = sum(f.stat().st_size for f in mathjax.rglob("*") if f.is_file())
    assert 3e6 < size < 4.5e6, f"the MathJax copy is {size / 1e6:.1f} MB (docs/instructors.md says 3.7 MB)"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in index and 'href="01_formula.html"' in index


def test_a_page_that_would_load_from_the_network_fails_the_build(tmp_path, no_kernel):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(_lesson(new_markdown_cell("# Remote\n\n![a figure](https://example.org/figure.png)")),
                   src / "01_remote.ipynb")
    entries = build_html.build(src, tmp_path / "html", "quick")
    assert entries[0]["error"] == "the page loads from the network: https://example.org/figure.png"
    assert "stopped with an error" in (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
