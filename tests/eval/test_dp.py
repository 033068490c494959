from __future__ import annotations

from pathlib import Path

import pytest

from r1cli.eval.dp import DataParallelRollout, device_groups, split_even


def test_split_even() -> None:
    assert split_even(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert split_even(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    assert split_even(0, 2) == [(0, 0), (0, 0)]


def test_device_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert device_groups(8, 2) == ["0,1", "2,3", "4,5", "6,7"]
    assert device_groups(3, 1) == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert device_groups(4, 2) == ["4,5", "6,7"]
    with pytest.raises(ValueError):
        device_groups(1, 2)


@pytest.mark.slow
def test_data_parallel_hf_matches_shapes(tiny_model: Path) -> None:
    from r1cli.engines.rollout import SamplingSpec

    eng = DataParallelRollout("hf", str(tiny_model), 2)
    try:
        prompts = [
            eng.tokenizer("1+2=")["input_ids"],
            eng.tokenizer("3+4=")["input_ids"],
            eng.tokenizer("5+6=")["input_ids"],
        ]
        out = eng.generate(prompts, SamplingSpec(n=2, temperature=1.0, max_tokens=4, seed=3))
        assert [len(g) for g in out] == [2, 2, 2]
        assert [g[0].prompt_ids for g in out] == prompts
        again = eng.generate(prompts, SamplingSpec(n=2, temperature=1.0, max_tokens=4, seed=3))
        assert [[s.response_ids for s in g] for g in again] == [[s.response_ids for s in g] for g in out]
    finally:
        eng.close()
