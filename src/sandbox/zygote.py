"""wand's fork-server (zygote). It runs as pid 1 of a cell, started by the host.

Trusted code. It imports modules once, then forks one child per execution, so a run costs a
fork instead of an interpreter start. Each child begins from this same clean state and
isolates itself before touching the request: its own pid namespace (killing the child kills
everything it started), the run cgroup, rlimits, no capabilities, no_new_privs, seccomp.

Protocol with the host on fd 3 (a stream socket): each message is a 4-byte little-endian
length and a JSON body; file descriptors ride along by SCM_RIGHTS on the first byte.
"""
import base64
import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import struct
import sys

CTL = socket.socket(fileno=3)
libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWPID = 0x20000000
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2
SETUP_FAILED = 127  # exit code of a child whose isolation failed; paired with a message

libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]


def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


# ---------------------------------------------------------------- messages

def recv():
    """Returns (message, fds); (None, []) when the host has gone."""
    data, fds, _, _ = socket.recv_fds(CTL, 4, 16)
    if not data:
        return None, fds
    while len(data) < 4:
        more = CTL.recv(4 - len(data))
        if not more:
            return None, fds
        data += more
    (n,) = struct.unpack("<I", data)
    body = bytearray()
    while len(body) < n:
        chunk = CTL.recv(min(n - len(body), 1 << 20))
        if not chunk:
            return None, fds
        body += chunk
    return json.loads(body), fds


def send(obj):
    data = json.dumps(obj).encode()
    CTL.sendall(struct.pack("<I", len(data)) + data)


# ---------------------------------------------------------------- set-up, once

cfg, _ = recv()
if cfg is None:
    os._exit(0)
CGROUP_FDS = cfg["cgroup_fds"]
MOUNTS = [(m["path"], m["options"].encode()) for m in cfg["tmpfs"]]
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

# What every run needs, imported here so children share it instead of importing it.
import atexit  # noqa: E402
import builtins  # noqa: E402
import linecache  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402

for name in ("math", "re", "collections", "itertools", "functools", "fractions", "decimal",
             "random", "string", "heapq", "bisect", "statistics", "typing", "datetime", "io"):
    __import__(name)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_bpf = bytes.fromhex(cfg["seccomp"])
_bpf_buf = ctypes.create_string_buffer(_bpf, len(_bpf))
SECCOMP_PROG = SockFprog(len(_bpf) // 8, ctypes.cast(_bpf_buf, ctypes.c_void_p))


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


CAP_HEADER = CapHeader(0x20080522, 0)
CAP_NONE = (CapData * 2)()
LAST_CAP = int(open("/proc/sys/kernel/cap_last_cap").read())
PIDNS = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
DEVNULL = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)


def fresh_tmpfs():
    """Replaces the writable mounts with empty ones: nothing of a run survives it."""
    for path, options in MOUNTS:
        libc.umount2(path.encode(), MNT_DETACH)
        check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options),
              f"mount tmpfs {path}")


# Objects alive now are never collected in children: the collector will not write to their
# pages, which keeps copy-on-write faults after fork low.
gc.collect()
gc.freeze()
send({"op": "ready", "python": sys.version.split()[0], "pid": os.getpid(),
      "preloaded": preloaded, "preload_errors": preload_errors})


# ---------------------------------------------------------------- the child side

def isolate(req, fds, setup_w):
    """Runs in the child after fork: after it returns, the process can do no harm."""
    for fd in CGROUP_FDS:
        os.write(fd, b"0")
    stdin, stdout, stderr = fds[:3]
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    lo = 3  # close everything but the session pipes and the set-up report
    for fd in sorted(set(fds[3:]) | {setup_w}):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)
    os.setsid()
    for name, value in req["rlimits"].items():
        res = getattr(resource, "RLIMIT_" + name.upper())
        resource.setrlimit(res, (value, value))
    os.chdir("/work")
    for cap in range(LAST_CAP + 1):
        check(libc.prctl(PR_CAPBSET_DROP, cap, None, 0, 0), "drop capability bounding set")
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, None, 0, 0), "clear ambient caps")
    check(libc.capset(ctypes.byref(CAP_HEADER), CAP_NONE), "capset")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0), "no_new_privs")
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(SECCOMP_PROG), 0, 0),
          "seccomp")
    os.environ.clear()
    os.environ.update(req["env"])


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
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "main.py":
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)


def finish_python(rc):
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(rc)


def exec_python(source, g):
    """exec() as the interpreter would run a script; returns the exit code."""
    try:
        exec(compile(source, "main.py", "exec"), g)
        return 0
    except SystemExit as e:
        return exit_code_of(e)
    except BaseException as e:
        print_user_traceback(e)
        return 1


def prime_source(source):
    linecache.cache["main.py"] = (len(source), None, source.splitlines(True), "main.py")


def run_python(req):
    source = req["code"]
    prime_source(source)
    sys.argv = ["main.py"] + req.get("args", [])
    sys.path.insert(0, "/work")
    g = {"__name__": "__main__", "__builtins__": builtins, "__file__": "/work/main.py"}
    finish_python(exec_python(source, g))


def run_session(req, cmd_r, res_w):
    """A persistent interpreter: blocks arrive on cmd_r, share one namespace, and each
    ends with a result line on res_w once its output is flushed."""
    sys.argv = ["main.py"]
    sys.path.insert(0, "/work")
    g = {"__name__": "__main__", "__builtins__": builtins}
    cmds = os.fdopen(cmd_r, "rb")
    while True:
        line = cmds.readline()
        if not line:
            finish_python(0)
        block = json.loads(line)
        source = block["code"]
        prime_source(source)
        rc = exec_python(source, g)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os.write(res_w, json.dumps({"exit_code": rc}).encode() + b"\n")
        if rc != 0 and block.get("exit_on_error"):
            finish_python(rc)


def child(req, fds, setup_w):
    try:
        isolate(req, fds, setup_w)
    except BaseException as e:
        try:
            os.write(setup_w, f"{type(e).__name__}: {e}".encode())
        finally:
            os._exit(SETUP_FAILED)
    if req.get("session"):
        os.close(setup_w)
        run_session(req, fds[3], fds[4])
    elif req.get("argv"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        try:
            os.execve(req["argv"][0], req["argv"], req["env"])  # setup_w is close-on-exec
        except OSError as e:
            os.write(setup_w, f"cannot execute {req['argv'][0]}: {e.strerror}".encode())
            os._exit(SETUP_FAILED)
    else:
        os.close(setup_w)
        run_python(req)


# ---------------------------------------------------------------- the zygote side

def write_files(files):
    for name, b64 in files.items():
        path = os.path.join("/work", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(b64))
        if name.endswith(".sh") or name == "main":
            os.chmod(path, 0o755)


def open_beneath(name):
    """Opens /work/name refusing symlinks anywhere on the way: no trick reads out of /work."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OSError(f"not a path inside the working directory: {name!r}")
    d = os.open("/work", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for p in parts[:-1]:
            nd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=d)
            os.close(d)
            d = nd
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=d)
    finally:
        os.close(d)


def collect(names, cap):
    out = {}
    for name in names:
        try:
            fd = open_beneath(name)
        except OSError as e:
            out[name] = {"error": e.strerror or str(e)}
            continue
        try:
            st = os.fstat(fd)
            if not (st.st_mode & 0o170000 == 0o100000):
                out[name] = {"error": "not a regular file"}
                continue
            data = os.read(fd, cap + 1)
            entry = {"base64": base64.b64encode(data[:cap]).decode()}
            if len(data) > cap:
                entry["truncated"] = True
            out[name] = entry
        finally:
            os.close(fd)
    return out


def serve(req, fds):
    try:
        write_files(req.get("files", {}))
    except OSError as e:
        for fd in fds:
            os.close(fd)
        send({"op": "done", "setup_error": f"cannot write input files: {e}"})
        return
    setup_r, setup_w = os.pipe2(os.O_CLOEXEC)
    # The child becomes pid 1 of a new pid namespace; setns first resets any previous one.
    check(libc.setns(PIDNS, CLONE_NEWPID), "setns")
    check(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    pid = os.fork()
    if pid == 0:
        child(req, fds, setup_w)
    os.close(setup_w)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    host_gone = False
    while True:
        ready, _, _ = select.select([CTL, pidfd], [], [])
        if pidfd in ready:
            break
        msg, extra = recv()
        for fd in extra:
            os.close(fd)
        if msg is None:
            host_gone = True
        if msg is None or msg.get("op") == "kill":
            os.kill(pid, signal.SIGKILL)
    os.close(pidfd)
    _, status, ru = os.wait4(pid, 0)
    setup_error = os.read(setup_r, 4096).decode(errors="replace")
    os.close(setup_r)
    if host_gone:
        os._exit(0)
    reply = {"op": "done", "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}
    if os.WIFSIGNALED(status):
        reply["signal"] = os.WTERMSIG(status)
    else:
        reply["exit_code"] = os.WEXITSTATUS(status)
    if setup_error:
        reply["setup_error"] = setup_error
    if req.get("collect"):
        reply["files"] = collect(req["collect"], req.get("collect_cap", 1 << 20))
    send(reply)
    if not req.get("keep_work"):
        fresh_tmpfs()


def main():
    while True:
        req, fds = recv()
        if req is None:
            os._exit(0)
        op = req.get("op")
        if op == "run":
            serve(req, fds)
            continue
        for fd in fds:
            os.close(fd)
        if op == "reset":
            fresh_tmpfs()


main()
