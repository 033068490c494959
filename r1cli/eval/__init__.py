"""Evaluation stage: comparable numbers (avg@n, unbiased pass@k, maj@k, greedy accuracy, lengths, truncation)
with the sampling spec stored beside them and hashed into the output path; resumable.

Entry points: :func:`evaluate` (``r1 eval --model``), :func:`run_eval_stage` (the pipeline's ``eval`` rule),
:func:`compare` (``r1 eval compare``). Importing this package does not import torch.
"""

from r1cli.eval.api import (
    EvalEngine,
    EvalOutput,
    EvalSampling,
    build_rollout,
    eval_dir,
    evaluate,
    load_eval_data,
    model_label,
    recipe_test_data,
    run_eval_stage,
)
from r1cli.eval.compare import collect_metrics, compare
from r1cli.eval.metrics import maj_at_k, majority, pass_at_k, summarize, vote_classes
from r1cli.eval.runner import EvalData, EvalResult, LazyRollout, evaluate_benchmark, model_fingerprint
from r1cli.eval.spec import sampling_spec, spec_from_recipe, spec_hash

__all__ = [
    "EvalData",
    "EvalResult",
    "LazyRollout",
    "build_rollout",
    "collect_metrics",
    "compare",
    "eval_dir",
    "EvalEngine",
    "EvalOutput",
    "EvalSampling",
    "evaluate",
    "evaluate_benchmark",
    "load_eval_data",
    "maj_at_k",
    "majority",
    "model_fingerprint",
    "model_label",
    "pass_at_k",
    "recipe_test_data",
    "run_eval_stage",
    "sampling_spec",
    "spec_from_recipe",
    "spec_hash",
    "summarize",
    "vote_classes",
]
