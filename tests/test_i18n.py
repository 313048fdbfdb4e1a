"""The package speaks the learner's language: every message has a Chinese translation with the
same {fields}, the compiled catalogs are the .po files, and CBAM_COURSE_LANG=zh switches them on."""
from __future__ import annotations

import gettext
import sys
import threading
from pathlib import Path

import pytest

from cbam_course import i18n
from cbam_course.i18n import N_, speaking, tr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import i18n as catalogs  # noqa: E402  (tools/i18n.py)


def test_every_message_has_a_translation_with_the_same_fields_and_the_catalogs_are_compiled():
    assert catalogs.problems() == []


def test_there_are_messages_in_every_part_of_the_package():
    found = catalogs.extract()
    assert set(found) == set(i18n.DOMAINS)
    assert sum(len(m) for m in found.values()) > 200


def test_the_check_finds_a_missing_translation_and_different_fields(tmp_path, monkeypatch):
    (tmp_path / "pkg" / "checks").mkdir(parents=True)
    (tmp_path / "pkg" / "checks" / "x.py").write_text(
        'from cbam_course.i18n import figure_text, tr\nprint(tr("{name} is {what}", name=1, what=2))\nprint(tr("new"))\n'
        'print(figure_text("drawn {n}", n=3))\n')
    monkeypatch.setattr(catalogs, "PACKAGE", tmp_path / "pkg")
    monkeypatch.setattr(catalogs, "ROOT", tmp_path)
    monkeypatch.setattr(catalogs, "CATALOGS", tmp_path / "catalogs")
    catalogs.write_po(tmp_path / "catalogs" / "checks.po", catalogs.extract()["checks"],
                      {"{name} is {what}": "{name} 是 {whom}"})
    with open(tmp_path / "catalogs" / "checks.po", "a", encoding="utf-8") as po:  # write_po drops what the code lost
        po.write('\nmsgid "gone"\nmsgstr "旧的"\n')
    found = "\n".join(catalogs.problems())
    assert "missing: 'new'" in found and "fields differ" in found and "stale" in found and "not the compiled" in found
    assert "missing: 'drawn {n}'" in found, "a figure's text is a message too"


def test_po_round_trip_and_mo_load_with_the_standard_gettext(tmp_path):
    entries = {"a \"quoted\" {x}\nsecond line\tend": "带引号 {x}\n第二行\t结束", "plain": "普通"}
    catalogs.write_po(tmp_path / "d.po", {k: ["here:1"] for k in entries}, entries)
    assert catalogs.read_po(tmp_path / "d.po") == entries
    (tmp_path / "d.mo").write_bytes(catalogs.mo_bytes(entries))
    with open(tmp_path / "d.mo", "rb") as f:
        loaded = gettext.GNUTranslations(f)
    assert all(loaded.gettext(k) == v for k, v in entries.items())


def test_the_language_is_english_by_default_and_chinese_with_the_switch(monkeypatch):
    message = "{name} is not right yet. {hint}"
    monkeypatch.delenv(i18n.LANG_ENV, raising=False)
    assert i18n.language() == "en" and tr(message, name="X", hint="h") == "X is not right yet. h"
    monkeypatch.setenv(i18n.LANG_ENV, "zh")
    assert i18n.language() == "zh"
    chinese = tr(message, name="X", hint="h")
    assert chinese != "X is not right yet. h" and "X" in chinese and any("\u4e00" <= ch <= "\u9fff" for ch in chinese)
    assert N_("x") == "x"


def test_speaking_chooses_the_language_of_one_thread_only(monkeypatch):
    monkeypatch.delenv(i18n.LANG_ENV, raising=False)
    seen = {}

    def other() -> None:
        seen["other"] = i18n.language()

    with speaking("zh"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        seen["here"] = i18n.language()
    assert seen == {"here": "zh", "other": "en"} and i18n.language() == "en"
    with pytest.raises(ValueError, match="choose one of en, zh"):
        with speaking("fr"):
            pass
