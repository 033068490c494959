"""Synthetic data sources for ``r1 data prepare`` (``synth:addition``); generators live in the core layer."""

from r1cli.tasks.synth import TASKS, VERBOSE_P, addition_prompt, addition_rows, addition_trace, corpus

__all__ = ["TASKS", "VERBOSE_P", "addition_prompt", "addition_rows", "addition_trace", "corpus"]
