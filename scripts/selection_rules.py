#!/usr/bin/env python3
"""How label-free choices among a bench run's samples would have scored (models/MODEL_CARD.md,
the eighth try): greedy is not here (it is its own run); for each stored `wand bench --k K` run,
the vote, the vote over plausible answers, the most likely sample, the most likely plausible
sample, and whether any sample was right; with --verifier URL also the sample an outcome verifier
(the ninth try; src/reason/verifier.h) rates most likely right, among all and among plausible
answers; with --reviewer URL also Coder-Reviewer reranking (Zhang et al., 2022; the tenth try): a
reviewer model (`wand corpus --review`) gives log p(question | program), and the sample with the
highest mean log-probability of its program plus its question's mean log-probability under the
reviewer wins (and the reviewer's alone). Reads the run store (SQLite); the models are asked over
HTTP (`wand serve -m MODEL` and its URL: /v1/completions; the verifier for one token's top
log-probabilities, the reviewer for the echoed prompt's).

Usage: scripts/selection_rules.py [--verifier URL] [--reviewer URL] STORE RUN_ID [RUN_ID ...]

Plausible as reason::implausible_because: a finite number, not negative, and whole when every
number bound in the program (the question's, `nK = V` lines) is whole. Answers match numerically
(relative 1e-6). The repair round is not replayed: each rule picks among the K samples only.
"""
import collections
import json
import math
import re
import sqlite3
import sys
import urllib.error
import urllib.request


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


def shortest(answer):
    """reason::normalize_answer for a number: its shortest form ("48.0" -> "48")."""
    v = number(answer)
    if v is None:
        return str(answer).strip()
    v = 0.0 if v == 0 else v
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)


def verifier_prompt(prompt, program, answer):
    """reason::verifier_prompt (prompts/verify.wand.txt)."""
    return f"{prompt}{program.rstrip(chr(10) + chr(13))}\nAnswer: {shortest(answer)}\nRight: "


def verifier_score(url, prompt, cache={}):
    """P(right): p(1) / (p(1) + p(0)) among the verifier's 5 most likely next tokens."""
    if prompt not in cache:
        body = json.dumps({"prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 5}).encode()
        req = urllib.request.Request(url.rstrip("/") + "/v1/completions", body, {"Content-Type": "application/json"})
        try:
            top = json.load(urllib.request.urlopen(req))["choices"][0]["logprobs"]["top_logprobs"][0]
        except urllib.error.HTTPError as e:  # longer than the verifier's context: unscored, ranked last
            if "context" not in e.read().decode("utf-8", "replace"):
                raise
            cache[prompt] = -1.0
            return cache[prompt]
        p = {t.strip(): math.exp(lp) for t, lp in top.items()}
        right, wrong = p.get("1", 0.0), p.get("0", 0.0)
        cache[prompt] = right / (right + wrong) if right + wrong > 0 else 0.0
    return cache[prompt]


def review_score(url, prompt, completion, cache={}):
    """The reviewer's mean log-probability of the question's tokens after reason::review_prompt."""
    question = prompt[len("Question: "):-len("\nProgram:\n")]
    head = "Program:\n" + completion.rstrip("\r\n") + "\nQuestion: "
    if (head, question) not in cache:
        body = json.dumps({"prompt": head + question, "max_tokens": 0, "echo": True, "logprobs": 0}).encode()
        req = urllib.request.Request(url.rstrip("/") + "/v1/completions", body, {"Content-Type": "application/json"})
        try:
            lp = json.load(urllib.request.urlopen(req))["choices"][0]["logprobs"]
        except urllib.error.HTTPError as e:  # longer than the reviewer's context: ranked last
            if "context" not in e.read().decode("utf-8", "replace"):
                raise
            cache[head, question] = -1e9
            return cache[head, question]
        values = [v for v, at in zip(lp["token_logprobs"], lp["text_offset"]) if at >= len(head) and v is not None]
        cache[head, question] = sum(values) / max(len(values), 1)
    return cache[head, question]


def best_by(samples, key):
    best = max(samples, key=key, default=None)
    return best and best["answer"]


def most_verified(samples):
    best = max(samples, key=lambda s: s["verified"], default=None)
    return best and best["answer"]


def verified_and_likely(samples):
    """LEVER's reranking score for one sample: P(right) times the sample's probability (here its
    per-token geometric mean, as --weighted uses)."""
    best = max(samples, key=lambda s: math.log(max(s["verified"], 1e-9)) + s["logprob"], default=None)
    return best and best["answer"]


def verified_vote(samples):
    """The answer whose samples' verifier scores sum highest (LEVER's aggregation over samples
    with one execution result)."""
    mass = collections.Counter()
    for s in samples:
        mass[round(number(s["answer"]), 6)] += s["verified"]
    return mass.most_common(1)[0][0] if mass else None


def main(store, run_ids, verifier=None, reviewer=None):
    db = sqlite3.connect(store)
    db.text_factory = lambda b: b.decode("utf-8", "replace")  # a model may write bytes that are not UTF-8
    for run in run_ids:
        expected = dict(db.execute("SELECT idx, expected FROM problems WHERE run_id = ?", (run,)))
        k = db.execute("SELECT json_extract(options, '$.k') FROM runs WHERE id = ?", (run,)).fetchone()
        if not expected or not k:
            sys.exit(f"selection_rules.py: run {run}: not in {store}, or no problems recorded")
        samples = collections.defaultdict(list)
        rows = db.execute("SELECT problem_idx, prompt, completion, program, answer, logprob FROM samples "
                          "WHERE run_id = ? AND idx < ? AND answer IS NOT NULL AND logprob IS NOT NULL",
                          (run, k[0]))
        for i, prompt, completion, program, answer, logprob in rows:
            if number(answer) is not None:
                s = {"program": program or "", "answer": answer, "logprob": logprob}
                if verifier:
                    s["verified"] = verifier_score(verifier, verifier_prompt(prompt or "", s["program"], answer))
                if reviewer:
                    s["reviewed"] = review_score(reviewer, prompt or "", completion or "")
                samples[i].append(s)
        score = collections.Counter()
        for i, label in expected.items():
            ss = samples[i]
            ok = [s for s in ss if plausible(s)]
            score["vote"] += same(vote(ss), label)
            score["vote, plausible"] += same(vote(ok), label)
            score["most likely"] += same(most_likely(ss), label)
            score["most likely plausible"] += same(most_likely(ok), label)
            if verifier:
                score["verifier"] += same(most_verified(ss), label)
                score["verifier plausible"] += same(most_verified(ok), label)
                score["verifier vote plausible"] += same(verified_vote(ok), label)
                score["verifier x likely plausible"] += same(verified_and_likely(ok), label)
            if reviewer:
                score["reviewer plausible"] += same(best_by(ok, lambda s: s["reviewed"]), label)
                score["coder-reviewer plausible"] += same(best_by(ok, lambda s: s["logprob"] + s["reviewed"]), label)
            score["any sample right"] += any(same(s["answer"], label) for s in ss)
        print(f"{run} (k = {k[0]}, {len(expected)} problems): " + ", ".join(f"{n} {v}" for n, v in score.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    urls = {}
    while args[:1] in (["--verifier"], ["--reviewer"]):
        if len(args) < 2:
            sys.exit(f"selection_rules.py: {args[0]} needs the URL of a server of the model (wand serve)")
        urls[args[0][2:]], args = args[1], args[2:]
    if len(args) < 2:
        sys.exit("usage: scripts/selection_rules.py [--verifier URL] [--reviewer URL] STORE RUN_ID [RUN_ID ...]")
    main(args[0], args[1:], urls.get("verifier"), urls.get("reviewer"))
