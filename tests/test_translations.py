"""The Chinese edition stays in step with the English one: every translation is current (a changed
English cell fails here, naming the notebook and the cell), the committed Chinese notebooks are what
tools/translate.py builds, translated code is the English program, and the lessons use the Day 50
lesson's own terms (lesson 01's glossary)."""
from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import translate  # noqa: E402
from colab import unstamp  # noqa: E402

ENGLISH = translate.english_notebooks()
GLOSSARY_CELL = "92ec1822"   # lesson 01, "Glossary: English -> 中文": the term base
# The course's key terms, by their English name in the glossary: where an English cell says one, its
# translation says the glossary's Chinese for it.
KEY_TERMS = ("attention mechanism", "channel attention", "spatial attention", "feature map",
             "global average pooling", "global max pooling", "reduction ratio", "concatenate",
             "forward pass", "training set", "test set", "test accuracy", "classifier", "convolution block")
# Synonyms a translator might reach for, and the glossary's term that the lessons use instead.
SYNONYMS = {"通道关注": "通道注意力", "空间关注": "空间注意力", "特征映射": "特征图", "特征地图": "特征图",
            "全局均值池化": "全局平均池化", "缩减比": "降维比例", "缩减率": "降维比例", "压缩比": "降维比例",
            "降维比率": "降维比例", "串接": "拼接", "正向传播": "前向传播", "测试精度": "测试准确率",
            "测试正确率": "测试准确率", "分类头": "分类器", "卷积模块": "卷积块"}
CJK = re.compile(r"[\u3400-\u9fff]")


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def glossary() -> dict[str, str]:
    """``{english term: chinese term}`` from lesson 01's glossary table (parentheses dropped)."""
    nb = nbformat.read(ROOT / "notebooks" / "01_concepts.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == GLOSSARY_CELL)
    terms = {}
    for line in cell.source.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 2 or not CJK.search(cols[1]):
            continue
        english = [re.sub(r"\(.*?\)|\"", "", e).strip() for e in cols[0].split("/")]
        chinese = [re.sub(r"（.*?）", "", z).strip() for z in cols[1].split("/")]
        for e, z in zip(english, chinese):
            terms[e.lower()] = z
    return terms


def test_the_glossary_names_every_key_term():
    terms = glossary()
    missing = [t for t in KEY_TERMS if t not in terms]
    assert not missing, f"lesson 01's glossary (cell {GLOSSARY_CELL}) has no row for {missing}"
    assert terms["channel attention"] == "通道注意力" and terms["concatenate"] == "拼接"


@pytest.mark.parametrize("english", ENGLISH, ids=_id)
def test_every_translation_is_current(english):
    problems = translate.problems_of(english)
    assert not problems, ("the Chinese edition is not in step with the English:\n  "
                          + "\n  ".join(map(str, problems))
                          + f"\nFix: `python tools/translate.py todo {_id(english)}` shows each cell's English, its old "
                          "translation and the header to write; then `make translations`.")


@pytest.mark.parametrize("english", ENGLISH, ids=_id)
def test_the_chinese_notebook_is_built_from_its_translation(english):
    committed = translate.chinese_path(english)
    assert committed.is_file(), f"{_id(committed)} is missing: run `make translations`"
    built = translate.build_one(english)
    assert unstamp(nbformat.read(committed, as_version=4)) == built, (
        f"{_id(committed)} is not what its translation builds: run `make translations` and commit the result")
    assert nbformat.read(committed, as_version=4).metadata["cbam_course"]["language"] == "zh"


def test_changing_one_english_word_fails_and_names_that_cell(tmp_path):
    english = ROOT / "notebooks" / "02_channel_attention.ipynb"
    for folder in ("notebooks", "notebooks/zh/translations"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    copy = tmp_path / "notebooks" / english.name
    shutil.copy(english, copy)
    shutil.copy(translate.translation_path(english), translate.translation_path(copy))
    assert translate.problems_of(copy, root=tmp_path) == []
    nb = nbformat.read(copy, as_version=4)
    cell = next(c for c in nb.cells[2:] if c.cell_type == "markdown" and " the " in c.source)
    cell.source = cell.source.replace(" the ", " a ", 1)
    nbformat.write(nb, copy)
    problems = translate.problems_of(copy, root=tmp_path)
    assert [(p.notebook, p.cell) for p in problems] == [("notebooks/02_channel_attention.ipynb", cell.id)]
    assert "stale" in problems[0].what
    # the build keeps the changed English cell rather than a translation of the old text
    built = translate.build_one(copy)
    assert next(c for c in built.cells if c.get("id") == cell.id).source == cell.source


def test_a_translated_code_cell_must_be_the_same_program():
    english = 'x = model(inputs)  # run it\nprint(f"loss {loss:.3f} after {n} steps")\nplt.title("Loss")'
    assert translate.same_program(english, 'x = model(inputs)  # 运行\nprint(f"{n} 步后损失为 {loss:.3f}")\nplt.title("损失")')
    assert not translate.same_program(english, english.replace("inputs", "images"))
    assert not translate.same_program(english, english.replace(":.3f", ":.2f"))
    assert not translate.same_program(english, english.replace("{n}", "{n + 1}"))
    assert not translate.same_program(english, english.replace("plt.title", "print"))
    assert translate.same_program("%matplotlib inline\nx = 1", "%matplotlib inline\nx = 1  # 一")


def test_a_translation_of_different_code_is_reported(tmp_path):
    (tmp_path / "notebooks" / "zh" / "translations").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('print("hello world")  # greet')]
    nb.cells[0]["id"] = "c1"
    path = tmp_path / "notebooks" / "x.ipynb"
    nbformat.write(nb, path)
    header = f"<!-- cell c1 {translate.text_hash(nb.cells[0].source)} -->\n"
    translate.translation_path(path).write_text(header + 'print("你好")  # 问候\n', encoding="utf-8")
    assert translate.problems_of(path, root=tmp_path) == []
    translate.translation_path(path).write_text(header + 'print("你好", 1)\n', encoding="utf-8")
    assert [p.what.split(" (")[0] for p in translate.problems_of(path, root=tmp_path)] == [
        "not the same program as the English cell"]


def _cells(english: Path):
    """(english cell, its current translation) for every translated cell of ``english``."""
    entries = translate.read_translation(translate.translation_path(english))
    for cell in unstamp(nbformat.read(english, as_version=4)).cells:
        entry = entries.get(cell.get("id"))
        if entry and translate.TODO not in entry[1] and entry[0] == translate.text_hash(cell.source):
            yield cell, entry[1]


def _prose(text: str) -> str:
    """Markdown without code spans, code blocks, formulas and link targets: what a learner reads as words."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]*`", " ", text, flags=re.S)
    return re.sub(r"\]\([^)]*\)", "]", text)


@pytest.mark.parametrize("english", ENGLISH, ids=_id)
def test_the_lessons_use_the_day50_terms(english):
    terms = glossary()
    wrong = []
    for cell, chinese in _cells(english):
        if cell.cell_type != "markdown":
            continue
        words = re.sub(r'"[^"\n]*"', " ", _prose(cell.source)).lower()   # quoted titles aside
        prose = _prose(chinese)
        for term in KEY_TERMS:
            if re.search(rf"\b{term}s?\b", words) and terms[term] not in prose:
                wrong.append(f"cell {cell.id}: says '{term}' in English but not {terms[term]} in Chinese")
        for synonym, term in SYNONYMS.items():
            if synonym in prose:
                wrong.append(f"cell {cell.id}: {synonym} where the Day 50 lesson says {term}")
    assert not wrong, f"{_id(english)}'s translation departs from lesson 01's glossary:\n  " + "\n  ".join(wrong)


FIGURE_CALLS = {"set_title", "set_xlabel", "set_ylabel", "suptitle", "title", "xlabel", "ylabel", "text",
                "annotate", "legend", "set_yticklabels", "set_xticklabels", "colorbar"}
FIGURE_KEYWORDS = {"title", "label", "xlabel", "ylabel", "titles", "labels", "names"}


@pytest.mark.parametrize("english", ENGLISH, ids=_id)
def test_text_drawn_in_a_figure_stays_readable_without_a_chinese_font(english):
    """Text a notebook draws into a figure stays in English: where matplotlib has no font with
    Chinese glyphs (Colab, CI, many Linux machines) Chinese would be drawn as empty boxes. The
    package's own figure text switches language only where such a font exists (i18n.figure_text)."""
    found = []
    for cell, chinese in _cells(english):
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(translate._code(chinese))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            args = list(node.args) if name in FIGURE_CALLS else []
            args += [k.value for k in node.keywords if k.arg in FIGURE_KEYWORDS]
            for arg in args:
                for const in ast.walk(arg):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) and CJK.search(const.value):
                        found.append(f"cell {cell.id}: {name}(... {const.value!r} ...)")
    assert not found, (f"{_id(english)}'s translation draws Chinese into figures (empty boxes without a CJK font); "
                       "keep the English there and translate it in a comment:\n  " + "\n  ".join(found))


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("english", ENGLISH, ids=_id)
def test_the_chinese_notebooks_links_resolve(english):
    chinese = translate.chinese_path(english)
    broken = []
    for cell in nbformat.read(chinese, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for target in LINK.findall(cell.source):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (chinese.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"cell {cell.get('id')}: {target}")
    assert not broken, f"{_id(chinese)} links to files that are not there (it lives in {_id(chinese.parent)}/):\n  " + "\n  ".join(broken)


WRONG_PARAMS = ("def channel_attention_params(in_channels, ratio):\n"
                "    hidden = in_channels // ratio\n"
                "    return 2 * in_channels * hidden + hidden + in_channels   # biases counted: a mistake\n")


@pytest.mark.parametrize("edition", ["", "zh"])
def test_a_wrong_answer_in_an_exercise_gets_its_hint_in_the_exercise_language(edition):
    """The exercise as a learner runs it: its first cell sets the language (the Chinese edition's
    sets CBAM_COURSE_LANG=zh), then a wrong answer meets the checker."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = ROOT / "exercises" / edition / "02_channel_attention.ipynb"
    nb = nbformat.read(path, as_version=4)
    keep = {"colab-setup", "imports", "ex2-solution", "ex2-check"}
    nb.cells = [c for c in nb.cells if c.get("id") in keep]
    assert [c.id for c in nb.cells] == ["colab-setup", "imports", "ex2-solution", "ex2-check"]
    nb.cells[2].source = WRONG_PARAMS
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    env = {k: v for k, v in __import__("os").environ.items() if k != "CBAM_COURSE_LANG"}
    with pytest.raises(CellExecutionError) as failed:
        client.execute(env=env)
    message = str(failed.value)
    assert "channel_attention_params" in message
    if edition == "zh":
        assert "还没有写对" in message and "偏置" in message, message[-800:]   # the verdict and the mistake's hint
    else:
        assert "is not right yet" in message and "bias" in message and not CJK.search(message), message[-800:]


def _commands(text: str) -> set[str]:
    """The ``make`` targets and ``python -m cbam_course`` commands a README tells a reader to run."""
    return set(re.findall(r"\bmake [a-z][a-z-]*|python -m cbam_course [a-z]+", text))


def test_the_chinese_readme_gives_the_same_commands_and_links_the_chinese_lessons():
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "README.zh-CN.md" in english and "(README.md)" in chinese
    missing = _commands(english) - _commands(chinese) - {"make unit", "make test-fast", "make test-pythons", "make test-browser"}
    assert not missing, f"README.zh-CN.md does not tell its readers about {sorted(missing)}, which README.md does"
    assert "make lab LANG=zh" in chinese and "make test" in chinese
    lessons = set(re.findall(r"\]\((notebooks/zh/[^)]+\.ipynb)\)", chinese))
    assert lessons == {f"notebooks/zh/{p.name}" for p in (ROOT / "notebooks" / "zh").glob("*.ipynb")}
    assert not re.findall(r"\]\((notebooks/0[^)]*)\)", chinese), "the Chinese README links an English lesson"
    for link in re.findall(r"\]\(([^)#:]+)\)", chinese):
        assert (ROOT / link).exists(), f"README.zh-CN.md links {link}, which is not there"
