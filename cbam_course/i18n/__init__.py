"""The course in the learner's language: English, or Simplified Chinese with ``CBAM_COURSE_LANG=zh``.

Every message the package shows a learner (a checker's hint, an error, a lesson's first screen, a
progress line, the grader's feedback) is written in English in the code as a template,
``tr("{name} is not right yet. {hint}", name=..., hint=...)``, and looked up in a gettext catalog
of the package (``zh_CN/LC_MESSAGES/<domain>.po``, compiled to ``.mo`` by ``tools/i18n.py``):
one catalog per part of the package (core, checks, train, grading), so that each can be
translated on its own. A message with no translation is shown in English. Messages written in a
table, to be translated when shown, are marked ``N_("...")`` where they are written.

The Chinese notebooks set ``CBAM_COURSE_LANG=zh`` in their first cell; the grader chooses the
language of each learner's notebook for that learner's feedback (:func:`speaking`).
"""
from __future__ import annotations

import gettext
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["LANG_ENV", "LANGUAGES", "language", "speaking", "tr", "N_", "figure_text", "DOMAINS"]

LANG_ENV = "CBAM_COURSE_LANG"
LANGUAGES = ("en", "zh")
DOMAINS = ("core", "checks", "train", "grading")
LOCALE_DIR = Path(__file__).resolve().parent
_CATALOGS: dict[str, gettext.NullTranslations] = {}
# Fonts with Chinese glyphs that learners' machines commonly have (Windows, macOS, Linux), best first.
CJK_FONTS = ("Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Noto Sans CJK SC",
             "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei")
_FONT: list[str | None] = []
_chosen = threading.local()


def language() -> str:
    """"zh" or "en": the language :func:`speaking` chose for this thread, else ``$CBAM_COURSE_LANG``."""
    chosen = getattr(_chosen, "language", None)
    if chosen:
        return chosen
    return "zh" if os.environ.get(LANG_ENV, "").strip().lower().startswith("zh") else "en"


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Messages in ``lang`` ("en" or "zh") for the ``with`` block, in this thread only."""
    if lang not in LANGUAGES:
        raise ValueError(f"Unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}.")
    before = getattr(_chosen, "language", None)
    _chosen.language = lang
    try:
        yield
    finally:
        _chosen.language = before


def _catalog(lang: str) -> gettext.NullTranslations:
    if lang not in _CATALOGS:
        merged = gettext.NullTranslations()
        if lang == "zh":
            for domain in reversed(DOMAINS):
                found = gettext.translation(domain, LOCALE_DIR, languages=["zh_CN"], fallback=True)
                found.add_fallback(merged)
                merged = found
        _CATALOGS[lang] = merged
    return _CATALOGS[lang]


def tr(message: str, /, **values: object) -> str:
    """``message`` in the learner's language, its ``{fields}`` filled from ``values``."""
    text = _catalog(language()).gettext(message) if language() != "en" else message
    return text.format(**values) if values else text


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is written; :func:`tr` translates it when shown."""
    return message


def figure_text(message: str, /, **values: object) -> str:
    """:func:`tr` for text drawn in a figure: Chinese only where matplotlib has a font with Chinese
    glyphs (:data:`CJK_FONTS`, put first in its font list the first time), else English, so that a
    figure never shows empty boxes."""
    if language() == "zh":
        if not _FONT:
            import matplotlib
            from matplotlib import font_manager

            installed = {f.name for f in font_manager.fontManager.ttflist}
            _FONT.append(next((name for name in CJK_FONTS if name in installed), None))
            if _FONT[0]:
                matplotlib.rcParams["font.sans-serif"] = [_FONT[0], *matplotlib.rcParams["font.sans-serif"]]
                matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack the minus sign
        if _FONT[0]:
            return tr(message, **values)
    return message.format(**values) if values else message
