"""Shared fixtures of the eval tests: a session-scoped tiny model, the shared data, a fake engine."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import pytest

from r1cli.engines.rollout import Sample, SamplingSpec


def shared_dir() -> Path:
    env = os.environ.get("R1_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture(scope="session")
def eval_data_dir() -> Path:
    d = shared_dir() / "data" / "eval"
    if not (d / "aime2024.jsonl").exists():
        pytest.skip(f"shared eval data not found at {d}")
    return d


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.engines.tiny_model import build_tiny

    d = tmp_path_factory.mktemp("tiny") / "model"
    build_tiny(d, seed=0)
    return d


class FakeTokenizer:
    """Enough of a tokenizer for render_prompt (no chat template) and decode_response."""

    chat_template = None
    eos_token_id = 0
    pad_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [1 + (ord(c) % 997) for c in text]}


class FakeEngine:
    """Deterministic engine for resume tests: sample j of a prompt is correct iff
    (crc(prompt) + j + seed) % 3 == 0 (greedy: iff crc(prompt) is even); every call and prompt is counted.
    ``answers`` maps a prompt's token tuple to the gold answer; ``fail_after`` raises on that call number."""

    def __init__(self, answers: dict[tuple[int, ...], str], fail_after: int | None = None) -> None:
        self.tokenizer = FakeTokenizer()
        self.answers = answers
        self.calls: list[tuple[int, SamplingSpec]] = []  # (number of prompts, spec)
        self.sequences = 0
        self.fail_after = fail_after

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[list[Sample]]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append((len(prompts), spec))
        out = []
        for p in prompts:
            gold = self.answers[tuple(p)]
            h = zlib.crc32(bytes(str(p), "utf-8"))
            group = []
            for j in range(spec.n):
                ok = (h % 2 == 0) if spec.greedy else ((h + j + spec.seed) % 3 == 0)
                text = f"<think>x</think><answer>{gold if ok else 'wrong' + str(j % 2)}</answer>"
                n_tok = 5 + j
                group.append(
                    Sample(
                        prompt_ids=list(p),
                        response_ids=[7] * n_tok,
                        logprobs=[0.0] * n_tok,
                        finish_reason="length" if j == 1 else "stop",
                        text=text,
                    )
                )
            out.append(group)
            self.sequences += spec.n
        return out

    def load_weights(self, named_tensors: Any) -> None:  # pragma: no cover
        raise NotImplementedError


def fake_engine_for(rows: list[dict[str, Any]], **kw: Any) -> FakeEngine:
    from r1cli.data.templates import render_prompt

    tok = FakeTokenizer()
    return FakeEngine({tuple(render_prompt(tok, r)): str(r["answer"]) for r in rows}, **kw)
