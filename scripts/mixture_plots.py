#!/usr/bin/env python3
"""Plots of `wand study mixture`: each probe against the code share, from the study's summary.json.

usage: python3 scripts/mixture_plots.py STUDY_DIR/summary.json docs/mixture

Writes one PNG per probe metric and index.html (the table and the plots) into the output folder.
Needs matplotlib (Debian: apt-get install -y python3-matplotlib); nothing in the build or CI runs it.
"""
import html
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (probe, metric, title, what it is)
METRICS = [
    ("reasoning_templates", "exact", "CoT exact match, held-out templates", "exact"),
    ("reasoning_templates", "rank", "Answer out-scores k distractors, held-out templates", "likelihood"),
    ("reasoning_templates", "rationale_logprob", "Worked rationale, mean log-prob per token", "likelihood"),
    ("multiarith", "exact", "CoT exact match, MultiArith", "exact"),
    ("multiarith", "rank", "Answer out-scores k distractors, MultiArith", "likelihood"),
    ("multiarith", "answer_logprob", "Answer log-prob, MultiArith", "likelihood"),
    ("knowledge", "exact", "World facts, greedy answer exact", "exact"),
    ("knowledge", "rank", "World facts, answer out-scores k distractors", "likelihood"),
    ("knowledge", "answer_logprob", "World facts, answer log-prob", "likelihood"),
    ("code", "pass1", "Function tasks, pass@1 in the sandbox", "exact"),
    ("code", "code_logprob", "Reference function, mean log-prob per token", "likelihood"),
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        summary = json.load(f)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    table = summary["table"]
    main_rows = [r for r in table if r["phase"] == "main"]
    cool_rows = [r for r in table if r["phase"] == "cooldown"]
    chance = 1 / (summary["options"]["distractors"] + 1)
    figures = []
    for probe, metric, title, kind in METRICS:
        rows = [r for r in main_rows if metric in r["probes"].get(probe, {})]
        if not rows:
            continue
        xs = [100 * r["measured_code_share"] for r in rows]
        vals = [r["probes"][probe][metric] for r in rows]
        ys = [v["value"] for v in vals]
        err = [[y - v["lo"] for y, v in zip(ys, vals)], [v["hi"] - y for y, v in zip(ys, vals)]]
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label="main runs (mean of seeds, pooled 95% CI)")
        for x, v in zip(xs, vals):  # each seed's own value
            ax.scatter([x] * len(v["seeds"]), v["seeds"], s=10, color="gray", alpha=0.6, zorder=3)
        colors = {"with-code": "tab:green", "without-code": "tab:red"}
        for r in cool_rows:
            v = r["probes"].get(probe, {}).get(metric)
            if v is None:
                continue
            x = 100 * r["code_share"]
            ax.errorbar([x + (1.5 if r["cooldown"] == "with-code" else -1.5)], [v["value"]],
                        yerr=[[v["value"] - v["lo"]], [v["hi"] - v["value"]]], marker="s", capsize=3,
                        color=colors.get(r["cooldown"], "k"), linestyle="none", label=f"cool-down {r['cooldown']}")
        if metric in ("rank",):
            ax.axhline(chance, color="gray", linestyle=":", label="chance")
        ax.set_xlabel("code share of training tokens (%)")
        ax.set_ylabel(f"{metric} ({kind})")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6)
        fig.tight_layout()
        name = f"{probe}-{metric}.png"
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        figures.append((name, title, kind))

    md = os.path.join(os.path.dirname(sys.argv[1]), "summary.md")
    table_md = open(md).read() if os.path.exists(md) else ""
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write("<!doctype html><meta charset=utf-8><title>wand: the code-mixture study</title>\n")
        f.write("<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{width:48%}"
                "pre{font-size:11px;overflow-x:auto}</style>\n")
        f.write("<h1>The code-mixture study</h1><p>Each probe against the share of code in the training tokens "
                "(docs/mixture.md says how it was run and what it shows). <b>exact</b>: greedy answers; "
                "<b>likelihood</b>: scores from the model's log-probabilities. Error bars: 95% intervals "
                "(Wilson for rates, normal for means) pooled over seeds; gray dots: single seeds.</p>\n")
        f.write(f"<h2>Table</h2><pre>{html.escape(table_md)}</pre>\n<h2>Plots</h2>\n")
        for name, title, kind in figures:
            f.write(f'<img src="{name}" alt="{html.escape(title)} ({kind})">\n')
    print(f"wrote {len(figures)} plots and index.html to {out}")


if __name__ == "__main__":
    main()
