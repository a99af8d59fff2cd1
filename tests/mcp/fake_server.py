"""A deliberately misbehaving MCP server over stdio, for the client's failure tests.

Speaks the 2025-11-25 handshake (and answers server/discover with method-not-found, as legacy
servers do). Tools: `echo` (returns its text; with `pid: true`, the server's pid as structured content), `crash` (exits mid-call), `hang` (never answers),
`slow` (answers after `seconds`), `fail` (an isError result), `log` (a log notification, then
text). tools/list pages two tools at a time; with --loop-cursor the cursor never ends; with
--noisy, `hang` first prints a line that is not JSON to stdout (as a server that logs there does).
"""
import json
import os
import sys
import time

LOOP = "--loop-cursor" in sys.argv
NOISY = "--noisy" in sys.argv
VERSION = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--version=")), None)
TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object", "properties": p, "required": list(p)}}
    for n, d, p in [
        ("echo", "Echo the text back.", {"text": {"type": "string"}}),
        ("crash", "Exit the server in the middle of the call.", {}),
        ("hang", "Never answer.", {}),
        ("slow", "Answer after some seconds.", {"seconds": {"type": "number"}}),
        ("fail", "Fail with an error result.", {}),
        ("log", "Send a log message, then answer.", {}),
    ]
]


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    mid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
    if mid is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": VERSION or params["protocolVersion"], "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake", "version": "1"}}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    elif method == "tools/list":
        start = int(params.get("cursor", "0"))
        page = {"tools": TOOLS[start:start + 2]}
        if LOOP:
            page["nextCursor"] = "0"
        elif start + 2 < len(TOOLS):
            page["nextCursor"] = str(start + 2)
        send({"jsonrpc": "2.0", "id": mid, "result": page})
    elif method == "tools/call":
        name, args = params["name"], params.get("arguments", {})
        if name == "echo":
            result = {"content": [{"type": "text", "text": args["text"]}]}
            if args.get("pid"):
                result["structuredContent"] = {"pid": os.getpid()}
            send({"jsonrpc": "2.0", "id": mid, "result": result})
        elif name == "crash":
            sys.stderr.write("fake: crashing on purpose\n")
            sys.exit(3)
        elif name == "hang":
            if NOISY:
                print("debug: hanging now", flush=True)
            while True:
                time.sleep(60)
        elif name == "slow":
            time.sleep(args.get("seconds", 1))
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": "slow done"}]}})
        elif name == "fail":
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": "it broke"}], "isError": True}})
        elif name == "log":
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hello log"}})
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": "logged"}]}})
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": f"Unknown tool: {name}"}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
