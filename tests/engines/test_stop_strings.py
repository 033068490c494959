"""Stop strings in r1's own decoders (vLLM's ``stop`` + ``include_stop_str_in_output=True``): a response ends at
the token that completes a stop string, keeps it, and is otherwise the very response sampled without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1cli.engines.hf_rollout import HFRollout
from r1cli.engines.rollout import SamplingSpec, StopStrings


def _prompts(tok) -> list[list[int]]:  # type: ignore[no-untyped-def]
    out = []
    for q in ("Q: 1+2=", "Q: 47+385=", "Q: 999+1="):
        ids = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True, add_generation_prompt=True)
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return out


class _CharTok:
    """One character per token id (ord), to hand-check spans over several tokens."""

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i) for i in ids)


def test_stop_string_spanning_tokens_ends_at_the_completing_token() -> None:
    st = StopStrings(_CharTok(), ["</answer>", "User:"])
    text = "ab</ans"
    assert st.hits([0] * len(text), [ord(c) for c in text]) == [False] * len(text)
    # row 1 is independent of row 0
    assert st.hits([1, 0], [ord("<"), ord("w")]) == [False, False]
    assert st.hits([0, 0, 0], [ord("e"), ord("r"), ord(">")]) == [False, False, True]
    st.reset()
    assert st.hits([0], [ord(">")]) == [False]  # reset forgets the tails
    one = StopStrings(_CharTok(), ["\n"])
    assert one.hits([0, 0], [ord("a"), ord("\n")]) == [False, True]
    assert not StopStrings(_CharTok(), [])


@pytest.mark.parametrize("impl", ["fast", "hf"])
def test_stop_truncates_the_same_samples(tiny_model: Path, impl: str) -> None:
    eng = HFRollout(str(tiny_model), impl=impl)
    ps = _prompts(eng.tokenizer)
    base = SamplingSpec(n=4, temperature=1.0, max_tokens=24, seed=3)
    free = eng.generate(ps, base)
    # a stop string that some (not all) responses contain: two characters from the middle of the longest one
    longest = max((s for g in free for s in g), key=lambda s: len(s.text))
    stop = longest.text[len(longest.text) // 2 : len(longest.text) // 2 + 2]
    assert stop.strip()
    cut = eng.generate(ps, SamplingSpec(n=4, temperature=1.0, max_tokens=24, seed=3, stop=(stop,)))
    n_cut = 0
    for gf, gc in zip(free, cut, strict=True):
        for f, c in zip(gf, gc, strict=True):
            # the response with the stop is a prefix of the one without, with the same log-probs
            assert f.response_ids[: len(c.response_ids)] == c.response_ids
            assert c.logprobs == pytest.approx(f.logprobs[: len(c.logprobs)])
            if stop in f.text and len(c.response_ids) < len(f.response_ids) or (
                stop in c.text and c.response_ids[-1] != eng.tokenizer.eos_token_id
            ):
                n_cut += 1
                # it ends at the first token whose text completes the stop string, which it keeps
                assert stop in c.text and c.finish_reason == "stop"
                assert stop not in eng.tokenizer.decode(c.response_ids[:-1])
            else:
                assert c.response_ids == f.response_ids and c.finish_reason == f.finish_reason
    assert n_cut >= 1


def test_vllm_sampling_params_carry_stop_strings() -> None:
    from r1cli.engines.vllm_rollout import VLLMRollout

    class _FakeVllm:
        @staticmethod
        def SamplingParams(**kw):  # noqa: N802 - vllm's name
            return kw

    eng = VLLMRollout.__new__(VLLMRollout)
    eng._vllm = _FakeVllm
    kw = eng.sampling_params(SamplingSpec(n=2, stop=("</answer>",)))
    assert kw["stop"] == ["</answer>"] and kw["include_stop_str_in_output"] is True
    assert "stop" not in eng.sampling_params(SamplingSpec(n=2))


def test_eval_spec_hash_keeps_old_paths_and_changes_with_stop() -> None:
    from r1cli.eval.spec import sampling_spec, spec_hash

    kw = dict(n=4, temperature=1.0, top_p=1.0, max_tokens=64, template="orz", system_prompt=None, seed=0)
    plain = sampling_spec(**kw)
    assert "stop" not in plain
    assert spec_hash(plain) == spec_hash(sampling_spec(**kw, stop=[]))
    stopped = sampling_spec(**kw, stop=["</answer>"])
    assert stopped["stop"] == ["</answer>"] and spec_hash(stopped) != spec_hash(plain)


def test_orz_recipe_stops_at_answer_tag() -> None:
    from r1cli.config.load import resolve, to_dict
    from r1cli.eval.spec import spec_from_recipe

    for scale in (None, "tiny"):
        cfg = resolve("orz", scale=scale)
        assert cfg.rl.rollout.stop == ["User:", "Human:", "Assistant:", "</answer>"]
        assert spec_from_recipe(to_dict(cfg))["stop"] == cfg.rl.rollout.stop
