
# --- wand's test harness (appended after the program under test; see src/feedback/tasks.cpp) ---
# Runs each assertion on its own and reports it on stdout as NONCE + JSON, then a final record.
# The host counts a sample as passed only when that final record arrives with no failures, so a
# program that exits early (os._exit(0)) does not pass by skipping the tests.
def __wand_run_tests(__g, __src, __fn, __arg, __nonce):
    import ast, json, sys
    tree = ast.parse(__src)
    lines = __src.splitlines()  # sliced per test: ast.get_source_segment splits the source on every call
    body, ns = tree.body, __g
    if __fn is not None:
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == __fn)
        body, ns = fn.body, dict(__g)
        if fn.args.args:
            ns[fn.args.args[0].arg] = __g[__arg]

    def emit(rec):
        sys.stdout.flush()
        sys.stdout.write(__nonce + json.dumps(rec) + "\n")
        sys.stdout.flush()

    def value(node):
        try:
            return repr(eval(compile(ast.Expression(node), "<test>", "eval"), ns))[:200]
        except BaseException:
            return None

    total = failed = 0
    for stmt in body:
        code = compile(ast.Module([stmt], []), "<test>", "exec")
        if not isinstance(stmt, ast.Assert) and not any(isinstance(n, ast.Assert) for n in ast.walk(stmt)):
            exec(code, ns)  # set-up between the assertions
            continue
        src = "\n".join(lines[stmt.lineno - 1:stmt.end_lineno]).strip()
        rec = {"test": total, "source": src[:300]}
        total += 1
        try:
            exec(code, ns)
            rec["passed"] = True
        except AssertionError:
            rec["passed"] = False
            t = stmt.test if isinstance(stmt, ast.Assert) else None
            if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
                rec["got"], rec["expected"] = value(t.left), value(t.comparators[0])
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            rec["passed"] = False
            rec["error"] = (type(e).__name__ + ": " + str(e))[:300]
        failed += not rec["passed"]
        emit(rec)
    emit({"done": True, "total": total, "failed": failed})
    if failed:
        raise AssertionError("%d of %d tests failed" % (failed, total))


def __wand_report_answer(__g, __mode, __nonce):
    import json, sys
    kind, _, name = __mode.partition(":")
    if kind == "auto":
        if callable(__g.get("solution")):
            kind, name = "call", "solution"
        elif "answer" in __g:
            kind, name = "var", "answer"
    rec = {"done": True}
    if kind in ("call", "var") and name not in __g:
        raise NameError("the program defines no '%s' (the answer is read from %s)" % (name, __mode))
    if kind == "call":
        rec["answer"] = str(__g[name]())
    elif kind == "var":
        rec["answer"] = str(__g[name])
    sys.stdout.flush()
    sys.stdout.write("\n" + __nonce + json.dumps(rec) + "\n")
    sys.stdout.flush()
