"""Rewards in the shapes RL trainers call, judged by wand's sandbox exactly as `wand eval` judges.

verl:  custom_reward_function.path = <this file>, name = compute_score
    compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float
TRL:   GRPOTrainer(reward_funcs=[wand.rewards.reward_func], ...) with a dataset column
    "ground_truth" (and optionally "data_source"):
    reward_func(completions, ground_truth, **kwargs) -> list[float]

ground_truth: code test cases ({"inputs", "outputs"} stdin/stdout, with "fn_name" call-based,
or {"test_list": [asserts]}; a dict or its JSON text, as verl stores them), or a math answer (a
string or number). A math solution with a fenced Python block is run and its answer compared;
otherwise its final answer ("the answer is", "####", \\boxed{}, else the last number) is.
Scores: 1.0 / 0.0 (mapping="binary"; partial_credit=True gives the fraction of tests passed),
or CodeRL's -1 / -0.6 / -0.3 / +1 (mapping="coderl").
"""
import json
import math

import wand


def score_batch(data_sources, solutions, ground_truths, sandbox=None, details=False, **options):
    """Scores many samples in one sandbox batch. Returns floats, or with details=True dicts
    {"score", "verdict"}. options: timeout, memory_mb, partial_credit, strict, mapping."""
    data_sources, solutions, ground_truths = list(data_sources), list(solutions), list(ground_truths)
    if not len(data_sources) == len(solutions) == len(ground_truths):
        raise ValueError(f"data_sources ({len(data_sources)}), solutions ({len(solutions)}) and ground_truths "
                         f"({len(ground_truths)}) must have one entry per sample")
    for i, (s, g) in enumerate(zip(solutions, ground_truths)):
        if not isinstance(s, str):
            raise ValueError(f"solutions[{i}]: expected a string, got {type(s).__name__}")
        if isinstance(g, float) and not math.isfinite(g):
            raise ValueError(f"ground_truths[{i}]: must be a finite number, got {g}")
    items = [[str(d), s, g] for d, s, g in zip(data_sources, solutions, ground_truths)]
    sb = (sandbox or wand.default_sandbox())._sb
    options.setdefault("extract_code", True)
    out = json.loads(sb.rewards(json.dumps(items), wand._options(**options)))
    if details:
        return [wand.Result(score=o["score"], verdict=wand.Result(o["verdict"])) for o in out]
    return [o["score"] for o in out]


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **options):
    """verl's reward function shape; returns a float."""
    return score_batch([data_source], [solution_str], [ground_truth], **options)[0]


def _text(completion):
    # TRL passes conversational completions as lists of messages: the last one is the answer.
    if isinstance(completion, list):
        if completion and not (isinstance(completion[-1], dict) and isinstance(completion[-1].get("content"), str)):
            raise ValueError("completions: a conversational completion's last message needs a 'content' string")
        return completion[-1]["content"] if completion else ""
    return completion


def reward_func(completions, ground_truth=None, data_source=None, **kwargs):
    """TRL's reward function shape: one float per completion, scored in one batch."""
    if ground_truth is None:
        raise ValueError("reward_func needs a 'ground_truth' column in the dataset")
    sources = data_source if data_source is not None else ["trl"] * len(completions)
    return score_batch(sources, [_text(c) for c in completions], ground_truth)
