"""What the grader runs inside a learner's kernel, after every cell of the notebook.

The grader sends this file's source to the kernel and executes it in a namespace of its own,
with ``USER`` bound to the notebook's namespace. :func:`load` loads the checkers afresh from
``checks.py`` under a private module name (so a notebook that patches ``check_*`` changes nothing),
and :func:`check` runs one checker on the learner's definition and returns the verdict as JSON.
It is never imported by the grader's own process.
"""
USER: dict = globals().setdefault("USER", {})  # the notebook's globals: the grader binds them before this runs
CHECKERS = {}


def load(checks_path, module_name, defined):
    import builtins, importlib.util, sys
    spec = importlib.util.spec_from_file_location(module_name, checks_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    CHECKERS.update({name: getattr(module, name) for name in module.__all__})
    for name, source in defined.items():
        space = {"__builtins__": builtins, "__name__": module_name + "_solution"}
        exec("import cbam_course\nimport torch\n" + source, space)
        CHECKERS[name] = space[name]


def check(checker, target):
    import contextlib, io, json
    if target not in USER:
        return json.dumps(["missing", ""])
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            verdict = CHECKERS[checker](USER[target])
    except AssertionError as err:  # the checker's hint; chained to an error when the learner's code raised
        cause = err.__cause__
        status = "error" if cause is not None and not isinstance(cause, AssertionError) else "fail"
        return json.dumps([status, str(err) or "AssertionError"])
    except BaseException as err:  # noqa: BLE001 - SystemExit or anything else from the learner's code
        return json.dumps(["error", f"{type(err).__name__}: {err}"])
    return json.dumps(["pass" if verdict is True else "not_done", printed.getvalue()])
