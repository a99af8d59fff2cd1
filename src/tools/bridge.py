"""The program's side of wand's tool bridge (src/tools): host tools as Python functions.

The host hands the program a Unix socket (its number in WAND_SERVICE_FD). A call is one frame
out, {"id", "tool", "args"}, and one frame back, {"id", "result"} or {"id", "error"}; a frame
is a 4-byte little-endian length and that much JSON. Ids let several threads call at once:
whichever caller is waiting reads the next answer and hands it to its owner. An answer with a
null id is about the channel itself (a frame the host refused); "fatal" ones close it.
"""
import json as _json
import os as _os
import socket as _socket
import struct as _struct
import threading as _threading


class ToolError(Exception):
    """A tool call failed; the message names the tool and the problem."""


ToolError.__module__ = "builtins"  # tracebacks say "ToolError: ...", as for a built-in exception


_sock = None
_rfile = None
_send_lock = _threading.Lock()
_cond = _threading.Condition()
_replies = {}
_reading = False
_broken = None
_next_id = 0
_max_frame = 1 << 20  # the host's cap on a request frame (Budget::max_frame_bytes), set by install()


def _connect():
    global _sock, _rfile
    fd = _os.environ.get("WAND_SERVICE_FD")
    if fd is None:
        raise ToolError("no tool channel: this program was run without tools")
    _sock = _socket.socket(fileno=int(fd))
    _rfile = _sock.makefile("rb")


def _read_frame():
    head = _rfile.read(4)
    if len(head) < 4:
        return None
    (n,) = _struct.unpack("<I", head)
    body = _rfile.read(n)
    if len(body) < n:
        return None
    return _json.loads(body)


def call(name, args):
    """Calls the host tool `name` with the dict `args`; returns its result or raises ToolError."""
    global _next_id, _reading, _broken
    with _send_lock:
        if _broken:
            raise ToolError(_broken)
        if _sock is None:
            _connect()
        _next_id += 1
        cid = _next_id
        try:
            data = _json.dumps({"id": cid, "tool": name, "args": args}, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise ToolError(f"tool '{name}': the arguments are not JSON: {e}") from None
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate, as os.fsdecode gives for undecodable bytes
            raise ToolError(f"tool '{name}': the arguments are not valid Unicode: {e.reason} "
                            f"({e.object[e.start:e.end]!a})") from None
        if len(data) > _max_frame:  # the host would close the channel on it
            raise ToolError(f"tool '{name}': the call is {len(data)} bytes, over the tool channel's cap of "
                            f"{_max_frame} bytes")
        try:
            _sock.sendall(_struct.pack("<I", len(data)) + data)
        except OSError as e:
            _broken = f"the tool channel is closed: {e}"
            raise ToolError(_broken) from None
    with _cond:
        while cid not in _replies:
            if _broken:
                raise ToolError(_broken)
            if _reading:
                _cond.wait()
                continue
            _reading = True
            _cond.release()
            try:
                msg = _read_frame()
            except (OSError, ValueError) as e:
                msg = {"id": None, "error": f"the tool channel is broken: {e}", "fatal": True}
            finally:
                _cond.acquire()
                _reading = False
            if msg is None:
                _broken = "the tool channel is closed (the host stopped answering)"
            elif not isinstance(msg, dict) or msg.get("id") is None:
                if isinstance(msg, dict) and msg.get("fatal"):
                    _broken = msg.get("error", "the tool channel is closed")
            else:
                _replies[msg["id"]] = msg
            _cond.notify_all()
        msg = _replies.pop(cid)
    if "error" in msg:
        raise ToolError(msg["error"])
    return msg.get("result")


def _function(spec):
    name, params = spec["name"], spec["params"]
    leaf = name.rsplit(".", 1)[-1]

    def tool(*args, **kwargs):
        if len(args) > len(params):
            raise TypeError(f"{name}() takes at most {len(params)} positional arguments ({len(args)} given)")
        a = dict(zip(params, args))
        for k, v in kwargs.items():
            if k in a:
                raise TypeError(f"{name}() got multiple values for argument '{k}'")
            a[k] = v
        return call(name, {k: v for k, v in a.items() if v is not None or k in spec["required"]})

    tool.__name__ = leaf
    tool.__qualname__ = name
    tool.__doc__ = spec["doc"]
    return tool


class _Namespace:
    def __init__(self, name):
        self.__name__ = name

    def __getattr__(self, name):
        raise AttributeError(f"tool '{self.__name__}.{name}' is not granted to this run")

    def __repr__(self):
        return f"<tools {self.__name__}: {', '.join(k for k in vars(self) if not k.startswith('_'))}>"


def install(specs, namespace, max_frame):
    """Defines every tool of `specs` (a JSON list) in `namespace` (a dict, the program's globals);
    `max_frame` is the host's cap on a call's frame, in bytes."""
    global _max_frame
    _max_frame = max_frame
    namespace["ToolError"] = ToolError
    for spec in _json.loads(specs):
        parts = spec["name"].split(".")
        if len(parts) == 1:
            namespace[parts[0]] = _function(spec)
            continue
        obj = namespace.get(parts[0])
        if not isinstance(obj, _Namespace):
            obj = namespace[parts[0]] = _Namespace(parts[0])
        for i, part in enumerate(parts[1:-1], 1):
            sub = getattr(obj, part, None)
            if not isinstance(sub, _Namespace):
                sub = _Namespace(".".join(parts[: i + 1]))
                setattr(obj, part, sub)
            obj = sub
        setattr(obj, parts[-1], _function(spec))
