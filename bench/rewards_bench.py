"""Rewards through the Python module vs verl's local path, in the same run.

    PYTHONPATH=build/python python3 bench/rewards_bench.py [--n 1000]

Samples are synthetic (no benchmark data): N math completions (a fenced program whose printed
answer is compared with the ground truth; a quarter wrong) and N code completions (stdin/stdout,
3 cases each; a quarter wrong, some crash). The baseline is verl's prime_code-style local path:
a multiprocessing.Manager and one multiprocessing.Process per sample that exec()s the program in-process for each case with
stdin/stdout redirected, under a timeout, with as many samples in flight as there are cores.
wand isolates every sample in its own sandboxed process (namespaces, cgroup limits, seccomp)."""
import argparse
import concurrent.futures
import io
import json
import multiprocessing
import os
import random
import re
import sys
import time

import wand
import wand.rewards


def make_samples(n, seed=7):
    rnd = random.Random(seed)
    math, code = [], []
    for i in range(n):
        a, b = rnd.randint(2, 999), rnd.randint(2, 99)
        wrong = i % 4 == 3
        prog = f"apples = {a}\nboxes = {b}\nprint(apples * boxes{' + 1' if wrong else ''})"
        math.append(("gsm8k", f"Let me compute.\n```python\n{prog}\n```", str(a * b)))
        cases = [(f"{x} {y}\n", f"{x + y}\n") for x, y in ((rnd.randint(0, 99), rnd.randint(0, 99)) for _ in range(3))]
        body = "print(a + b)" if i % 4 < 3 else "print(a - b)" if i % 8 == 3 else "print(c)"  # right, wrong, crash
        src = f"a, b = map(int, input().split())\n{body}"
        code.append(("codecontests", f"```python\n{src}\n```",
                     json.dumps({"inputs": [c[0] for c in cases], "outputs": [c[1] for c in cases]})))
    return math, code


def fenced(text):
    m = re.search(r"```(?:python)?\n(.*?)```", text, re.S)
    return m.group(1) if m else text


def _run_cases(program, cases, results):
    # What verl's prime_code child does: exec the program in this process for each case.
    for stdin, expected in cases:
        sys.stdin, sys.stdout = io.StringIO(stdin), io.StringIO()
        try:
            exec(program, {"__name__": "__main__"})
            got = sys.stdout.getvalue()
            results.append(got.strip() == expected.strip())
        except BaseException:
            results.append(False)
        finally:
            sys.stdout = sys.__stdout__


def verl_style_one(kind, solution, ground_truth, timeout=10):
    program = fenced(solution)
    if kind == "math":
        cases = [("", ground_truth + "\n")]
    else:
        gt = json.loads(ground_truth)
        cases = list(zip(gt["inputs"], gt["outputs"]))
    # verl's check_correctness: a multiprocessing.Manager (its own server process) holds the result
    # list, and one Process per sample runs the tests, joined under a timeout.
    with multiprocessing.Manager() as manager:
        results = manager.list()
        p = multiprocessing.Process(target=_run_cases, args=(program, cases, results))
        p.start()
        p.join(timeout + 1)
        if p.is_alive():
            p.kill()
            p.join()
        res = list(results)
    return 1.0 if len(res) == len(cases) and all(res) else 0.0


def verl_style(kind, samples, workers):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda s: verl_style_one(kind, s[1], s[2]), samples))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    math, code = make_samples(args.n)
    cores = os.cpu_count()
    sb = wand.Sandbox(preload=())
    wand.rewards.score_batch(*zip(*math[:8]), sandbox=sb)  # cells started before timing
    print(f"{args.n} math + {args.n} code rewards, {cores} cores, {sb.cells} cells")
    rows = []
    for kind, samples in (("math", math), ("code", code)):
        t = time.monotonic()
        ours = wand.rewards.score_batch(*zip(*samples), sandbox=sb)
        t_wand = time.monotonic() - t
        t = time.monotonic()
        theirs = verl_style(kind, samples, cores)
        t_verl = time.monotonic() - t
        agree = sum(a == b for a, b in zip(ours, theirs))
        rows.append((kind, t_wand, t_verl))
        print(f"{kind:5} wand {t_wand:6.2f} s ({len(samples) / t_wand:7.0f}/s)   verl-style {t_verl:6.2f} s "
              f"({len(samples) / t_verl:6.0f}/s)   {t_verl / t_wand:5.1f}x   mean reward {sum(ours) / len(ours):.3f}, "
              f"same score on {agree}/{len(samples)}")
    tw, tv = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"all   wand {tw:6.2f} s   verl-style {tv:6.2f} s   {tv / tw:5.1f}x")


if __name__ == "__main__":
    main()
