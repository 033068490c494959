"""Rollout engine interface shared by the ``hf`` and ``vllm`` backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingSpec:
    """Sampling settings. ``temperature == 0`` means greedy."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Sample:
    """One generated response. ``logprobs`` are the sampler's log-probs of the chosen tokens (at the sampling
    temperature, before top-p/top-k truncation), ``finish_reason`` is 'stop' (EOS) or 'length'."""

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    finish_reason: str
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.finish_reason == "stop"


class RolloutEngine(Protocol):
    tokenizer: Any

    def generate(
        self, prompts: list[list[int]], spec: SamplingSpec, seeds: list[int] | None = None
    ) -> list[list[Sample]]:
        """For each prompt (token ids) return ``spec.n`` samples; ``seeds`` (one per prompt) makes a prompt's
        samples independent of the other prompts in the call."""
        ...

    def load_weights(self, named_tensors: Any) -> None:
        """Replace the sampler's weights in place (after a training step)."""
        ...


def decode_response(tokenizer: Any, ids: list[int]) -> str:
    """Decode response ids ourselves: drop only the EOS/pad ids, keep every tag (never skip_special_tokens)."""
    drop = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    return tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False)
