"""The executed edition: run every lesson and render it to static HTML, for learners who cannot run it.

    python tools/build_html.py --mode laptop          # -> dist/html/   (make html MODE=laptop)
    python tools/build_html.py --mode quick --src notebooks --out /tmp/html

Each lesson in ``notebooks/`` runs top to bottom with nbclient in the chosen mode (see
``cbam_course/grading/run.py``, which also bounds every run in time), then nbconvert's HTMLExporter writes ``<lesson>.html`` with its figures
embedded (no separate image files), and ``index.html`` links the lessons by title. The Colab set-up
cell is left out of the pages (it does nothing outside Colab). Widgets (``interact``, progress bars)
are rendered as what they showed when the lesson ran (control values, captured figures), so the
page reads the same offline.

A lesson that fails is still rendered, up to the failing cell, and the command exits 1 naming it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import platform
import re
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

from cbam_course.grading.run import MODES, run_notebook
from cbam_course.fast.cpu import machine_line

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HIDDEN_TAGS = {"colab-setup"}
BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*")


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


def render(nb, title: str) -> str:
    """Static HTML for an executed notebook, figures embedded as data URIs."""
    exporter = HTMLExporter(template_name="lab")
    remover = TagRemovePreprocessor(remove_cell_tags=HIDDEN_TAGS, enabled=True)
    exporter.register_preprocessor(remover, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def index_page(entries: list[dict], mode: str, when: str) -> str:
    """``index.html``: the lessons in order, each linked by its title."""
    items = "\n".join(
        f'    <li><a href="{html.escape(e["href"])}">{html.escape(e["title"])}</a>'
        + (f' <span class="failed">(stopped with an error: {html.escape(e["error"])})</span>' if e["error"] else "")
        + f' <span class="meta">{e["seconds"]:.0f} s</span></li>'
        for e in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CBAM course: the executed lessons</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
 li {{ margin: .4rem 0; }} .meta {{ color: #666; font-size: .9em; }} .failed {{ color: #b00; }}
</style>
</head>
<body>
<h1>CBAM course: the executed lessons</h1>
<p>Every lesson as it ran, with its outputs and figures, for reading without running anything.
Run in <strong>{html.escape(mode)}</strong> mode on {html.escape(when)}
({html.escape(machine_line())}, Python {platform.python_version()}).</p>
<ol id="lessons">
{items}
</ol>
</body>
</html>
"""


def build(src: Path, out: Path, mode: str, timeout: int | None = -1) -> list[dict]:
    """Execute and render every notebook in ``src`` into ``out``; return one entry per lesson
    (title, href, seconds, error)."""
    notebooks = sorted(p for p in Path(src).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {src}: point --src at the lessons folder.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in notebooks:
        print(f"running {path.name} ({mode})...", flush=True)
        run = run_notebook(path, mode, timeout)
        title = lesson_title(run.notebook, path.stem)
        freeze_widgets(run.notebook)
        if run.error:
            run.notebook.cells.insert(0, nbformat.v4.new_markdown_cell(
                f"**This lesson stopped with an error in {mode} mode:** `{run.error}`"))
        (out / f"{path.stem}.html").write_text(render(run.notebook, title), encoding="utf-8")
        entries.append({"title": title, "href": f"{path.stem}.html", "seconds": run.seconds, "error": run.error})
        print(f"  {path.stem}.html  {run.seconds:.1f} s" + (f"  ERROR: {run.error}" if run.error else ""), flush=True)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (out / "index.html").write_text(index_page(entries, mode, when), encoding="utf-8")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default="laptop", help="how hard the lessons work (default: laptop)")
    parser.add_argument("--src", type=Path, default=ROOT / "notebooks", help="folder of lessons (default: notebooks/)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "html", help="output folder (default: dist/html/)")
    parser.add_argument("--timeout", type=int, default=-1, help="seconds per cell (default: the mode's limit)")
    args = parser.parse_args(argv)
    entries = build(args.src, args.out, args.mode, args.timeout)
    failed = [e["href"] for e in entries if e["error"]]
    print(f"{args.out / 'index.html'}: {len(entries)} lessons" + (f", failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
