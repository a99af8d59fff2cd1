# --- wand's test harness (trusted; see src/feedback/tasks.cpp and the threat model in README.md) ---
# What to judge arrives on fd 3, a socket only the host and this process hold: a key and the
# tests, never in the program's text, code objects, argv or environment. Every record goes
# back on fd 3 as HMAC-SHA256(key, "SEQ\n" + JSON) + " " + JSON: the host accepts a verdict only
# from an unbroken, correctly signed sequence (the plan, one record per test, then "done").
#
# Default mode: __wand_arm runs first in the program, before the sample's code, so the channel
# is already drained when the sample could read it; the key lives only in closures here (the
# sample's globals reach no more than the end-of-program trigger). The tests run at exit, once
# the sample's module-level code has finished (the trigger line at its end).
# Strict mode (__wand_strict): this process never runs the sample. It forks a child that drops
# the channel, loads the sample and serves calls (name + arguments in, result out, as tagged
# JSON; other objects stay there, as handles); the tests run here against proxies.


def __wand_harness():
    import ast, builtins, json, os
    from _hashlib import hmac_digest  # C: a sample cannot patch it to capture the key
    write, read, dumps, loads, compile_, exec_ = os.write, os.read, json.dumps, json.loads, compile, exec
    AssertionError_, BaseException_ = AssertionError, BaseException
    CHAN = 3

    def receive(fd):
        chunks = []
        while True:
            b = read(fd, 1 << 16)
            if not b:
                return loads(b"".join(chunks))
            chunks.append(b)

    def emitter(key):
        seq = [0]

        def emit(rec):
            body = dumps(rec)
            mac = hmac_digest(key, b"%d\n" % seq[0] + body.encode(), "sha256").hex()
            seq[0] += 1
            data = (mac + " " + body + "\n").encode()
            while data:
                data = data[write(CHAN, data):]
        return emit

    def plan_tests(cfg):
        """The test statements: (set-up or assertion, source) in order, and how many assert."""
        src, fn = cfg["tests"], cfg.get("fn")
        tree = ast.parse(src)
        lines = src.splitlines()
        module, body, param = [], tree.body, None
        if fn is not None:
            node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == fn), None)
            if node is None:
                raise ValueError("the tests define no function '%s'" % fn)
            module, body = tree.body, node.body
            param = node.args.args[0].arg if node.args.args else None
        steps = []
        for stmt in body:
            code = compile_(ast.Module([stmt], []), "<test>", "exec")
            is_test = any(isinstance(n, ast.Assert) for n in ast.walk(stmt))
            src_text = "\n".join(lines[stmt.lineno - 1:stmt.end_lineno]).strip() if is_test else ""
            steps.append((stmt, code, is_test, src_text))
        setup = compile_(ast.Module(module, []), "<test>", "exec")
        return setup, param, steps, sum(s[2] for s in steps)

    class SampleGone(Exception):
        """Strict mode: the sample's process ended (os._exit) or broke its pipe during a test."""

    def run_tests(emit, plan, ns, candidate):
        try:
            run_steps(emit, plan, ns, candidate)
        except SampleGone:
            raise
        except BaseException_ as e:  # in the tests' own set-up: the verdict is that error
            emit({"done": True, "error": {"type": type(e).__name__, "message": str(e)[:300]}})

    def run_steps(emit, plan, ns, candidate):
        setup, param, steps, _ = plan
        exec_(setup, ns)  # the test module's own definitions (METADATA, imports, check)
        if param is not None:  # check(candidate)'s body: its own locals, as in a call
            ns = dict(ns)
            ns[param] = candidate

        def value(node):
            try:
                return repr(eval(compile_(ast.Expression(node), "<test>", "eval"), ns))[:200]
            except BaseException_:
                return None

        total = failed = 0
        for stmt, code, is_test, src in steps:
            if not is_test:
                exec_(code, ns)  # set-up between the assertions
                continue
            rec = {"test": total, "source": src[:300]}
            total += 1
            try:
                exec_(code, ns)
                rec["passed"] = True
            except SampleGone:
                raise  # no record and no "done": judged as default mode judges a process that ends
            except AssertionError_:
                rec["passed"] = False
                t = stmt.test if isinstance(stmt, ast.Assert) else None
                if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
                    rec["got"], rec["expected"] = value(t.left), value(t.comparators[0])
            except BaseException_ as e:  # SystemExit too: a test that ends the program fails
                rec["passed"] = False
                rec["error"] = (type(e).__name__ + ": " + str(e))[:300]
            failed += not rec["passed"]
            emit(rec)
        emit({"done": True, "total": total, "failed": failed})

    def no_entry_point(emit, name):
        emit({"done": True, "error": {"type": "NameError", "message":
              "the program defines no function '%s' (the dataset's entry_point)" % name}})

    def answer_of(g, mode):
        kind, _, name = mode.partition(":")
        if kind == "auto":
            if callable(g.get("solution")):
                kind, name = "call", "solution"
            elif "answer" in g:
                kind, name = "var", "answer"
        if kind in ("call", "var") and name not in g:
            raise NameError("the program defines no '%s' (the answer is read from %s)" % (name, mode))
        if kind == "call":
            return str(g[name]())
        if kind == "var":
            return str(g[name])
        return None

    def arm(g):
        """Default mode, before the sample's code: reads the job, returns the end-of-program trigger."""
        import atexit
        cfg = receive(CHAN)
        emit = emitter(cfg.pop("key").encode())
        plan = plan_tests(cfg) if "tests" in cfg else None
        emit({"plan": plan[3] if plan else 0})
        if cfg.get("module"):  # run as a module, as the dataset's harness does: exec(program, {})
            g.pop("__name__", None)
        state = {"ended": False, "judged": False}

        def judge():
            if not state["ended"] or state["judged"]:
                return  # the program ended before its last line: no verdict
            state["judged"] = True
            if plan is None:
                try:
                    emit({"done": True, "total": 0, "answer": answer_of(g, cfg["answer"])})
                except BaseException_ as e:
                    # The line: the innermost frame in this file (the program follows the
                    # harness in it), so an error inside solution() points into the program.
                    import sys, traceback
                    here = sys._getframe().f_code.co_filename
                    line = ([0] + [fs.lineno for fs in traceback.extract_tb(e.__traceback__) if fs.filename == here])[-1]
                    emit({"done": True, "error": {"type": type(e).__name__, "message": str(e)[:300], "line": line}})
                return
            arg = cfg.get("arg")
            if arg is not None and not callable(g.get(arg)):
                return no_entry_point(emit, arg)
            run_tests(emit, plan, g, g.get(arg))

        def ended():
            state["ended"] = True
        atexit.register(judge)
        return ended

    # ------------------------------------------------------------ strict mode

    def enc(v, ref=None):
        """Plain data as tagged JSON (the trusted side never unpickles or evals); anything else
        becomes {"$ref": n} through `ref`, a handle on an object the sample's process keeps."""
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, int) or (hasattr(type(v), "__index__") and not isinstance(v, float)):
            return int(v.__index__())
        if isinstance(v, float) or type(v).__module__ == "numpy" and hasattr(v, "__float__"):
            f = float(v)
            return f if f == f and f not in (float("inf"), float("-inf")) else {"$float": repr(f)}
        if isinstance(v, list):
            return [enc(x, ref) for x in v]
        for t, tag in ((tuple, "$tuple"), (set, "$set"), (frozenset, "$frozenset")):
            if isinstance(v, t):
                return {tag: [enc(x, ref) for x in v]}
        if isinstance(v, dict):
            return {"$dict": [[enc(k, ref), enc(x, ref)] for k, x in v.items()]}
        if isinstance(v, (bytes, bytearray)):
            return {"$bytes": bytes(v).hex()}
        if isinstance(v, complex):
            return {"$complex": [v.real, v.imag]}
        if isinstance(v, type) and getattr(builtins, v.__name__, None) is v:
            return {"$builtin": v.__name__}  # int, str, ... as arguments (MBPP 533)
        if ref is not None:
            return {"$ref": ref(v)}
        raise TypeError("strict mode passes only plain values, not %s" % type(v).__name__)

    def dec(v, ref):
        if isinstance(v, list):
            return [dec(x, ref) for x in v]
        if not isinstance(v, dict):
            return v
        (tag, x), = v.items()
        if tag == "$float":
            return float(x)
        if tag == "$tuple":
            return tuple(dec(i, ref) for i in x)
        if tag == "$set":
            return set(dec(i, ref) for i in x)
        if tag == "$frozenset":
            return frozenset(dec(i, ref) for i in x)
        if tag == "$dict":
            return {dec(k, ref): dec(i, ref) for k, i in x}
        if tag == "$bytes":
            return bytes.fromhex(x)
        if tag == "$complex":
            return complex(x[0], x[1])
        if tag == "$builtin" and isinstance(getattr(builtins, x, None), type):
            return getattr(builtins, x)
        if tag == "$ref" and type(x) is int:
            return ref(x)
        raise ValueError("unknown tag %r" % tag)

    def serve(calls, results):
        """The child: loads the sample and answers calls until the trusted side hangs up."""
        import linecache, sys, traceback
        rf = os.fdopen(calls, "rb")

        def reply(obj):
            data = (dumps(obj) + "\n").encode()
            while data:
                data = data[write(results, data):]
        job = loads(rf.readline())
        program = job["program"]
        name = "solution.py"  # not main.py, which is this harness: tracebacks tell them apart
        linecache.cache[name] = (len(program), None, program.splitlines(True), name)
        g = {"__builtins__": builtins}  # a module, as exec(program, {}) runs it
        try:
            exec_(compile_(program, name, "exec"), g)
        except BaseException_ as e:
            tb = e.__traceback__
            line = e.lineno if isinstance(e, SyntaxError) and e.filename == name else 0
            for fs in traceback.extract_tb(tb):
                if fs.filename == name:
                    line = fs.lineno
            traceback.print_exception(type(e), e, tb)
            msg = e.msg if isinstance(e, SyntaxError) else str(e)  # str() would add the file and line
            reply({"error": {"type": type(e).__name__, "message": msg[:300], "line": line}})
            os._exit(0)
        sys.stdout.flush()
        reply({"functions": [k for k, v in g.items() if callable(v)],
               "modules": {k: v.__name__ for k, v in g.items() if type(v) is type(os)}})
        kept = []  # objects the trusted side holds handles on (its tests build the sample's classes)

        def keep(obj):
            kept.append(obj)
            return len(kept) - 1
        for line in rf:
            try:
                call = loads(line)
                target = kept[call["ref"]] if "ref" in call else g[call["fn"]]
                op = call.get("op", "call")
                if op == "getattr":
                    result = getattr(target, call["name"])
                elif op == "setattr":
                    result = setattr(target, call["name"], dec(call["value"], kept.__getitem__))
                else:
                    result = target(*dec(call["args"], kept.__getitem__), **dec(call["kwargs"], kept.__getitem__))
                out = {"value": enc(result, keep)}
            except BaseException_ as e:
                out = {"raise": [type(e).__name__, str(e)[:300]]}
            try:
                sys.stdout.flush()
            except BaseException_:
                pass
            reply(out)
        os._exit(0)

    def remote(send, recv):
        """Calls into the sample's process; its replies are data, decoded here, never run."""
        class Remote:
            """A handle on an object in the sample's process. Attributes and calls go there;
            equality and hashing stay identity, so a sample's __eq__ never judges a test."""
            __slots__ = ("_n",)

            def __init__(self, n):
                object.__setattr__(self, "_n", n)

            def __getattr__(self, name):
                return rpc({"ref": self._n, "op": "getattr", "name": name})

            def __setattr__(self, name, value):
                rpc({"ref": self._n, "op": "setattr", "name": name, "value": enc(value, handle)})

            def __call__(self, *args, **kwargs):
                return rpc({"ref": self._n, "args": enc(list(args), handle), "kwargs": enc(dict(kwargs), handle)})

            def __repr__(self):
                return "<object of the sample's>"

        def handle(v):
            if type(v) is not Remote:
                raise TypeError("strict mode passes only plain values, not %s" % type(v).__name__)
            return object.__getattribute__(v, "_n")

        def rpc(msg):
            send(msg)
            line = recv()
            if not line:
                raise SampleGone("the sample's process ended")
            try:
                rep = loads(line)
                if "raise" in rep:
                    kind, msg = rep["raise"]
                    cls = getattr(builtins, kind, None)
                    if not (isinstance(cls, type) and issubclass(cls, Exception)):
                        cls = Exception
                        msg = kind + ": " + msg
                    exc = cls(msg)
                else:
                    return dec(rep["value"], Remote)
            except (ValueError, TypeError, KeyError, RecursionError) as e:
                raise ValueError("the sample's process sent a malformed reply: %s" % e) from None
            raise exc

        def proxy(name):
            def call(*args, **kwargs):
                return rpc({"fn": name, "args": enc(list(args), handle), "kwargs": enc(dict(kwargs), handle)})
            call.__name__ = name
            return call
        return proxy

    def end_as(child):
        """The sample's process ended (or closed its pipes): end this one with its exit status, so
        that strict mode's verdict is the one default mode gives when the program exits there."""
        import signal, time
        for _ in range(200):  # its pipes close just before it becomes a zombie
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                os._exit(code if code >= 0 else 128 - code)
            time.sleep(0.001)
        os.kill(child, signal.SIGKILL)  # alive but not serving (closed or garbled its pipes)
        os._exit(0)  # no verdict: "exited before its tests ran/finished"

    def strict():
        import ctypes, importlib, sys
        # Imports here must never find a module the sample wrote into its working directory.
        sys.path[:] = [p for p in sys.path if p not in ("", ".", "/work")]
        # Not dumpable: the child (same user, no capabilities) can neither ptrace this process
        # nor read its /proc/PID/mem or fds; seccomp also refuses ptrace and process_vm_readv.
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
        calls_r, calls_w = os.pipe()
        results_r, results_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(CHAN)
            os.close(calls_w)
            os.close(results_r)
            serve(calls_r, results_w)
        os.close(calls_r)
        os.close(results_w)
        cfg = receive(CHAN)  # only now: the child never held the key or the tests
        emit = emitter(cfg.pop("key").encode())
        plan = plan_tests(cfg)
        emit({"plan": plan[3]})
        rf = os.fdopen(results_r, "rb")

        def send(obj):
            data = (dumps(obj) + "\n").encode()
            try:
                while data:
                    data = data[write(calls_w, data):]
            except OSError:
                raise SampleGone("the sample's process ended") from None
        send({"program": cfg["program"]})
        try:
            loaded = loads(rf.readline() or b"null")
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict) or not isinstance(loaded.get("functions", loaded.get("error")), (list, dict)):
            end_as(child)  # it ended (or garbled its pipe) while loading: no verdict, as in default mode
        if "error" in loaded:  # the sample's process wrote this: pass on plain fields only
            e = loaded["error"] if isinstance(loaded["error"], dict) else {}
            return emit({"done": True, "error": {k: e[k] for k, t in (("type", str), ("message", str), ("line", int))
                                                 if isinstance(e.get(k), t)}})
        ns = {"__builtins__": builtins}
        # The dataset's own helpers (HumanEval's prompt: a def with only a docstring is valid
        # Python; a bare signature gets a body so that its helpers still load).
        trusted = cfg.get("trusted", "")
        for text in (trusted, trusted + "    ...\n", ""):
            try:
                code = compile_(text, "<dataset>", "exec")
                break
            except SyntaxError:
                pass
        exec_(code, ns)
        arg = cfg.get("arg")
        if arg is not None and arg not in loaded["functions"]:
            return no_entry_point(emit, arg)
        proxy = remote(send, rf.readline)
        for name in loaded["functions"]:
            if isinstance(name, str) and (name == arg or name not in ns):
                ns[name] = proxy(name)
        # The standard-library modules the program imported, which tests may use (MBPP 596: sys).
        for alias, module in dict(loaded.get("modules") or {}).items():
            if isinstance(module, str) and alias not in ns and module.partition(".")[0] in sys.stdlib_module_names:
                try:
                    ns[alias] = importlib.import_module(module)
                except ImportError:
                    pass
        try:
            run_tests(emit, plan, ns, ns.get(arg))
        except SampleGone:
            end_as(child)

    return arm, strict


__wand_arm, __wand_strict = __wand_harness()
del __wand_harness
