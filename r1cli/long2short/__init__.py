"""long2short (Kimi k1.5, arXiv 2501.12599, §2.4): shorten a long-CoT model's responses — weight merging,
shortest-correct rejection sampling + SFT, DPO on short-vs-long pairs, RL with a length penalty (Kimi) or
length targets (L1). Stage entry point: :func:`r1cli.long2short.stage.run_long2short`."""

from r1cli.long2short.merge import average_state_dicts, merge_models
from r1cli.long2short.select import Candidate, dpo_pairs, shortest_correct

__all__ = ["Candidate", "average_state_dicts", "dpo_pairs", "merge_models", "shortest_correct"]
