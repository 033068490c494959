"""Every registry-backed name a recipe or a CLI flag may give, without importing the registries (torch,
math-verify). The recipe schema and the CLI check names against these lists, so a typo (``grpoo``, ``pm_1``,
``boxd``) fails at resolve time with the valid names instead of training on all-zero rewards.
tests/config/test_names.py asserts each list equals its registry's keys.
"""

from __future__ import annotations

from collections.abc import Iterable

#: r1cli.algos.ADVANTAGES
ADVANTAGES = (
    "gae", "vapo_gae", "grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "prime", "mrt",
)
#: r1cli.algos.POLICY_LOSSES
POLICY_LOSSES = ("ppo_clip", "topr", "oreal", "reinforce")
#: r1cli.algos.KL (k1/k2/k3/abs and verl's spellings kl, mse, low_var_kl)
KL_TYPES = ("k1", "abs", "k2", "k3", "kl", "mse", "low_var_kl")
#: r1cli.algos.AGG_MODES
AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")
#: r1cli.algos.FILTERS (rl.rollout.dynamic_sampling.filter)
FILTERS = ("dapo", "band", "oreal_pairs")
#: r1cli.rewards.REWARDS
REWARDS = ("math", "exact", "countdown", "kk", "gsm8k", "swe", "code", "math_independent", "math_verify")
#: r1cli.rewards.MATH_SCHEMES (the ``scheme`` parameter of a reward)
SCHEMES = ("binary", "pm1", "limr", "simplerl", "still")
#: r1cli.rewards.EXTRACTORS (the ``extractor`` parameter of a reward)
EXTRACTORS = ("auto", "boxed", "answer_tag", "answer_line", "gsm8k")
#: r1cli.rewards.SHAPING (sequence-level shaping terms)
SHAPING = ("cosine", "overlong", "l1_exact", "l1_max", "repetition", "format")
#: r1cli.rewards.TOKEN_SHAPING (token-level shaping terms)
TOKEN_SHAPING = ("repetition_tokens",)
#: group-level shaping terms the RL stage applies itself (r1cli.train.rl: Kimi k1.5 length penalty)
GROUP_SHAPING = ("kimi_length", "kimi", "kimi_length_penalty")

KINDS: dict[str, tuple[str, ...]] = {
    "advantage": ADVANTAGES,
    "policy loss": POLICY_LOSSES,
    "KL type": KL_TYPES,
    "loss aggregation": AGG_MODES,
    "dynamic-sampling filter": FILTERS,
    "reward": REWARDS,
    "scheme": SCHEMES,
    "extractor": EXTRACTORS,
    "shaping term": SHAPING + TOKEN_SHAPING + GROUP_SHAPING,
}


def is_user_function(name: str) -> bool:
    """``path.py:fn`` or ``module:fn``: a user reward function, checked when it is loaded."""
    return ":" in name


def did_you_mean(name: object, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the closest valid names (difflib), or "" when none is close."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(valid), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def unknown_name(kind: str, name: object, valid: Iterable[str] | None = None) -> str:
    names = tuple(valid) if valid is not None else KINDS[kind]
    return f"unknown {kind} {name!r}; valid: {', '.join(names)}{did_you_mean(name, names)}"


def check_name(kind: str, name: object, *, allow_user_function: bool = False) -> str:
    """Return ``name`` when it is a valid ``kind`` name, else raise ValueError listing the valid ones."""
    if allow_user_function and isinstance(name, str) and is_user_function(name):
        return name
    if not isinstance(name, str) or name not in KINDS[kind]:
        raise ValueError(unknown_name(kind, name))
    return name


def check_reward_params(params: dict[str, object]) -> dict[str, object]:
    """The name-valued parameters of a reward (``scheme``, ``extractor``) must be known names."""
    for key in ("scheme", "extractor"):
        if key in params:
            check_name(key, params[key])
    return params
