"""long2short samples the policy as its RL stages did: with ``rl.rollout.stop`` (ORZ's ``</answer>``), a candidate
ends at the token that completes a stop string and is otherwise the candidate sampled without it."""

from __future__ import annotations

from pathlib import Path

from r1cli.config.load import resolve
from r1cli.long2short.stage import Prompts, measure, sample_groups


def _setup(tiny_model: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    ids = []
    for q in ("1+2=", "47+385=", "999+1="):
        t = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True, add_generation_prompt=True)
        ids.append(list(t["input_ids"] if hasattr(t, "keys") else t))
    golds = [{"answer": a, "id": str(i), "task": "math"} for i, a in enumerate(("3", "432", "1000"))]
    return tok, model, Prompts(ids, golds)


def test_long2short_sampling_honours_rl_rollout_stop(tiny_model: Path) -> None:
    tok, model, prompts = _setup(tiny_model)
    free_cfg = resolve("tiny-long2short")
    free = sample_groups(free_cfg, model, tok, prompts, n=4, temperature=1.0, max_tokens=24)
    texts = [tok.decode(list(c.response_ids)) for g in free for c in g]
    longest = max(texts, key=len)
    stop = longest[len(longest) // 2 : len(longest) // 2 + 2]
    assert stop.strip()
    cfg = resolve("tiny-long2short", [f"rl.rollout.stop={[stop]!r}"])
    assert cfg.rl.rollout.stop == [stop]
    cut = sample_groups(cfg, model, tok, prompts, n=4, temperature=1.0, max_tokens=24)
    n_cut = 0
    for gf, gc in zip(free, cut, strict=True):
        for f, c in zip(gf, gc, strict=True):
            assert f.response_ids[: len(c.response_ids)] == c.response_ids
            if len(c.response_ids) < len(f.response_ids):
                n_cut += 1
                assert stop in tok.decode(list(c.response_ids)) and c.finished
                assert stop not in tok.decode(list(c.response_ids[:-1]))
    assert n_cut >= 1
    # the greedy measurement stops there too: never longer than without the stop string
    m_free = measure(free_cfg, model, tok, prompts, max_tokens=24)
    m_cut = measure(cfg, model, tok, prompts, max_tokens=24)
    assert m_cut["len_mean"] <= m_free["len_mean"] and m_cut["n"] == 3

