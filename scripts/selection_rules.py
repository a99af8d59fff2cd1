#!/usr/bin/env python3
"""How label-free choices among a bench run's samples would have scored (models/MODEL_CARD.md,
the eighth try): greedy is not here (it is its own run); for each stored `wand bench --k K` run,
the vote, the vote over plausible answers, the most likely sample, the most likely plausible
sample, and whether any sample was right. Reads the run store (SQLite) and nothing else.

Usage: scripts/selection_rules.py STORE RUN_ID [RUN_ID ...]

Plausible as reason::implausible_because: a finite number, not negative, and whole when every
number bound in the program (the question's, `nK = V` lines) is whole. Answers match numerically
(relative 1e-6). The repair round is not replayed: each rule picks among the K samples only.
"""
import collections
import math
import re
import sqlite3
import sys


def number(text):
    try:
        return float(str(text).replace(",", ""))
    except (TypeError, ValueError):
        return None


def same(a, b):
    x, y = number(a), number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(y))


def plausible(sample):
    v = number(sample["answer"])
    if v is None or not math.isfinite(v) or v < 0:
        return False
    given = [number(g) for g in re.findall(r"^n\d+ = (\S+)$", sample["program"], re.M)]
    whole = bool(given) and all(g is not None and g == int(g) for g in given)
    return not whole or abs(v - round(v)) < 1e-9


def vote(samples):
    counts = collections.Counter(round(number(s["answer"]), 6) for s in samples)
    return counts.most_common(1)[0][0] if counts else None


def most_likely(samples):
    best = max(samples, key=lambda s: s["logprob"], default=None)
    return best and best["answer"]


def main(store, run_ids):
    db = sqlite3.connect(store)
    db.text_factory = lambda b: b.decode("utf-8", "replace")  # a model may write bytes that are not UTF-8
    for run in run_ids:
        expected = dict(db.execute("SELECT idx, expected FROM problems WHERE run_id = ?", (run,)))
        k = db.execute("SELECT json_extract(options, '$.k') FROM runs WHERE id = ?", (run,)).fetchone()
        if not expected or not k:
            sys.exit(f"selection_rules.py: run {run}: not in {store}, or no problems recorded")
        samples = collections.defaultdict(list)
        rows = db.execute("SELECT problem_idx, program, answer, logprob FROM samples "
                          "WHERE run_id = ? AND idx < ? AND answer IS NOT NULL AND logprob IS NOT NULL",
                          (run, k[0]))
        for i, program, answer, logprob in rows:
            if number(answer) is not None:
                samples[i].append({"program": program or "", "answer": answer, "logprob": logprob})
        score = collections.Counter()
        for i, label in expected.items():
            ss = samples[i]
            ok = [s for s in ss if plausible(s)]
            score["vote"] += same(vote(ss), label)
            score["vote, plausible"] += same(vote(ok), label)
            score["most likely"] += same(most_likely(ss), label)
            score["most likely plausible"] += same(most_likely(ok), label)
            score["any sample right"] += any(same(s["answer"], label) for s in ss)
        print(f"{run} (k = {k[0]}, {len(expected)} problems): " + ", ".join(f"{n} {v}" for n, v in score.items()))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: scripts/selection_rules.py STORE RUN_ID [RUN_ID ...]")
    main(sys.argv[1], sys.argv[2:])
