"""Registry-backed names: one torch-free list each, equal to its registry; unknown names fail at resolve time."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from r1cli.config import names, resolve
from r1cli.config.schema import AlgorithmConfig, KLConfig, check_band
from r1cli.errors import R1ConfigError, R1InputError


def test_each_names_list_equals_its_registry() -> None:
    from r1cli import algos, rewards

    assert list(names.ADVANTAGES) == list(algos.ADVANTAGES)
    assert list(names.POLICY_LOSSES) == list(algos.POLICY_LOSSES)
    assert list(names.KL_TYPES) == list(algos.KL)
    assert list(names.AGG_MODES) == list(algos.AGG_MODES)
    assert list(names.FILTERS) == list(algos.FILTERS)
    assert list(names.REWARDS) == list(rewards.REWARDS)
    assert list(names.SCHEMES) == list(rewards.MATH_SCHEMES)
    assert list(names.EXTRACTORS) == list(rewards.EXTRACTORS)
    assert list(names.SHAPING) == list(rewards.SHAPING)
    assert list(names.TOKEN_SHAPING) == list(rewards.TOKEN_SHAPING)
    # the schema's Literal fields name only registry keys
    kl_literal = typing.get_args(KLConfig.model_fields["type"].annotation)
    assert set(kl_literal) <= set(algos.KL)
    assert typing.get_args(AlgorithmConfig.model_fields["loss_agg"].annotation) == tuple(algos.AGG_MODES)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rl.algorithm.advantage=grpoo", "unknown advantage 'grpoo'; valid: gae"),
        ("rl.algorithm.policy_loss=ppo", "unknown policy loss 'ppo'; valid: ppo_clip"),
        ("rl.algorithm.kl.type=k4", "rl.algorithm.kl.type"),
        ("rl.algorithm.loss_agg=mean", "rl.algorithm.loss_agg"),
        ("rl.reward.name=mathh", "unknown reward 'mathh'; valid: math"),
        ("rl.reward.params.scheme=pm_1", "unknown scheme 'pm_1'; valid: binary, pm1"),
        ("rl.reward.params.extractor=boxd", "unknown extractor 'boxd'; valid: auto, boxed"),
        ("rl.reward.by_task={countdown: {name: countdwn}}", "unknown reward 'countdwn'"),
        ("rl.reward.by_task={countdown: {name: exact, params: {extractor: tag}}}", "unknown extractor 'tag'"),
        ("rl.reward.shaping=[{name: cosinus}]", "unknown shaping term 'cosinus'"),
        ("rl.rollout.dynamic_sampling.filter=dap", "unknown dynamic-sampling filter 'dap'; valid: dapo"),
        ("curation.filter.acc=0.9:0.1", "lower bound 0.9 exceeds upper bound 0.1"),
        ("curation.filter.acc=half", "expected LO:HI"),
    ],
)
def test_unknown_names_fail_at_resolve(override: str, message: str) -> None:
    with pytest.raises(R1ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve("tiny", [override])


def test_known_names_and_user_reward_functions_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_rewards.py").write_text("def score(response, gold, **kw):\n    return 1.0\n")
    (tmp_path / "pkgmod.py").write_text("def fn(response, gold, **kw):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    r = resolve("tiny", ["rl.reward.name=my_rewards.py:score", "rl.reward.shaping=[{name: kimi_length}]",
                         "rl.reward.params.scheme=pm1", "rl.algorithm.kl.type=low_var_kl"])
    assert r.rl.reward.name == f"{tmp_path / 'my_rewards.py'}:score"  # stored absolute
    assert resolve("tiny", ["rl.reward.name=pkgmod:fn"]).rl.reward.name == "pkgmod:fn"


@pytest.mark.parametrize("band", ["0.2:0.8", "1:15/16", ":0.0625", "0.5:", "0.9:0.1", "0.5", "a:b", "1:2/0",
                                  "-0.1:0.5", "0:1.5", "1/3:2/3", "3:4/x"])
def test_band_check_agrees_with_the_filter_parser(band: str) -> None:
    from r1cli.data.filter import parse_band

    try:
        want = parse_band(band)
    except R1InputError:
        with pytest.raises(ValueError):
            check_band(band)
    else:
        assert check_band(band) == pytest.approx(want)
