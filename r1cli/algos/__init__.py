"""r1's algorithm library: pure torch functions behind name registries (ARCHITECTURE.md, "Core
contracts"). The RL trainer selects each by the name a recipe gives.

* ``ADVANTAGES``    gae, vapo_gae, grpo, dr_grpo, rloo, reinforce_pp, reinforce_pp_baseline, prime
* ``POLICY_LOSSES`` ppo_clip, topr, oreal, reinforce  (+ ``value_loss`` for the critic)
* ``KL``            k1, abs, k2, k3 (+ verl spellings kl, mse, low_var_kl)
* ``FILTERS``       dapo, band, oreal_pairs
* ``aggregate``     token-mean, seq-mean-token-sum, seq-mean-token-mean, seq-mean-token-sum-norm

Tensors are ``(batch, tokens)`` with a 0/1 mask. Nothing here does I/O or imports an engine.
"""

from r1cli.algos.advantages import (
    ADVANTAGE_TRAITS,
    ADVANTAGES,
    AdvantageOutput,
    AdvantageTraits,
    outcome_token_rewards,
    vapo_lambda,
)
from r1cli.algos.aggregate import AGG_MODES, aggregate, aggregate_denominators
from r1cli.algos.dpo import dpo_loss
from r1cli.algos.entropy_control import AdaptiveEntropyCoef
from r1cli.algos.filters import FILTER_TRAITS, FILTERS, FilterTraits, group_accuracy
from r1cli.algos.kl import KL, AdaptiveKLController, FixedKLController, kl_penalty_rewards
from r1cli.algos.logprobs import entropy_from_logits, logprobs_from_hidden, logprobs_from_logits
from r1cli.algos.losses import POLICY_LOSS_TRAITS, POLICY_LOSSES, LossTraits, oreal_token_weights, value_loss
from r1cli.algos.masked import masked_mean, masked_sum, masked_var, masked_whiten

__all__ = [
    "ADVANTAGES",
    "ADVANTAGE_TRAITS",
    "FILTER_TRAITS",
    "POLICY_LOSS_TRAITS",
    "AdvantageTraits",
    "FilterTraits",
    "LossTraits",
    "AGG_MODES",
    "FILTERS",
    "KL",
    "POLICY_LOSSES",
    "AdaptiveEntropyCoef",
    "AdaptiveKLController",
    "AdvantageOutput",
    "FixedKLController",
    "aggregate",
    "aggregate_denominators",
    "dpo_loss",
    "entropy_from_logits",
    "group_accuracy",
    "kl_penalty_rewards",
    "logprobs_from_hidden",
    "logprobs_from_logits",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "oreal_token_weights",
    "outcome_token_rewards",
    "value_loss",
    "vapo_lambda",
]
