#!/usr/bin/env python3
"""The balanced verifier data of models/wand-verify.gguf (models/MODEL_CARD.md, the ninth try):
keeps, in a COPY of a run store, only the samples of `wand export --format verifier` rows of
questions with right and wrong answers: every right row and as many wrong ones, drawn at random
(seed 1). `wand export --format verifier --corpus` on the copy then writes the corpus.
(`wand export --balanced` keeps the first wrong rows in sample order instead: the card has both.)

Usage: scripts/balance_verifier_store.py ROWS.jsonl STORE_COPY
  ROWS.jsonl: `wand export --run ID --format verifier --per-task 0 --out ROWS.jsonl` of that run.
"""
import collections
import json
import random
import sqlite3
import sys


def main(rows_path, store):
    rows = [json.loads(line) for line in open(rows_path)]
    by = collections.defaultdict(lambda: ([], []))
    for r in rows:
        by[(r["run_id"], r["problem"])][0 if r["completion"] == "1" else 1].append(r["sample"])
    random.seed(1)
    keep = set()
    for (run, p), (right, wrong) in by.items():
        if right and wrong:
            n = min(len(right), len(wrong))
            keep.update((run, p, s) for s in right[:n] + random.sample(wrong, n))
    db = sqlite3.connect(store)
    runs = {run for run, _ in by}
    drop = [(run, p, i) for run in runs
            for p, i in db.execute("SELECT problem_idx, idx FROM samples WHERE run_id = ?", (run,))
            if (run, p, i) not in keep]
    db.executemany("DELETE FROM samples WHERE run_id = ? AND problem_idx = ? AND idx = ?", drop)
    db.commit()
    print(f"kept {len(keep)} samples, removed {len(drop)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: scripts/balance_verifier_store.py ROWS.jsonl STORE_COPY")
    main(sys.argv[1], sys.argv[2])
