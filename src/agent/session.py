# The agent loop's side of a session (src/agent/loop.cpp): run once after the tools are defined.
# Every step's code runs through _wand_step, which keeps the line numbers of the model's code,
# takes the value of its last expression, catches its error, notes a final_answer() call, and
# reports all that to the host over the tool bridge (the `_wand_report` tool), out of the
# program's stdout. Names start with _wand_ so they stay out of the model's way.
import ast as _wand_ast
import json as _wand_json
import sys as _wand_sys
import traceback as _wand_traceback


class _WandFinal(BaseException):
    """Raised by final_answer() to end the step; a BaseException so `except Exception` in the
    model's code does not swallow it."""


_wand_final = {}
_wand_clip = 1500


def _wand_jsonable(v):
    try:
        _wand_json.dumps(v, allow_nan=False)
        return v
    except (TypeError, ValueError):
        return repr(v)


def _wand_unicode(v):
    """`v` with every string valid Unicode: a lone surrogate (os.fsdecode's stand-in for an
    undecodable byte, or "\\ud800" in the model's code) becomes its escape as text, so that the
    report can cross the tool bridge, which takes only valid Unicode."""
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, dict):
        return {_wand_unicode(k): _wand_unicode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_wand_unicode(x) for x in v]
    return v


def _wand_short(text):
    if len(text) <= _wand_clip:
        return text
    head = _wand_clip * 2 // 3
    return text[:head] + f"\n... [{len(text) - _wand_clip} characters cut] ...\n" + text[len(text) - (_wand_clip - head):]


def final_answer(answer):
    """Gives the task's answer and ends the run. `answer`: any value (JSON-like values as they
    are, others by their repr)."""
    _wand_final["value"] = _wand_jsonable(answer)
    raise _WandFinal()


def _wand_error(e, source):
    line = 0
    if isinstance(e, SyntaxError) and e.filename == "<step>":
        line = e.lineno or 0
    for frame in _wand_traceback.extract_tb(e.__traceback__):
        if frame.filename == "<step>":
            line = frame.lineno or 0
    message = e.msg if isinstance(e, SyntaxError) else str(e)
    return {"type": type(e).__name__, "message": _wand_short(message), "line": line}


def _wand_run(source, g):
    """Runs `source` in `g` as one step; returns the report (value, error, final)."""
    report = {}
    _wand_final.clear()
    try:
        tree = _wand_ast.parse(source, "<step>")
        last = None
        if tree.body and isinstance(tree.body[-1], _wand_ast.Expr):
            last = _wand_ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<step>", "exec"), g)
        if last is not None:
            value = eval(compile(last, "<step>", "eval"), g)
            if value is not None:
                report["value"] = _wand_short(repr(value))
    except _WandFinal:
        pass
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: the session goes on
        report["error"] = _wand_error(e, source)
    if "value" in _wand_final:  # also when the model's code caught _WandFinal itself
        report["final"] = _wand_final["value"]
    _wand_sys.stdout.flush()
    _wand_sys.stderr.flush()
    return report


def _wand_step(source):
    _wand_report(_wand_unicode(_wand_run(source, globals())))


_wand_inert_nodes = (_wand_ast.Name, _wand_ast.Attribute, _wand_ast.Subscript, _wand_ast.Constant, _wand_ast.Tuple,
                     _wand_ast.List, _wand_ast.Load, _wand_ast.BinOp, _wand_ast.BitOr, _wand_ast.UnaryOp, _wand_ast.USub)


def _wand_skill_problem(code):
    """Why a library's skill may not be loaded, or None. Loading may only define: its top level
    holds function definitions (no decorators, defaults that are literals, annotations that call
    nothing) and imports, and binds no name the session already has (a tool, a built-in, another
    skill), so that loading runs none of its code and replaces nothing."""
    import builtins
    try:
        tree = _wand_ast.parse(code)
    except SyntaxError as e:
        return f"syntax error: {e.msg} (line {e.lineno})"
    bound = []
    for node in tree.body:
        if isinstance(node, (_wand_ast.Import, _wand_ast.ImportFrom)):
            if any(a.name == "*" for a in node.names):
                return f"line {node.lineno}: 'import *'"
            bound += [(a.asname or a.name).split(".")[0] for a in node.names]
            continue
        if isinstance(node, _wand_ast.Expr) and isinstance(node.value, _wand_ast.Constant):
            continue  # a docstring
        if isinstance(node, (_wand_ast.FunctionDef, _wand_ast.AsyncFunctionDef)) and not node.decorator_list:
            a = node.args
            evaluated = [*a.defaults, *[d for d in a.kw_defaults if d is not None], node.returns,
                         *[x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x]]
            if all(isinstance(n, _wand_inert_nodes) for e in evaluated if e is not None for n in _wand_ast.walk(e)):
                bound.append(node.name)
                continue
        return f"line {node.lineno}: only function definitions and imports may be at a skill's top level"
    g = globals()
    for name in bound:
        if name.startswith("_") or name in dir(builtins) or (name in g and not isinstance(g[name], type(_wand_ast))):
            return f"it would replace '{name}', which the session already has"
    return None


def _wand_skill_load(code):
    """Defines a library's skill in the session: only definitions (_wand_skill_problem), so that
    loading runs none of its code. Its tests ran before, in a program of their own (loop.cpp)."""
    problem = _wand_skill_problem(code)
    if problem:
        _wand_report({"error": {"type": "SkillRefused", "message": problem, "line": 0}})
        return
    _wand_report(_wand_unicode(_wand_run(code, globals())))


def _wand_functions(sources):
    """The top-level functions the given step sources define, with the asserts that call them:
    the candidates for the skill library."""
    found = {}
    asserts = []
    for source in sources:
        try:
            tree = _wand_ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, _wand_ast.Assert):
                asserts.append(_wand_ast.get_source_segment(source, node) or "")
            if not isinstance(node, _wand_ast.FunctionDef) or node.decorator_list or node.name.startswith("_"):
                continue
            returns = " -> " + _wand_ast.unparse(node.returns) if node.returns else ""
            found[node.name] = {
                "name": node.name,
                "signature": f"{node.name}({_wand_ast.unparse(node.args)}){returns}",
                "description": (_wand_ast.get_docstring(node) or "").strip(),
                "code": _wand_ast.get_source_segment(source, node) or "",
            }
    for f in found.values():
        calls = [a for a in asserts if f["name"] + "(" in a]
        f["tests"] = "\n".join(calls)
    _wand_report({"functions": list(found.values())})
