#!/usr/bin/env python3
"""The pass@1 table of wand's code model (models/MODEL_CARD.md, "wand-code").

Runs `wand code --dataset SET --method M` for each method on the two held-out function sets and
prints a Markdown table of the chosen programs' pass rate on the hidden tests, each with its
Wilson 95% interval (from the run's JSON summary; `wand eval --dataset SET --samples FILE` judges
the same samples again). Every run is recorded in OUT/runs.db (`wand runs`, `wand export --run`).

usage: bench/code_table.py [--wand build/src/cli/wand] [--model local:models/wand-code.gguf]
                           [--limit 100] [--seed 1] [--out bench-out/code]
"""
import argparse
import json
import os
import subprocess
import sys
import time

SETS = [("held-out inputs", "models/heldout-functions.jsonl"),
        ("held-out families", "models/heldout-functions-templates.jsonl")]
# (row label, wand code options, summary field). Every row but the first samples at temperature
# 0.8, so the rows differ only in what execution feedback does with the samples.
T = ["--temperature", "0.8"]
ROWS = [("sample (greedy, k = 1)", ["--method", "sample"], "chosen"),
        ("sample (T = 0.8, k = 1)", ["--method", "sample"] + T, "chosen"),
        ("self-debug (R = 3, unit-test feedback)", ["--method", "self-debug", "--rounds", "3", "--feedback", "unit"] + T, "chosen"),
        ("CodeT (n = 10, m = 10): its pick", ["--method", "codet", "--k", "10", "--gen-tests", "10"] + T, "chosen"),
        ("CodeT (n = 10, m = 10): a random pick", None, "random_pick"),
        ("roles (R = 3)", ["--method", "roles", "--rounds", "3", "--gen-tests", "10"] + T, "chosen")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wand", default="build/src/cli/wand")
    ap.add_argument("--model", default="local:models/wand-code.gguf")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="bench-out/code")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cells = {}
    for set_name, path in SETS:
        summaries = {}
        for label, opts, field in ROWS:
            if opts is None:  # the random pick comes with CodeT's run
                s = summaries["codet-t"]
            else:
                method = opts[1] + ("-t" if "--temperature" in opts else "")
                samples = os.path.join(a.out, f"{os.path.basename(path)[:-6]}.{method}.samples.jsonl")
                cmd = [a.wand, "code", "--dataset", path, "--limit", str(a.limit), "--out", samples, "--model", a.model,
                       "--seed", str(a.seed), "--store", os.path.join(a.out, "runs.db"), "--json"] + opts
                t0 = time.time()
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    sys.exit(f"{' '.join(cmd)}: exit {run.returncode}\n{run.stderr}")
                s = summaries[method] = json.loads(run.stdout)
                print(f"{set_name}, {method}: {s['chosen_pass_rate']:.3f} ({time.time() - t0:.0f} s, run {s['run_id']})",
                      file=sys.stderr)
            rate, ci = s[f"{field}_pass_rate"], s[f"{field}_ci95"]
            cells[(label, set_name)] = f"{100 * rate:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
            cells[("n", set_name)] = s["judged"]
    header = " | ".join(f"{name} ({cells[('n', name)]} tasks)" for name, _ in SETS)
    print(f"| method | {header} |")
    print("|---|" + "---|" * len(SETS))
    for label, _, _ in ROWS:
        print(f"| {label} | " + " | ".join(cells[(label, name)] for name, _ in SETS) + " |")


if __name__ == "__main__":
    main()
