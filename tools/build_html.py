"""The executed edition: run every lesson and render it to static HTML, for learners who cannot run it.

    python tools/build_html.py --mode laptop                 # notebooks/    -> dist/html/    (make html MODE=laptop)
    python tools/build_html.py --edition zh --mode laptop    # notebooks/zh/ -> dist/html-zh/ (make html LANG=zh)
    python tools/build_html.py --mode quick --src notebooks --out /tmp/html

Each lesson runs top to bottom with nbclient in the chosen mode (see ``cbam_course/grading/run.py``,
which also bounds every run in time), then nbconvert's HTMLExporter writes ``<lesson>.html`` with its
figures embedded (no separate image files), and ``index.html`` links the lessons by title. The Colab
set-up cell runs (a Chinese lesson sets ``CBAM_COURSE_LANG=zh`` there, so the package speaks Chinese)
but is left out of the page, like the Colab badge. Widgets (``interact``, progress bars) are rendered
as what they showed when the lesson ran (control values, captured figures). The Chinese edition's
pages and index are ``lang="zh-CN"``, and its index is in Chinese.

The pages read offline: they load nothing from the network. Formulas are typeset by MathJax 2, copied
from the jupyter-server-mathjax package (the lab extra) into ``<out>/mathjax/`` (3.7 MB: what
:func:`copy_mathjax` leaves out, and why, is in its docstring) and loaded by a relative URL, so the
folder works from disk or any web server. nbconvert's lab template is used without its CDN scripts
(require.js, the widget manager, mermaid). A page that would still load something off the machine
(:func:`remote_resources`: a lesson's remote image, say) counts as failed.

A lesson that fails is still rendered, up to the failing cell, and the command exits 1 naming it.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import html
import importlib.util
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from cbam_course.grading.run import MODES, run_notebook
from cbam_course.fast.cpu import machine_line

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HIDDEN_TAGS = {"colab-setup"}
BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*")


@dataclass(frozen=True)
class Edition:
    """What the English and the Simplified Chinese executed editions do differently."""
    src: str             # the lessons, relative to the repository
    out: str             # where the pages go
    lang: str            # the pages' <html lang>
    mathjax_locale: str  # the language of MathJax's menu (a folder of its localization/)
    title: str           # the index page's title and heading
    intro: str           # the index page's paragraph: {mode}, {when}, {machine}, {python}
    failed: str          # after a failed lesson's link on the index: {error}
    stopped: str         # the note at the top of a failed lesson's page: {mode}, {error}
    seconds: str         # a lesson's run time on the index: {seconds}


EDITIONS = {
    "en": Edition(
        "notebooks", "dist/html", "en", "en",
        title="CBAM course: the executed lessons",
        intro=("Every lesson as it ran, with its outputs and figures, for reading without running anything.\n"
               "Run in <strong>{mode}</strong> mode on {when}\n({machine}, Python {python})."),
        failed="(stopped with an error: {error})",
        stopped="**This lesson stopped with an error in {mode} mode:** `{error}`",
        seconds="{seconds:.0f} s"),
    "zh": Edition(
        "notebooks/zh", "dist/html-zh", "zh-CN", "zh-hans",
        title="CBAM 课程：运行过的各课",
        # One line: a line break in the HTML would show as a space between Chinese characters.
        intro=("每一课都从头到尾运行过，输出和图都在页面上，不运行任何代码也能读。"
               "运行模式：<strong>{mode}</strong>，运行于 {when}（{machine}，Python {python}）。"),
        failed="（运行出错，已中止：{error}）",
        stopped="**本课在 {mode} 模式下运行出错，已中止：** `{error}`",
        seconds="{seconds:.0f} 秒"),
}

# MathJax 2 from jupyter-server-mathjax, copied into <out>/mathjax/ so that formulas render offline.
MATHJAX_DIR = "mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the configuration Jupyter's own pages use
MATHJAX_LOCALES = ("en", "zh-hans")  # the menu's languages that are copied (the page names its own)
# The HTML-CSS output with the STIX-Web fonts: the only web fonts the package ships (MathJax's
# default, TeX, is not in it, and without this setting formulas come out in the reader's own fonts).
MATHJAX_FONTS = '{"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}}'

# nbconvert's lab template, less what it fetches from CDNs: require.js and the widget manager (only
# live widgets need them, and the pages freeze widgets), and mermaid (no lesson draws a diagram: a
# ```mermaid block would show its source). MathJax comes from the copy, with the fonts it has.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{{ super() }}
    <script>if (window.MathJax) { MathJax.Hub.Config(""" + MATHJAX_FONTS + """); }</script>
{%- endblock html_head_js_mathjax -%}
"""


def lesson_title(nb, fallback: str) -> str:
    """The first ``# heading`` of the notebook's markdown (the Colab badge skipped), else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in BADGE_RE.sub("", cell.source).splitlines():
            match = re.match(r"^#{1,2}\s+(.+?)\s*#*\s*$", line)
            if match:
                return re.sub(r"[*_`]", "", match.group(1))
    return fallback


def _walk(model_id: str, state: dict, seen: set | None = None):
    """The widget models under ``model_id`` (itself first, then its children in order)."""
    seen = seen if seen is not None else set()
    if model_id in seen or model_id not in state:
        return
    seen.add(model_id)
    model = state[model_id].get("state", {})
    yield model
    for child in model.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            yield from _walk(child[len("IPY_MODEL_"):], state, seen)


def _control_html(model: dict) -> str | None:
    """A static rendering of one control as it was when the notebook ran, or None."""
    name = model.get("_model_name", "")
    label = html.escape(str(model.get("description", "")))
    if name in {"HTMLModel", "HTMLMathModel"}:
        return model.get("value") or None  # tqdm's text around its bar is HTML it wrote itself
    if name == "LabelModel":
        return html.escape(str(model.get("value", ""))) or None
    if name in {"FloatProgressModel", "IntProgressModel"}:
        return f'<progress value="{model.get("value", 0)}" max="{model.get("max", 100)}"></progress>'
    if "_options_labels" in model and isinstance(model.get("index"), int):
        labels = model["_options_labels"]
        value = labels[model["index"]] if 0 <= model["index"] < len(labels) else ""
    elif "value" in model and name not in {"OutputModel"} and not name.endswith("BoxModel"):
        value = model["value"]
    else:
        return None
    return f"<code>{label} {html.escape(str(value))}</code>".replace("<code> ", "<code>")


def frozen_outputs(model_id: str, state: dict) -> list:
    """What a widget view showed when the notebook ran, as plain outputs: its controls' values
    (sliders, progress bars, labels) as one HTML line, then what its Output widgets captured."""
    models = list(_walk(model_id, state))
    captured = [nbformat.from_dict(o) for m in models if m.get("_model_name") == "OutputModel"
                for o in m.get("outputs", [])]
    parts = [p for p in (_control_html(m) for m in models) if p]
    line = []
    if parts:
        note = (' <em>(run the notebook to change these)</em>' if captured else "")
        line = [nbformat.v4.new_output("display_data", data={
            "text/html": '<div class="frozen-widget">' + " ".join(parts) + note + "</div>",
            "text/plain": "(widget: run the notebook to use it)"})]
    return line + captured


def freeze_widgets(nb) -> int:
    """Replace each widget view with :func:`frozen_outputs`, so pages need no widget JavaScript
    and read the same offline; return how many views were replaced."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            view = out.get("data", {}).get(WIDGET_VIEW) if out.get("output_type") in {"display_data", "execute_result"} else None
            if view is None:
                outputs.append(out)
                continue
            replaced += 1
            outputs += frozen_outputs(view.get("model_id", ""), state)
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return replaced


def mathjax_source() -> Path:
    """The MathJax 2 files that jupyter-server-mathjax ships (its ``static/`` folder)."""
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "The executed edition bundles MathJax from the jupyter-server-mathjax package, which is not "
            "installed: `pip install jupyter-server-mathjax` (the lab extra has it: pip install -e '.[lab]').")
    static = Path(spec.origin).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise FileNotFoundError(f"{static} has no MathJax.js: reinstall jupyter-server-mathjax.")
    return static


def _mathjax_left_out(source: Path):
    """``shutil.copytree``'s ``ignore``: what no page of the course loads (see :func:`copy_mathjax`)."""
    def ignore(folder: str, names: list[str]) -> list[str]:
        where = Path(folder).relative_to(source).as_posix()
        if where == "jax/output":
            return [n for n in names if n == "SVG"]
        if where == "localization":
            return [n for n in names if n not in MATHJAX_LOCALES]
        if where == "extensions/a11y/mathmaps":
            return [n for n in names if n not in {"en.js", "nemeth.js"}]
        return []
    return ignore


def copy_mathjax(out: Path) -> int:
    """Copy the MathJax the pages load into ``<out>/mathjax/`` (replacing an older copy); return its bytes.

    Everything a page loads is copied: MathJax.js, the combined configuration (TeX and MathML input,
    HTML-CSS output, the menu, the accessibility menu), the ``Safe`` configuration, the TeX extensions
    and the HTML-CSS output with its STIX-Web fonts; also the accessibility extensions that the
    menu turns on (explorer, speech rules in English and Nemeth braille) and MathJax's licence: 3.7 MB.
    Left out, 5.9 of the package's 9.5 MB: the SVG output (2.5 MB; the HTML-CSS output renders, and
    SVG is only a choice in the right-click menu, like CommonHTML, which the package does not ship at
    all), the menu's languages other than English and Chinese (1.1 MB; the page names its own, so the
    browser's language loads nothing else), and the speech rules for Internet Explorer, German,
    Spanish and French (2.2 MB). The browser test shows a page's formulas render from this copy
    with the network cut and no file missing.
    """
    source = mathjax_source()
    target = Path(out) / MATHJAX_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=_mathjax_left_out(source))
    return sum(f.stat().st_size for f in target.rglob("*") if f.is_file())


def mathjax_url(edition: str = "en") -> str:
    """Where a page loads MathJax: the copy beside it (relative), with the edition's menu language."""
    return f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}&locale={EDITIONS[edition].mathjax_locale}"


_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_JS_URL = re.compile(r"""["'`]((?:https?:)?//[^"'`\s]+)""", re.I)
_SRC_TAGS = {"script", "img", "iframe", "frame", "embed", "source", "audio", "video", "track", "input"}


class _Resources(HTMLParser):
    """Every URL a page loads by itself: scripts, style sheets, images, fonts, frames, and URLs
    written in its inline scripts and styles; not the links a reader may follow (``<a href>``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k.lower(): v or "" for k, v in attrs}
        if tag in _SRC_TAGS:
            self.urls.append(attrs.get("src", ""))
        if tag == "link" or (tag in {"image", "use"}):
            self.urls += [attrs.get("href", ""), attrs.get("xlink:href", "")]
        if tag == "object":
            self.urls.append(attrs.get("data", ""))
        self.urls.append(attrs.get("poster", ""))
        self.urls += [part.split()[0] for part in attrs.get("srcset", "").split(",") if part.split()]
        self.urls += [a or b for a, b in _CSS_URL.findall(attrs.get("style", ""))]
        self._inside = tag if tag in {"script", "style"} else None

    def handle_endtag(self, tag):
        self._inside = None

    def handle_data(self, data):
        if self._inside == "style":
            self.urls += [a or b for a, b in _CSS_URL.findall(_CSS_COMMENT.sub("", data))]
        elif self._inside == "script":
            self.urls += _JS_URL.findall(data)


def remote_resources(page: str) -> list[str]:
    """The URLs off this machine that the HTML ``page`` would load (empty: it reads offline)."""
    parser = _Resources()
    parser.feed(page)
    parser.close()
    return sorted({u.strip() for u in parser.urls if _REMOTE.match(u)})


def render(nb, title: str, edition: str = "en") -> str:
    """Static HTML for an executed notebook, figures embedded as data URIs, that loads nothing from
    the network: MathJax from ``mathjax/`` beside the page (:func:`copy_mathjax`), no CDN script, no
    Colab badge (an image from Colab; the set-up cell is left out too)."""
    ed = EDITIONS[edition]
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = BADGE_RE.sub("", cell.source, count=1)
    exporter = HTMLExporter(template_name="lab", template_file="offline.html.j2",
                            extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
                            mathjax_url=mathjax_url(edition))
    remover = TagRemovePreprocessor(remove_cell_tags=HIDDEN_TAGS, enabled=True)
    exporter.register_preprocessor(remover, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    # nbconvert takes only two-letter codes for <html lang>; zh-CN picks Simplified Chinese fonts.
    body, found = re.subn(r'<html lang="[^"]*">', f'<html lang="{ed.lang}">', body, count=1)
    if not found:
        raise RuntimeError("nbconvert's lab template wrote no <html lang=...>: update render().")
    return body


def index_page(entries: list[dict], mode: str, when: str, edition: str = "en") -> str:
    """``index.html``: the lessons in order, each linked by its title."""
    ed = EDITIONS[edition]
    items = "\n".join(
        f'    <li><a href="{html.escape(e["href"])}">{html.escape(e["title"])}</a>'
        + (f' <span class="failed">{ed.failed.format(error=html.escape(e["error"]))}</span>' if e["error"] else "")
        + f' <span class="meta">{ed.seconds.format(seconds=e["seconds"])}</span></li>'
        for e in entries)
    intro = ed.intro.format(mode=html.escape(mode), when=html.escape(when), machine=html.escape(machine_line()),
                            python=platform.python_version())
    return f"""<!DOCTYPE html>
<html lang="{ed.lang}">
<head>
<meta charset="utf-8">
<title>{html.escape(ed.title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
 li {{ margin: .4rem 0; }} .meta {{ color: #666; font-size: .9em; }} .failed {{ color: #b00; }}
</style>
</head>
<body>
<h1>{html.escape(ed.title)}</h1>
<p>{intro}</p>
<ol id="lessons">
{items}
</ol>
</body>
</html>
"""


def build(src: Path, out: Path, mode: str, timeout: int | None = -1, edition: str = "en") -> list[dict]:
    """Execute and render every notebook in ``src`` into ``out``, with MathJax copied beside the
    pages; return one entry per lesson (title, href, seconds, error). A page that would load
    anything from the network counts as failed."""
    ed = EDITIONS[edition]
    notebooks = sorted(p for p in Path(src).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {src}: point --src at the lessons folder.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = copy_mathjax(out)
    print(f"{out / MATHJAX_DIR}: MathJax for formulas offline, {size / 1e6:.1f} MB", flush=True)
    entries = []
    for path in notebooks:
        print(f"running {path.name} ({mode})...", flush=True)
        # Every cell runs, the Colab set-up cell too (the Chinese lessons set CBAM_COURSE_LANG=zh
        # there); render() leaves it out of the page.
        run = run_notebook(path, mode, timeout)
        title = lesson_title(run.notebook, path.stem)
        freeze_widgets(run.notebook)
        if run.error:
            run.notebook.cells.insert(0, nbformat.v4.new_markdown_cell(ed.stopped.format(mode=mode, error=run.error)))
        page = render(run.notebook, title, edition)
        (out / f"{path.stem}.html").write_text(page, encoding="utf-8")
        error = run.error
        remote = remote_resources(page)
        if remote and not error:
            error = f"the page loads from the network: {', '.join(remote)}"
        entries.append({"title": title, "href": f"{path.stem}.html", "seconds": run.seconds, "error": error})
        print(f"  {path.stem}.html  {run.seconds:.1f} s" + (f"  ERROR: {error}" if error else ""), flush=True)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (out / "index.html").write_text(index_page(entries, mode, when, edition), encoding="utf-8")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edition", choices=sorted(EDITIONS), default="en",
                        help="en: notebooks/ into dist/html/; zh: notebooks/zh/ into dist/html-zh/ (default: en)")
    parser.add_argument("--mode", choices=MODES, default="laptop", help="how hard the lessons work (default: laptop)")
    parser.add_argument("--src", type=Path, help="folder of lessons (default: the edition's)")
    parser.add_argument("--out", type=Path, help="output folder (default: the edition's)")
    parser.add_argument("--timeout", type=int, default=-1, help="seconds per cell (default: the mode's limit)")
    args = parser.parse_args(argv)
    ed = EDITIONS[args.edition]
    src = args.src or ROOT / ed.src
    out = args.out or ROOT / ed.out
    entries = build(src, out, args.mode, args.timeout, args.edition)
    failed = [e["href"] for e in entries if e["error"]]
    print(f"{out / 'index.html'}: {len(entries)} lessons" + (f", failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
