#!/usr/bin/env python3
"""Stateless `wand serve` workers behind nginx, on loopback (README: Deploying past one machine).

Starts 3 workers on free ports and nginx with deploy/nginx/wand.conf rendered into a temporary
folder, then, with `wrk` (a Lua script POSTs the bodies and counts answers by class):
  1. execution (POST /v1/exec) and OpenAI (POST /v1/completions) load through nginx and straight
     to one worker: zero 5xx and zero socket errors; p50/p99 and requests/s reported side by side;
     each worker's resident memory (VmRSS) flat over the measured runs;
  2. one worker killed (SIGKILL) during execution load: still zero 5xx (nginx sends the requests
     in flight again to another worker; its log shows the retries), and no socket error but for
     answers the worker had begun to send when it died (nginx has forwarded their status line
     and cannot start them again; its error log names each);
  3. `wand eval --remote` of HumanEval's reference solutions through nginx while another worker
     is killed: every sample judged, verdicts identical to a local `wand eval`.
Usage: loadbalance_test.py WAND_BINARY SOURCE_DIR [SECONDS per load run, default 5]
Exit 0 passed, 1 failed, 77 skipped (nginx or wrk not installed: scripts/setup.sh installs them).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, missing_tools  # noqa: E402

WAND, SRC = sys.argv[1], sys.argv[2]
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
HUMANEVAL = os.path.join(SRC, "..", "shared", "data", "humaneval", "HumanEval.jsonl")
# A worker's resident memory may grow this much over a measured run and still count as flat:
# after the warm-up, what grows is glibc's per-thread malloc arenas touching a few more pages as
# the server's threads take turns (a few MiB), not a leak, which grows with every request and
# would pass this over the thousands of requests a run makes.
RSS_SLACK_KB = 8 * 1024

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(url, body_file, seconds, connections=8):
    env = dict(os.environ, WAND_BODY_FILE=body_file)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
                          "-s", os.path.join(SRC, "tests", "deploy", "wrk_post.lua"), url],
                         env=env, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"WAND (.*)", out.stdout)
    if not m:
        raise RuntimeError("wrk printed no summary:\n" + out.stdout + out.stderr)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def evaluate(extra, out):
    cmd = [WAND, "eval", "--dataset", HUMANEVAL, "--reference", "--json", "--out", out] + extra
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def verdicts(path):
    with open(path) as f:
        return [(r["task_id"], r["passed"], r.get("error")) for r in map(json.loads, f)]


def main():
    missing = missing_tools()
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (scripts/setup.sh installs them)")
        return 77
    model = "local:" + os.path.join(SRC, "models", "wand-pot.gguf")
    args = ["--threads", "1", "--exec-cells", "2", "--max-concurrent", "64", "--model", model]
    with Cluster(WAND, SRC, 3, args) as c:
        check(c.config_ok, "nginx -t accepts deploy/nginx/wand.conf: " + c.config_log[-200:])
        run_checks(c)
        c.keep = bool(failures)
        if failures:
            print(f"logs kept in {c.tmp}")
    print("PASSED" if not failures else f"FAILED: {len(failures)} checks")
    return 0 if not failures else 1


def run_checks(c):
    lb, ports, workers, tmp = c.port, c.ports, c.workers, c.tmp
    exec_body = os.path.join(tmp, "exec.json")
    with open(exec_body, "w") as f:
        json.dump({"code": "print(sum(i * i for i in range(1000)))", "timeout": 5}, f)
    chat_body = os.path.join(tmp, "completion.json")
    with open(chat_body, "w") as f:
        json.dump({"prompt": "Question: What is 2 + 3?\nProgram:\n", "max_tokens": 8, "temperature": 0}, f)

    # Warm-up: the first requests allocate the server's threads, arenas and the model's caches.
    wrk(f"http://127.0.0.1:{lb}/v1/exec", exec_body, 2)
    wrk(f"http://127.0.0.1:{lb}/v1/completions", chat_body, 2)
    before = [rss_kb(w.pid) for w in workers]
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = {}
    for name, path, body in (("exec", "/v1/exec", exec_body), ("openai", "/v1/completions", chat_body)):
        # Interleaved, so both see the same machine load.
        results[name, "nginx, 3 workers"] = wrk(f"http://127.0.0.1:{lb}{path}", body, SECONDS)
        results[name, "1 worker directly"] = wrk(f"http://127.0.0.1:{ports[0]}{path}", body, SECONDS)
    after = [rss_kb(w.pid) for w in workers]
    print(f"load average after: {os.getloadavg()}", flush=True)
    print(f"{'endpoint':8} {'path':18} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'2xx':>7} {'4xx':>5} {'5xx':>5}")
    for (name, how), r in results.items():
        print(f"{name:8} {how:18} {r['rps']:10.1f} {r['p50_us'] / 1e3:8.1f} {r['p99_us'] / 1e3:8.1f} "
              f"{int(r['ok']):7d} {int(r['client_errors']):5d} {int(r['server_errors']):5d}")
    for (name, how), r in results.items():
        check(r["server_errors"] == 0 and r["socket_errors"] == 0 and r["ok"] > 0,
              f"{name} via {how}: no 5xx, no socket errors, some answers")
    for port, b, a in zip(ports, before, after):
        check(a - b <= RSS_SLACK_KB, f"worker {port}: VmRSS {b} -> {a} kB (flat within {RSS_SLACK_KB} kB)")

    # A worker killed during the load: what it had in flight is sent again to another.
    served_before, errors_before = len(c.access_log()), len(c.error_log())
    killer = subprocess.Popen(["sh", "-c", f"sleep 2; kill -9 {workers[1].pid}"])
    r = wrk(f"http://127.0.0.1:{lb}/v1/exec", exec_body, SECONDS)
    killer.wait()
    retried = sum(1 for line in c.access_log()[served_before:] if re.search(r"upstream=\S+, ", line))
    print(f"kill during load: {int(r['ok'])} answered, {int(r['server_errors'])} 5xx, "
          f"{retried} requests sent to a second worker after the first failed", flush=True)
    check(workers[1].wait(timeout=10) == -signal.SIGKILL, "worker 2 was killed during the load")
    # An answer cut after its headers reached nginx ("... while reading upstream", not "... while
    # reading response header from upstream") is past resending: its client sees the connection
    # close. The worker writes headers and body in two calls, so a kill can land between them.
    cut = sum(1 for line in c.error_log()[errors_before:]
              if "prematurely closed connection while reading upstream" in line)
    check(r["server_errors"] == 0 and r["socket_errors"] <= cut,
          f"worker killed under load: no 5xx, socket errors {int(r['socket_errors'])} "
          f"<= answers cut mid-way {cut}")
    check(retried > 0, "nginx retried requests on another worker (access log)")

    # `wand eval --remote` through nginx loses no sample while another worker dies.
    if not os.path.exists(HUMANEVAL):
        print(f"skipped the eval part: {HUMANEVAL} not found")
        return
    local = evaluate([], os.path.join(tmp, "local.jsonl"))
    l_out, l_err = local.communicate(timeout=300)
    remote = evaluate(["--remote", f"http://127.0.0.1:{lb}"], os.path.join(tmp, "remote.jsonl"))
    time.sleep(0.5)
    running = remote.poll() is None
    workers[2].kill()
    r_out, r_err = remote.communicate(timeout=300)
    print(f"eval --remote: worker 3 killed {'while it ran' if running else 'after it finished'}", flush=True)
    check(local.returncode == 0 and remote.returncode == 0,
          f"wand eval local and --remote exit 0 ({local.returncode}, {remote.returncode}): {r_err[-300:]}")
    if local.returncode == 0 and remote.returncode == 0:
        lv, rv = verdicts(os.path.join(tmp, "local.jsonl")), verdicts(os.path.join(tmp, "remote.jsonl"))
        check(len(rv) == len(lv) == 164, f"every sample judged remotely ({len(rv)} of {len(lv)})")
        check(rv == lv, "remote verdicts identical to local ones")
        print(f"eval --remote pass@1 {json.loads(r_out)['pass_at_k'].get('pass@1')}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
