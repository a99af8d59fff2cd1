#!/usr/bin/env python3
"""Soak run (minutes; not in CI): mixed OpenAI and execution traffic with hostile programs, through
nginx to 3 `wand serve --exec` workers (tests/deploy/cluster.py), then checks that nothing leaked.

    scripts/soak.py [--minutes 3] [--clients 8] [--build build]

Traffic, drawn at random per request: OpenAI completions; SandboxFusion /run_code, /v1/exec
batches and /get_reward with ordinary programs; and hostile programs (a fork bomb, a memory hog,
an infinite loop, an output flood, a daemon that outlives its run). Each answer is checked:
ordinary programs must give their output, hostile ones a contained failure. Afterwards, per
worker: processes under it, open descriptors and its run cgroups, counted before the traffic and
after it (once the last run's cleanup is done, and nginx has closed its idle connections to
them); a growth in any is a leak. Exit 0 when no 5xx,
no wrong answer and no leak; 1 otherwise.
"""
import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "tests", "deploy"))
from cluster import Cluster  # noqa: E402

HOSTILE = {
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "memory_hog": "x = []\nwhile True:\n    x.append(' ' * (1 << 24))",
    "infinite_loop": "while True:\n    pass",
    "output_flood": "while True:\n    print('x' * 100000)",
    "daemon": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(3600)\nprint('parent done')",
}


def post(url, body, timeout=120):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:300]
    except OSError as e:
        return 0, str(e)


def one_request(base, rng):
    """Sends one request of a random kind; returns (kind, HTTP status, whether the answer is right)."""
    roll = rng.random()
    if roll < 0.25:
        s, r = post(base + "/v1/completions", {"prompt": "Question: What is 6 * 7?\nProgram:\n", "max_tokens": 16})
        return "openai", s, s == 200 and isinstance(r, dict) and len(r.get("choices", [])) == 1
    if roll < 0.45:
        n = rng.randint(1, 500)
        s, r = post(base + "/run_code", {"code": f"print(sum(range({n})))", "language": "python", "run_timeout": 5})
        return "run_code", s, s == 200 and r["run_result"]["stdout"] == f"{sum(range(n))}\n"
    if roll < 0.60:
        s, r = post(base + "/v1/exec", [{"id": i, "code": f"print({i} * 2)"} for i in range(8)])
        return "exec_batch", s, s == 200 and [x["stdout"] for x in r] == [f"{i * 2}\n" for i in range(8)]
    if roll < 0.70:
        s, r = post(base + "/get_reward", {"query": ["Q: 6*7?\nA: The answer is 42", "Q: 1+1?\nA: 3"],
                                           "prompts": ["Q: 6*7?\nA: ", "Q: 1+1?\nA: "], "labels": ["42", "2"]})
        return "reward", s, s == 200 and r["rewards"] == [1.0, 0.0]
    name = rng.choice(sorted(HOSTILE))
    s, r = post(base + "/run_code", {"code": HOSTILE[name], "language": "python", "run_timeout": 3,
                                     "memory_limit_MB": 256})
    if name == "daemon":  # the run ends when its main process does; the daemon dies with its pid namespace
        return name, s, s == 200 and r["run_result"]["stdout"] == "parent done\n"
    return name, s, s == 200 and r["status"] == "Failed"


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def run_cgroups(pid):
    """The cgroup directories under the worker's wand-PID run trees (cgroup v2 or v1), and the
    processes in them: a process that left its parents (a daemon, an orphan) stays in its run's
    cgroup, so it is counted here even where descendants() no longer sees it."""
    dirs_n, procs = 0, set()
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) == f"wand-{pid}":
            for sub, d, _ in os.walk(root):
                dirs_n += len(d)
                try:
                    with open(os.path.join(sub, "cgroup.procs")) as f:
                        procs.update(f.read().split())
                except OSError:
                    pass
            dirs[:] = []
    return dirs_n, len(procs)


def census(workers):
    out = []
    for w in workers:
        cgroups, in_cgroups = run_cgroups(w.pid)
        out.append({"processes": len(descendants(w.pid)), "in_run_cgroups": in_cgroups,
                    "descriptors": len(os.listdir(f"/proc/{w.pid}/fd")), "cgroups": cgroups})
    return out


def settle(workers, seconds=10):
    """The census once it stops changing (a run's cleanup finishes after its answer is sent)."""
    last, end = census(workers), time.time() + seconds
    while time.time() < end:
        time.sleep(1)
        now = census(workers)
        if now == last:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    a = ap.parse_args()
    wand = os.path.join(a.build, "src", "cli", "wand")
    args = ["--threads", "1", "--exec-cells", "2", "--max-concurrent", "64",
            "--model", "local:" + os.path.join(SRC, "models", "wand-pot.gguf")]
    with Cluster(wand, SRC, 3, args) as c:
        # Each worker's cells up before the first count; straight to the workers, so that no
        # connection of nginx's is open yet (it keeps idle ones to the workers: they are counted
        # after it has stopped, below, as here before it has connected).
        for p in c.ports:
            post(f"http://127.0.0.1:{p}/v1/exec", [{"code": "print(1)"}] * 4)
        before = settle(c.workers)
        print(f"before: {before}; load average {os.getloadavg()}", flush=True)
        counts, wrong, statuses = Counter(), Counter(), Counter()
        lock = threading.Lock()
        end = time.time() + a.minutes * 60

        def client(seed):
            rng = random.Random(seed)
            while time.time() < end:
                kind, status, right = one_request(c.url(), rng)
                with lock:
                    counts[kind] += 1
                    statuses[status] += 1
                    if not right:
                        wrong[f"{kind} ({status})"] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        c.nginx.terminate()
        c.nginx.wait(timeout=20)
        after = settle(c.workers)
        print(f"after:  {after}; load average {os.getloadavg()}")
        total = sum(counts.values())
        print(f"{total} requests in {elapsed:.0f} s ({total / elapsed:.1f}/s) by {a.clients} clients")
        print("by kind:", dict(sorted(counts.items())))
        print("by HTTP status:", dict(sorted(statuses.items())))
        print("wrong answers:", dict(wrong) or "none")
        server_errors = sum(n for s, n in statuses.items() if s >= 500 or s == 0)
        leaks = [f"worker {i + 1} {k}: {b[k]} -> {x[k]}" for i, (b, x) in enumerate(zip(before, after))
                 for k in b if x[k] > b[k]]
        print("5xx or no answer:", server_errors)
        print("leaks:", leaks or "none")
        ok = server_errors == 0 and not wrong and not leaks
        c.keep = not ok
        if not ok:
            print(f"logs kept in {c.tmp}")
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
