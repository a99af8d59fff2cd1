"""wand from Python: run untrusted code in wand's sandbox, judge completions, score rewards.

    import wand
    sb = wand.Sandbox()
    r = sb.run("print(6*7)")            # r.status == "ok", r.stdout == "42\\n"
    rs = sb.run_batch([{"code": "print(1)"}, {"code": "int('x')"}])
    v = wand.judge({"task_id": "t", "text": "", "code": "", "test_list": ["assert f() == 1"]},
                   "def f(): return 1")  # v.passed

Results carry the fields of `wand exec --json` (status, exit_code, stdout, stderr, wall_time,
...); verdicts those of `wand eval --out`. Calls release the GIL while code runs, and one
Sandbox may be used from many threads at once: its cells are shared. Bad input raises
ValueError naming the field.
"""
import base64
import json
import math
import os
import threading

from . import _wand

__all__ = ["Sandbox", "Result", "default_sandbox", "judge", "evaluate"]


class Result(dict):
    """A dict whose keys are also attributes: an execution result or a verdict."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _request(code, language="python", stdin=None, timeout=None, memory_mb=None, files=None, args=None,
             collect=None, env=None, **limits):
    """One request in the JSON-lines schema (README); bytes in files travel as base64."""
    for name, value in (("code", code), ("language", language), ("stdin", stdin)):
        if value is not None and not isinstance(value, str):
            hint = " (decode bytes first: value.decode())" if isinstance(value, (bytes, bytearray)) else ""
            raise ValueError(f"field '{name}': expected a string, got {type(value).__name__}{hint}")
    if files is not None and not isinstance(files, dict):
        raise ValueError(f"field 'files': expected a dict of name -> str or bytes, got {type(files).__name__}")
    req = {"code": code, "language": language}
    if stdin is not None:
        req["stdin"] = stdin
    if timeout is not None:
        req["timeout"] = timeout
    if memory_mb is not None:
        req["memory_mb"] = memory_mb
    if files:
        req["files"] = {name: ({"base64": base64.b64encode(data).decode()} if isinstance(data, (bytes, bytearray))
                               else data) for name, data in files.items()}
    for key, value in (("args", args), ("collect", collect), ("env", env)):
        if value is not None:
            req[key] = value
    req.update(limits)  # max_processes, max_output_bytes, max_file_mb, max_open_files, limit_by
    return _finite(req)


def _finite(fields):
    # JSON has no NaN or infinity: name the field here rather than fail on the whole text.
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"field '{key}': must be a finite number, got {value}")
    return fields


class Sandbox:
    """A pool of sandbox cells (cells=0: one per core). `preload` modules are imported once per
    cell's fork-server, so runs that import them pay nothing for it."""

    def __init__(self, cells=0, preload=("numpy", "sympy"), warm_stdlib=True):
        limit = max(8, 4 * (os.cpu_count() or 1))  # as the CLI's --cells: 4 per core, at least 8
        if isinstance(cells, bool) or not isinstance(cells, int) or cells < 0 or cells > limit:
            raise ValueError(f"cells: must be a whole number from 0 (one per core) to {limit} "
                             f"(4 per core on this machine, at least 8), got {cells!r}")
        if isinstance(preload, str):
            raise ValueError("preload: must be a list of module names, not one string")
        self._sb = _wand.Sandbox(int(cells), list(preload), bool(warm_stdlib))

    @property
    def cells(self):
        return self._sb.cells

    def run(self, code, language="python", stdin=None, timeout=None, memory_mb=None, files=None, **kw):
        """Runs one program; returns a Result (status, exit_code, stdout, stderr, wall_time, ...)."""
        return self.run_batch([_request(code, language, stdin, timeout, memory_mb, files, **kw)])[0]

    def run_batch(self, requests):
        """Runs requests (dicts in the JSON-lines schema, or code strings) in parallel over the
        cells; Results in request order."""
        if isinstance(requests, (str, bytes, dict)):
            raise TypeError("requests: expected a list of requests (dicts or code strings), not one "
                            f"{type(requests).__name__}; run() runs one program")
        texts = []
        for i, r in enumerate(requests):
            if not isinstance(r, (str, dict)):
                raise ValueError(f"request {i}: expected a dict in the JSON-lines schema or a code string")
            if isinstance(r, dict) and "code" not in r:
                raise ValueError(f"request {i}: field 'code' is required")
            texts.append(json.dumps({"code": r} if isinstance(r, str) else _request(**r)))
        return [Result(json.loads(t)) for t in self._sb.run_batch(texts)]


_default = None
_default_lock = threading.Lock()


def default_sandbox():
    """The Sandbox judge(), evaluate() and wand.rewards use when given none (made on first use,
    one cell per core, with the modules benchmark programs import preloaded)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox(preload=("typing", "ast", "json", "math", "re", "collections", "itertools",
                                        "functools", "string", "heapq", "hashlib"))
        return _default


def _options(timeout=10.0, memory_mb=512, answer="auto", partial_credit=False, strict=False, extract_code=False,
             mapping="binary", ks=(1, 10, 100), float_tol=None, max_output=1 << 20):
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1_000_000:
            raise ValueError(f"ks: each k must be a whole number from 1 to 1000000, got {k!r}")
    return json.dumps(_finite({"timeout": timeout, "memory_mb": memory_mb, "answer": answer,
                       "partial_credit": partial_credit, "strict": strict, "extract_code": extract_code,
                       "mapping": mapping, "ks": list(ks), "float_tol": float_tol, "max_output": max_output}))


def judge(task, completion, sandbox=None, **options):
    """Judges one completion for a task given as a dataset record (HumanEval, MBPP, stdin/stdout,
    GSM8K or PAL fields, as `wand eval` reads them). Returns the verdict (passed, error,
    feedback, reward, tests, answer, ...). Options, as `wand eval`'s: timeout, memory_mb,
    max_output (bytes per stream), answer, float_tol, partial_credit, strict, extract_code; one the
    task never reads (strict on a word problem, answer on a code task, ...) is a ValueError."""
    if not isinstance(completion, str):
        raise ValueError(f"completion: expected a string, got {type(completion).__name__}")
    sb = (sandbox or default_sandbox())._sb
    return Result(json.loads(_wand.judge(sb, json.dumps(task), completion, _options(**options))))


def evaluate(dataset, samples, sandbox=None, **options):
    """`wand eval` as a call: dataset is a JSON-lines file path, samples an iterable of
    {"task_id", "completion"}. Returns {"summary": ..., "samples": [...]} as `wand eval --json`
    and `--out` write them. Options and their refusals as judge's, plus ks (the pass@k values)."""
    sb = (sandbox or default_sandbox())._sb
    out = json.loads(sb.evaluate(str(dataset), json.dumps(list(samples)), _options(**options)))
    return Result(summary=Result(out["summary"]), samples=[Result(s) for s in out["samples"]])


from . import rewards  # noqa: E402  (needs the names above)
