"""wand's fork-server (zygote). It runs as pid 1 of a cell, started by the host.

Trusted code. It imports modules once, then hands control to the C loop (cellserver.c, passed
in as a memfd) which forks one child per execution. The parent never returns to Python, so it
dirties almost no page that children share; a child returns here already isolated, and runs
the request as `python3 main.py` would. Every child starts from the same clean state.

Start-up protocol on fd 3: the host sends one JSON config (4-byte little-endian length, then
the body); we answer "ready" the same way. After that the channel belongs to the C loop.
"""
import ctypes
import gc
import json
import os
import struct
import sys

CTL = 3


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = os.read(CTL, n - len(data))
        if not chunk:
            os._exit(0)
        data += chunk
    return data


def send(obj):
    body = json.dumps(obj).encode()
    os.write(CTL, struct.pack("<I", len(body)) + body)


cfg = json.loads(read_exact(struct.unpack("<I", read_exact(4))[0]))
# numpy/OpenBLAS would otherwise start threads at import, and a fork keeps none of them.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

preloaded, preload_errors = [], {}
for name in cfg.get("preload", []):
    try:
        __import__(name)
        preloaded.append(name)
    except Exception as e:  # a missing package is reported, not fatal
        preload_errors[name] = f"{type(e).__name__}: {e}"

import atexit  # noqa: E402
import builtins  # noqa: E402
import linecache  # noqa: E402

# What runs commonly need, imported once so children share it instead of importing it. A cell
# for a single run skips this: a module imported before the one fork costs what it would cost
# the run itself, or nothing if the run does not use it.
if cfg.get("warm", True):
    for name in ("math", "re", "collections", "itertools", "functools", "fractions", "decimal",
                 "random", "string", "heapq", "bisect", "statistics", "typing", "datetime", "io",
                 "threading", "traceback"):
        __import__(name)

lib = ctypes.PyDLL(f"/proc/self/fd/{cfg['lib_fd']}")
os.close(cfg["lib_fd"])
lib.wand_serve.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                           ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int)]
BPF = bytes.fromhex(cfg["seccomp"])
SPEC = [s.encode() for m in cfg["tmpfs"] for s in (m["path"], m["options"])]
SPEC_ARRAY = (ctypes.c_char_p * len(SPEC))(*SPEC)
PAYLOAD = ctypes.c_void_p()
PAYLOAD_LEN = ctypes.c_int()
after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child


# ---------------------------------------------------------------- the child side

def exit_code_of(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def print_user_traceback(e):
    """The traceback as `python3 main.py` prints it: our own frames left out."""
    import traceback  # here: a run that raises nothing never pays for it
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "main.py":
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)


def flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def finish(rc):
    try:
        threading = sys.modules.get("threading")  # no threads were started if it was never imported
        if threading:
            threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    flush()
    os._exit(rc)


def exec_python(source, g):
    """exec() as the interpreter would run a script; returns the exit code."""
    linecache.cache["main.py"] = (len(source), None, source.splitlines(True), "main.py")
    try:
        exec(compile(source, "main.py", "exec"), g)
        return 0
    except SystemExit as e:
        return exit_code_of(e)
    except BaseException as e:
        print_user_traceback(e)
        return 1


def run(req):
    sys.argv = ["main.py"] + req.get("args", [])
    sys.path.insert(0, "/work")
    if "env" in req:  # absent when it is the default, which this process already has
        os.environ.clear()
        os.environ.update(req["env"])
    g = {"__name__": "__main__", "__builtins__": builtins, "__file__": "/work/main.py"}
    if not req.get("session"):
        finish(exec_python(req["code"], g))
    # A session: blocks arrive on fd 3 as JSON lines and share one namespace; each ends with a
    # result line on fd 4 once its output is flushed.
    blocks = os.fdopen(3, "rb")
    while True:
        line = blocks.readline()
        if not line:
            finish(0)
        rc = exec_python(json.loads(line)["code"], g)
        flush()
        os.write(4, json.dumps({"exit_code": rc}).encode() + b"\n")


# Objects alive now are never collected in children: the collector will not write to their
# pages, which keeps copy-on-write faults after fork low.
gc.collect()
gc.freeze()
send({"op": "ready", "python": sys.version.split()[0], "preloaded": preloaded,
      "preload_errors": preload_errors})
if lib.wand_serve(CTL, BPF, len(BPF), SPEC_ARRAY, len(SPEC) // 2,
                  ctypes.byref(PAYLOAD), ctypes.byref(PAYLOAD_LEN)) != 0:
    os._exit(0)
after_fork_child()
run(json.loads(ctypes.string_at(PAYLOAD.value, PAYLOAD_LEN.value)))
