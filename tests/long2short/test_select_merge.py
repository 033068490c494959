"""long2short data selection (Kimi k1.5 §2.4), merging, held-out split and the length-RL recipe copy."""

from __future__ import annotations

import pytest
import torch

from r1cli.long2short.merge import average_state_dicts
from r1cli.long2short.select import Candidate, dpo_pairs, shortest_correct
from r1cli.long2short.stage import Long2ShortOptions, length_rl_recipe, split_rows


def c(n: int, correct: bool, finished: bool = True, tag: int = 0) -> Candidate:
    return Candidate(0, tuple([tag] * n), correct, finished)


def test_shortest_correct() -> None:
    g = [c(9, True), c(3, False), c(5, True, tag=1), c(5, True, tag=2), c(2, True, finished=False)]
    best = shortest_correct(g)
    assert best is not None and best.length == 5 and best.response_ids[0] == 1  # tie -> earliest
    assert shortest_correct([c(3, False), c(4, False)]) is None
    assert shortest_correct([]) is None


def test_dpo_pairs_kimi_rule() -> None:
    chosen = c(4, True, tag=1)
    g = [
        c(10, True, tag=2),  # correct, 2.5x -> rejected
        c(6, True, tag=3),  # correct, 1.5x -> rejected (>= 1.5x)
        c(5, True, tag=4),  # correct, 1.25x -> not rejected
        chosen,
        c(7, False, tag=5),  # wrong and longer -> rejected
        c(3, False, tag=6),  # wrong but shorter -> not rejected
        c(7, False, tag=5),  # duplicate of a rejected one -> once
    ]
    pairs = dpo_pairs(g)
    assert all(p[0] == chosen for p in pairs)
    assert [p[1].length for p in pairs] == [10, 7, 6]  # longest rejected first
    assert len(dpo_pairs(g, max_pairs=2)) == 2
    assert dpo_pairs([c(5, False), c(6, False)]) == []
    assert dpo_pairs([c(5, True)]) == []
    with pytest.raises(ValueError):
        dpo_pairs(g, ratio=0.5)


def test_merge_is_exact_average() -> None:
    torch.manual_seed(0)
    a = {"w": torch.randn(3, 4), "b": torch.randn(4).to(torch.bfloat16), "steps": torch.tensor([7])}
    b = {"w": torch.randn(3, 4), "b": torch.randn(4).to(torch.bfloat16), "steps": torch.tensor([7])}
    m = average_state_dicts(a, b, 0.5)
    torch.testing.assert_close(m["w"], (a["w"] + b["w"]) / 2)
    assert m["b"].dtype == torch.bfloat16
    torch.testing.assert_close(m["b"], ((a["b"].float() + b["b"].float()) / 2).to(torch.bfloat16))
    assert int(m["steps"]) == 7
    torch.testing.assert_close(average_state_dicts(a, b, 0.0)["w"], a["w"])
    torch.testing.assert_close(average_state_dicts(a, b, 1.0)["w"], b["w"])
    torch.testing.assert_close(average_state_dicts(a, b, 0.25)["w"], 0.75 * a["w"] + 0.25 * b["w"])
    with pytest.raises(ValueError, match="different parameters"):
        average_state_dicts(a, {"w": b["w"]})
    with pytest.raises(ValueError, match="shape"):
        average_state_dicts({"w": a["w"]}, {"w": torch.zeros(2)})
    with pytest.raises(ValueError, match="buffers differ"):
        average_state_dicts({"s": torch.tensor([1])}, {"s": torch.tensor([2])})


def test_merge_models_files(tiny_model, tmp_path) -> None:  # noqa: ANN001
    from r1cli.engines.hf_rollout import load_model
    from r1cli.long2short.merge import merge_models

    short = load_model(str(tiny_model), dtype="float32")
    with torch.no_grad():
        for p in short.parameters():
            p.add_(1.0)
    short.save_pretrained(tmp_path / "short")
    merge_models(tiny_model, tmp_path / "short", tmp_path / "merged", alpha=0.5)
    long_sd = load_model(str(tiny_model), dtype="float32").state_dict()
    merged = load_model(str(tmp_path / "merged"), dtype="float32").state_dict()
    for k, v in long_sd.items():
        torch.testing.assert_close(merged[k], v + 0.5)
    assert (tmp_path / "merged" / "tokenizer.json").exists()


def test_split_rows_disjoint_and_deterministic() -> None:
    tr, held = split_rows(100, seed=3)
    assert len(held) == 25 and len(tr) == 75 and not set(tr) & set(held)
    assert split_rows(100, seed=3) == (tr, held)
    assert split_rows(100, seed=4) != (tr, held)
    assert len(split_rows(10_000, seed=0)[1]) == 256
    assert len(split_rows(10, seed=0, measure=50)[1]) == 9  # at least one training row stays
    with pytest.raises(ValueError):
        split_rows(1, seed=0)


def test_length_rl_recipe_copy() -> None:
    from r1cli.config import resolve

    cfg = resolve("tiny", ["long2short.steps=7", "long2short.n=4", "long2short.lr=0.01"])
    r = length_rl_recipe(cfg, Long2ShortOptions("length-rl"), max_tokens=33, temperature=0.9, before_len=40)
    assert [s.name for s in r.rl.stages] == ["long2short"]
    st = r.rl.stages[0]
    assert (st.steps, st.n, st.lr, st.max_response, st.temperature) == (7, 4, cfg.rl.train.lr, 33, 0.9)
    assert r.rl.reward.shaping[-1].name == "kimi_length"
    assert r.rl.rollout.dynamic_sampling.filter is None  # all-correct groups carry the length signal
    assert cfg.rl.rollout.dynamic_sampling.filter == "dapo"  # original untouched
    l1 = length_rl_recipe(cfg, Long2ShortOptions("length-rl", shaping="l1_exact", alpha=0.01), max_tokens=33,
                          temperature=1.0, before_len=40)
    assert l1.rl.reward.shaping[-1].params == {"target_len": 20, "alpha": 0.01}
    with pytest.raises(ValueError):
        length_rl_recipe(cfg, Long2ShortOptions("length-rl", shaping="x"), max_tokens=3, temperature=1,
                         before_len=1)
