"""The package's promises about its own shape: a teaching core small enough to read in an evening,
whose attention modules are the formulas and nothing else; layers whose imports run one way
(core, speed, training, benchmarks and the command line); and each piece of code written once.
Everything here reads the source (ast), so a renamed copy or a lazy import is seen too."""
from __future__ import annotations

import ast
import copy
from collections import defaultdict
from pathlib import Path

import cbam_course

PACKAGE = Path(cbam_course.__file__).resolve().parent

# The layers, lowest first: a module may import its own layer's package and the layers below.
# The checkers (checks/) sit beside the core: they import nothing of it, and the grader imports them.
# The messages' translations (i18n/) sit below everything: every layer speaks the learner's language.
LAYERS = {"i18n": -1, "core": 0, "checks": 0, "fast": 1, "train": 2, "bench": 3, "grading": 3, "__main__": 4}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(module: str) -> set[str]:
    """Every module of the package that ``module`` imports, at its top or inside a function."""
    path = MODULES[module]
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cbam_course"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            if base.split(".")[0] != "cbam_course":
                continue
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return found - {module}


def _package(module: str) -> str:
    """``core`` for the top-level modules, else the subpackage (``train``, ``fast``, ...)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "__main__":
        return "__main__"
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "core"


def test_every_module_has_a_layer():
    assert {_package(m) for m in MODULES} <= set(LAYERS), {_package(m) for m in MODULES} - set(LAYERS)


def test_imports_run_one_way_down_the_layers():
    """core <- fast <- train <- bench, grading <- __main__: no import upward, lazily or not, and no
    import sideways between two packages of one layer."""
    wrong = []
    for module in MODULES:
        mine = _package(module)
        for target in _imports(module):
            theirs = _package(target)
            if LAYERS[theirs] > LAYERS[mine] or (theirs != mine and LAYERS[theirs] == LAYERS[mine]):
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_the_graph_reader_sees_lazy_and_relative_imports():
    """The reader itself: a lazy import inside a function counts, relative imports resolve."""
    assert "cbam_course.grading.grade" in _imports("cbam_course.__main__")  # imported inside main()
    assert "cbam_course.attention" in _imports("cbam_course.fast")          # inside accelerate()
    assert "cbam_course.train.trainer" in _imports("cbam_course.train.run")


class _Shape(ast.NodeTransformer):
    """A function body with its names, attributes, constants and docstrings blanked: what is left
    is its shape, the same for a copy under other names."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=ast.Load()), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg="_"), node)

    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant(value=0), node)

    def visit_Attribute(self, node):
        self.generic_visit(node)
        node.attr, node.ctx = "_", ast.Load()
        return node

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        self.generic_visit(node)
        return node


def same_shaped_functions(files: list[Path], min_statements: int = 6) -> list[list[str]]:
    """Groups of functions (``file:name``) whose bodies have the same shape, of at least
    ``min_statements`` statements: the same code written twice, whatever its names."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = [b for b in (_Shape().visit(copy.deepcopy(s)) for s in node.body) if b is not None]
            if sum(isinstance(n, ast.stmt) for b in body for n in ast.walk(b)) >= min_statements:
                groups[ast.dump(ast.Module(body=body, type_ignores=[]))].append(f"{path.name}:{node.name}")
    return [names for names in groups.values() if len(names) > 1]


def test_no_function_is_written_twice_under_other_names():
    assert same_shaped_functions(sorted(PACKAGE.rglob("*.py"))) == []


def test_the_shape_check_finds_a_renamed_copy(tmp_path):
    source = (PACKAGE / "measure.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    timer = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "interleave")
    copy_text = ast.get_source_segment(source, timer).replace("def interleave", "def _take_turns").replace(
        "runs", "jobs").replace("times", "seconds")
    (tmp_path / "other.py").write_text("import time\n\n\n" + copy_text + "\n", encoding="utf-8")
    assert same_shaped_functions([PACKAGE / "measure.py", tmp_path / "other.py"]) == [
        ["measure.py:interleave", "other.py:_take_turns"]]


def test_the_day50_network_is_written_once_and_imported():
    """One copy of the Day 50 lesson's code (day50.py): every other module that uses its CBAM_CNN
    imports it from there."""
    root = PACKAGE.parent
    for path in [*PACKAGE.rglob("*.py"), *(root / "tests").rglob("*.py"), *(root / "tools").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name.endswith("CBAM_CNN")]
        assert not defined or path == PACKAGE / "day50.py", f"{path} defines {defined}"


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_teaching_core_fits_its_line_budget():
    """The top-level modules (the checkers are a package beside them, checks/)."""
    core = {p.name: _lines(p) for p in PACKAGE.glob("*.py")}
    assert sum(core.values()) <= 1600, f"the core (the checkers aside) is {sum(core.values())} lines: {core}"


def test_the_trainer_class_fits_in_260_lines():
    """Its run state (state_dict, load_state_dict) included: the Trainer owns what it saves."""
    tree = ast.parse((PACKAGE / "train" / "trainer.py").read_text(encoding="utf-8"))
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    assert trainer.end_lineno - trainer.lineno + 1 <= 260


def test_the_core_exports_about_25_names_and_its_docstring_gives_the_reading_order():
    assert len(cbam_course.__all__) <= 25, cbam_course.__all__
    assert all(hasattr(cbam_course, name) for name in cbam_course.__all__)
    doc = cbam_course.__doc__
    reading, beside = doc.split("Beside the reading")
    order = [reading.index(f"``{m}``") for m in ("attention", "day50", "models", "variants", "measure", "runtime")]
    assert order == sorted(order), "the reading order: attention first, the Day 50 lesson's code beside it"
    assert "``checks``" not in reading and "``checks``" in beside, "the checkers are not part of the reading"
    assert beside.index("cbam_course.fast") < beside.index("cbam_course.train") < beside.index("cbam_course.bench")


def test_each_attention_forward_ends_in_its_gate():
    """As timm's: ``forward`` returns ``x * self.sigmoid(self.logits(x))``, the gate in plain sight."""
    tree = ast.parse((PACKAGE / "attention.py").read_text(encoding="utf-8"))
    for name in ("ChannelAttention", "SpatialAttention", "SEBlock"):
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
        forward = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
        assert ast.unparse(forward.body[-1]) == "return x * self.sigmoid(self.logits(x))", name


def test_attention_py_holds_the_formulas_only():
    """No dispatch, flags or dtype workarounds: what runs when a learner calls CBAM(x) is what they read."""
    text = (PACKAGE / "attention.py").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    tree = ast.parse(code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imports = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    imports |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    for word in ("fused", "kernels", "numba", "compiled", "bfloat16", "fast"):
        assert not any(word in x.lower() for x in names | imports), f"attention.py refers to {word!r}"




def test_contributing_names_every_module_and_tool():
    """CONTRIBUTING.md's tables are the map of the package: a module or tool missing there is a
    module nobody can find."""
    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    tables = {"core": "| core module |", "i18n": "| `i18n/` module |", "checks": "| `checks/` module |", "fast": "| `fast/` module |",
              "train": "| `train/` module |", "bench": "| `bench/` module |", "grading": "| `grading/` module |"}
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        package = "core" if path.parent == PACKAGE else path.parent.name
        table = text.split(tables[package], 1)[1].split("\n\n", 1)[0]
        if f"| `{path.name}` |" not in table:
            missing.append(str(path.relative_to(PACKAGE.parent)))
    tools = text.split("| `tools/` script |", 1)[1].split("\n\n", 1)[0]
    for path in sorted((PACKAGE.parent / "tools").iterdir()):
        if path.suffix in {".py", ".sh"} and f"`{path.name}`" not in tools:
            missing.append(str(path.relative_to(PACKAGE.parent)))
    assert not missing, f"not in CONTRIBUTING.md's tables: {missing}"
