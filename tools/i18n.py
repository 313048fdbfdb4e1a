"""The package's message catalogs (cbam_course/i18n/): find every message, keep the .po files in step,
compile them to .mo.

    python tools/i18n.py check      # what is missing, stale or broken; exit 1 if anything is
    python tools/i18n.py update     # add new messages (empty), drop gone ones, compile: then translate
    python tools/i18n.py compile    # .po -> .mo (make translations runs it)

A message is the first argument of ``tr("...")``, ``N_("...")`` or ``figure_text("...")`` in the
package's source: a string literal (a template whose ``{fields}`` the code fills). Which catalog
(domain) it belongs to is where it is written: ``checks/`` -> checks, ``train/`` and ``fast/`` ->
train, ``grading/`` -> grading, the top-level modules -> core. A translation must keep the message's ``{fields}``
exactly; tests/test_i18n.py fails on a missing, stale or mismatched entry, and on a .mo file that
is not the compiled .po.
"""
from __future__ import annotations

import argparse
import ast
import string
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cbam_course"
CATALOGS = PACKAGE / "i18n" / "zh_CN" / "LC_MESSAGES"
MARKERS = ("tr", "N_", "figure_text")  # the functions whose first argument is a message
HEADER = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: zh_CN\\n"\n'
          '"Project-Id-Version: cbam-course\\n"\n')


def domain_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    if len(parts) == 1:
        return "core"
    return {"checks": "checks", "train": "train", "fast": "train", "grading": "grading"}.get(parts[0], "core")


def extract() -> dict[str, dict[str, list[str]]]:
    """``{domain: {message: [where it is written]}}`` for every ``tr``/``N_``/``figure_text`` literal of the package."""
    found: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parts[-2] == "i18n":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                where = f"{path.relative_to(ROOT).as_posix()}:{node.lineno}"
                found.setdefault(domain_of(path), {}).setdefault(node.args[0].value, []).append(where)
    return found


def fields(text: str) -> list[str]:
    """The ``{fields}`` a template fills, in order (``{{`` and ``}}`` are literal braces)."""
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


# ----------------------------------------------------------------------------------------------
# .po files: read, write


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    if len(lines) == 1:
        return f'"{escaped}"'
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{p}"' for p in parts)


def _unquote(chunks: list[str]) -> str:
    """The text of a .po string's quoted lines: ``\\``, ``\"``, ``\n`` and ``\t`` unescaped."""
    out = []
    for chunk in chunks:
        body, i = chunk.strip()[1:-1], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                out.append({"n": "\n", "t": "\t"}.get(body[i + 1], body[i + 1]))
                i += 2
            else:
                out.append(body[i])
                i += 1
    return "".join(out)


def read_po(path: Path) -> dict[str, str]:
    """``{msgid: msgstr}`` of a .po file (the header left out)."""
    entries: dict[str, str] = {}
    if not path.is_file():
        return entries
    key, chunks, current = None, {"msgid": [], "msgstr": []}, None
    for line in path.read_text(encoding="utf-8").splitlines() + ["msgid END"]:
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("msgid "):
            if current is not None:
                msgid = _unquote(chunks["msgid"])
                if msgid:
                    entries[msgid] = _unquote(chunks["msgstr"])
            if line == "msgid END":
                break
            chunks, current = {"msgid": [line[6:]], "msgstr": []}, "msgid"
        elif line.startswith("msgstr "):
            chunks["msgstr"], current = [line[7:]], "msgstr"
        elif line.startswith('"') and current:
            chunks[current].append(line)
    return entries


def write_po(path: Path, messages: dict[str, list[str]], translations: dict[str, str]) -> None:
    """The catalog of ``messages`` (with where each is written), keeping known translations."""
    lines = [HEADER]
    for msgid in sorted(messages):
        lines.append("".join(f"#: {where}\n" for where in messages[msgid][:3])
                     + f"msgid {_quote(msgid)}\nmsgstr {_quote(translations.get(msgid, ''))}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def mo_bytes(translations: dict[str, str]) -> bytes:
    """GNU gettext's binary catalog for ``translations`` (what ``gettext.GNUTranslations`` reads)."""
    catalog = {"": "Content-Type: text/plain; charset=UTF-8\n"}
    catalog.update({k: v for k, v in translations.items() if v})
    keys = sorted(catalog)
    ids = [k.encode("utf-8") for k in keys]
    strs = [catalog[k].encode("utf-8") for k in keys]
    start = 7 * 4 + 16 * len(keys)
    offsets, data = [], b""
    for blob in ids + strs:
        offsets.append((len(blob), start + len(data)))
        data += blob + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    table = b"".join(struct.pack("<2I", *o) for o in offsets)
    return header + table + data


def problems() -> list[str]:
    """Everything wrong with the catalogs, one line each (empty: all is well)."""
    found, out = extract(), []
    for domain in sorted(set(found) | {p.stem for p in CATALOGS.glob("*.po")}):
        po = CATALOGS / f"{domain}.po"
        translations = read_po(po)
        messages = found.get(domain, {})
        for msgid, where in sorted(messages.items()):
            text = translations.get(msgid, "")
            if not text:
                out.append(f"{domain}: missing: {msgid[:70]!r} ({where[0]})")
            elif fields(text) != fields(msgid):
                out.append(f"{domain}: fields differ ({fields(msgid)} vs {fields(text)}): {msgid[:60]!r} ({where[0]})")
        out += [f"{domain}: stale (no longer in the code): {msgid[:70]!r}" for msgid in translations if msgid not in messages]
        mo = po.with_suffix(".mo")
        if po.is_file() and (not mo.is_file() or mo.read_bytes() != mo_bytes(translations)):
            out.append(f"{domain}: {mo.relative_to(ROOT)} is not the compiled {po.name}: run `python tools/i18n.py compile`")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("check", "update", "compile"))
    args = p.parse_args(argv)
    if args.command == "update":
        for domain, messages in extract().items():
            po = CATALOGS / f"{domain}.po"
            write_po(po, messages, read_po(po))
    if args.command in ("update", "compile"):
        for po in sorted(CATALOGS.glob("*.po")):
            po.with_suffix(".mo").write_bytes(mo_bytes(read_po(po)))
    found = problems()
    for line in found:
        print(line)
    if args.command == "check":
        print(f"{len(found)} problem(s)" if found else "the catalogs are complete and compiled")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
