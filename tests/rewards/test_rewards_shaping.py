from __future__ import annotations

import math

import pytest

from r1cli.rewards import SHAPING, kimi_length_penalty, repetition_token_penalties, target_length


def test_cosine_demystify_endpoints_and_mid() -> None:
    cos = SHAPING["cosine"]
    assert cos(score=1, correct=True, length=0, max_len=1000) == pytest.approx(2.0)
    assert cos(score=0, correct=False, length=0, max_len=1000) == pytest.approx(-10.0)
    # p = 0.5: r_L + 0.5 (r_0 - r_L)(1 + cos(pi/2)) = midpoint
    assert cos(score=1, correct=True, length=500, max_len=1000) == pytest.approx(1.5)
    assert cos(score=0, correct=False, length=500, max_len=1000) == pytest.approx(-5.0)
    # p = 0.25: 1 + 0.5 * 1 * (1 + cos(pi/4))
    assert cos(score=1, correct=True, length=250, max_len=1000) == pytest.approx(
        1 + 0.5 * (1 + math.cos(math.pi / 4))
    )
    # exceed rule: L + 16 >= L_max -> -10
    assert cos(score=1, correct=True, length=984, max_len=1000) == -10.0
    assert cos(score=1, correct=True, length=983, max_len=1000) > 1.0


def test_cosine_open_rs() -> None:
    """open-r1 get_cosine_scaled_reward (Open RS Exp 3), weight 2 folded in: correct 0.5..1.0 -> 1..2,
    wrong 0.0 at length 0 -> -0.5 at max_len -> 0..-1; length = characters of the response, p not clipped."""
    kw = dict(max_len=100, r_correct_0=2.0, r_correct_L=1.0, r_wrong_0=0.0, r_wrong_L=-1.0,
              exceed_reward=None, length_unit="chars", clip_progress=False)
    cos = SHAPING["cosine"]
    # token length is ignored: 25 characters -> p = 0.25
    assert cos(score=1, correct=True, length=999, response="x" * 25, **kw) == pytest.approx(
        1.0 + 0.5 * (1 + math.cos(math.pi / 4)))
    assert cos(score=1, correct=True, length=1, response="", **kw) == pytest.approx(2.0)
    assert cos(score=1, correct=True, length=1, response="x" * 100, **kw) == pytest.approx(1.0)
    assert cos(score=0, correct=False, length=1, response="", **kw) == pytest.approx(0.0)
    assert cos(score=0, correct=False, length=1, response="x" * 50, **kw) == pytest.approx(-0.5)
    assert cos(score=0, correct=False, length=1, response="x" * 100, **kw) == pytest.approx(-1.0)
    # unclipped progress as the released code: p = 1.5 -> cos(1.5 pi) = 0 -> midpoint again
    assert cos(score=0, correct=False, length=1, response="x" * 150, **kw) == pytest.approx(-0.5)
    # clipped (Demystify default): stays at the L_max value
    assert cos(score=0, correct=False, length=1, response="x" * 150, **{**kw, "clip_progress": True}) == (
        pytest.approx(-1.0))
    with pytest.raises(ValueError, match="response"):
        cos(score=0, correct=False, length=1, **kw)


def test_open_rs_recipe_cosine_matches_released_code() -> None:
    from r1cli.config.load import resolve

    term = resolve("open-rs", []).rl.reward.shaping[0]
    assert term.name == "cosine"
    p = dict(term.params)
    assert p["length_unit"] == "chars" and p["clip_progress"] is False and p["max_len"] == 3584
    cos = SHAPING["cosine"]
    # wrong: 0 at length 0 -> -1 (= 2 x -0.5) at max length; correct: 2 -> 1
    assert cos(score=0, correct=False, length=0, response="", **p) == pytest.approx(0.0)
    assert cos(score=0, correct=False, length=0, response="y" * 3584, **p) == pytest.approx(-1.0)
    assert cos(score=1, correct=True, length=0, response="", **p) == pytest.approx(2.0)
    assert cos(score=1, correct=True, length=0, response="y" * 3584, **p) == pytest.approx(1.0)


def test_dapo_overlong() -> None:
    ov = SHAPING["overlong"]
    kw = dict(max_len=20480, cache_len=4096)
    assert ov(score=1.0, correct=True, length=16384, **kw) == 1.0  # exactly L_max - L_cache: no penalty
    assert ov(score=1.0, correct=True, length=16385, **kw) == pytest.approx(1.0 - 1 / 4096)
    assert ov(score=1.0, correct=True, length=18432, **kw) == pytest.approx(0.5)
    assert ov(score=-1.0, correct=False, length=20480, **kw) == pytest.approx(-2.0)  # at L_max: -1
    assert ov(score=1.0, correct=True, length=20481, **kw) == pytest.approx(0.0)  # beyond: -1


def test_l1() -> None:
    assert target_length("Solve it. Think for 1200 tokens.") == 1200
    assert target_length("Think for maximum 512 tokens.") == 512
    ex = SHAPING["l1_exact"]
    assert ex(score=1.0, correct=True, length=1000, target_len=2000) == pytest.approx(1 - 0.0003 * 1000)
    assert ex(score=0.0, correct=False, length=1500, prompt="Think for 1000 tokens.") == pytest.approx(-0.15)
    mx = SHAPING["l1_max"]
    assert mx(score=1.0, correct=True, length=1000, target_len=1000) == pytest.approx(0.5)
    assert mx(score=1.0, correct=True, length=0, target_len=1000) == pytest.approx(0.8)
    assert mx(score=1.0, correct=True, length=3000, target_len=1000) == 0.0
    assert mx(score=0.0, correct=False, length=10, target_len=1000) == 0.0
    with pytest.raises(ValueError):
        ex(score=1.0, correct=True, length=10)


def test_repetition() -> None:
    rep = SHAPING["repetition"]
    ids = [1, 2, 3] * 4  # 12 tokens, trigrams: 10, unique 3 -> 1 - 3/10 = 0.7
    assert rep(score=1.0, correct=True, length=12, token_ids=ids, ngram_size=3) == pytest.approx(1 - 0.7)
    assert rep(score=1.0, correct=True, length=12, token_ids=list(range(12)), ngram_size=3) == 1.0
    assert rep(score=1.0, correct=True, length=3, text="a b c a b c", max_penalty=-0.5) == pytest.approx(
        1 - 0.5 * (1 - 3 / 4)
    )
    assert rep(score=1.0, correct=True, length=12, token_ids=ids, ngram_size=3, only_wrong=True) == 1.0
    assert repetition_token_penalties([1, 2, 1, 2, 1], ngram_size=2, penalty=-0.05) == [
        0,
        0,
        -0.05,
        -0.05,
        -0.05,
    ]


def test_format_term() -> None:
    f = SHAPING["format"]
    assert f(score=1.0, correct=True, length=5, response="<think>a</think> <answer>b</answer>") == 2.0
    assert f(score=1.0, correct=True, length=5, response="<think>a</think>b") == 1.0
    assert f(score=0.0, correct=False, length=5, response="a\n</think>\nb", pattern="open_rs") == 1.0
    assert f(score=0.0, correct=False, length=5, response="ab", pattern="think", penalty=-1.0) == -1.0


def test_kimi() -> None:
    # lengths 100, 200, 300: lambda = 0.5, 0, -0.5
    assert kimi_length_penalty([100, 200, 300], [True, True, True]) == [0.5, 0.0, -0.5]
    assert kimi_length_penalty([100, 200, 300], [False, False, False]) == [0.0, 0.0, -0.5]
    assert kimi_length_penalty([100, 100], [True, False]) == [0.0, 0.0]
    assert kimi_length_penalty([], []) == []
    with pytest.raises(ValueError):
        kimi_length_penalty([1], [])


def test_chaining() -> None:
    s = 1.0
    s = SHAPING["overlong"](score=s, correct=True, length=18432, max_len=20480, cache_len=4096)
    s = SHAPING["format"](score=s, correct=True, length=18432, response="<think>x</think><answer>y</answer>")
    assert s == pytest.approx(1.5)
