"""Rollout engine interface shared by the ``hf`` and ``vllm`` backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingSpec:
    """Sampling settings. ``temperature == 0`` means greedy. ``stop``: strings that end a response, kept in it
    (vLLM's ``stop`` with ``include_stop_str_in_output=True``; Open-Reasoner-Zero stops at ``</answer>``)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Sample:
    """One generated response. ``logprobs`` are the sampler's log-probs of the chosen tokens (at the sampling
    temperature, before top-p/top-k truncation), ``finish_reason`` is 'stop' (EOS or a stop string) or
    'length'."""

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


class StopStrings:
    """Stop strings for r1's own decoders, with vLLM's ``include_stop_str_in_output=True`` semantics: a row ends
    at the token whose text completes one of the strings, and that token stays in the response.

    Each row keeps the tail of its decoded text (the longest string's length - 1, plus the new token's text), so a
    string spanning several tokens is found at the token that completes it. A token's text is its own decode
    (cached per id): exact for strings of whole characters such as ``</answer>`` or ``User:``; a character split
    over byte-level tokens shows up once its last byte arrives."""

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.tokenizer = tokenizer
        self._keep = max((len(s) for s in self.stops), default=1) - 1
        self._pieces: dict[int, str] = {}
        self._tails: dict[int, str] = {}

    def __bool__(self) -> bool:
        return bool(self.stops)

    def piece(self, token_id: int) -> str:
        p = self._pieces.get(token_id)
        if p is None:
            p = self._pieces[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return p

    def reset(self) -> None:
        self._tails.clear()

    def hits(self, rows: Sequence[int], tokens: Sequence[int]) -> list[bool]:
        """Append ``tokens[i]`` to row ``rows[i]``'s text; True where a stop string is now complete."""
        out = []
        for r, t in zip(rows, tokens, strict=True):
            tail = self._tails.get(r, "") + self.piece(int(t))
            out.append(any(s in tail for s in self.stops))
            self._tails[r] = tail[-self._keep :] if self._keep else ""
        return out
