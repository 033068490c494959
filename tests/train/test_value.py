"""Value pretraining (r1 train value): mechanics, resume and learning (prompt-predictable returns) on the
untrained tiny model (fast); the acceptance (falling value loss, explained variance > 0 on the tiny task's SFT
model) in a slow tiny-ppo run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(steps: int, *extra: str):  # noqa: ANN202
    from r1cli.config import resolve

    return resolve(
        "tiny",
        [
            "warmups.value.enabled=true",
            f"warmups.value.steps={steps}",
            "warmups.value.lr=1e-3",
            "rl.algorithm.advantage=gae",
            "rl.stages=[{name: s1, steps: 1, max_response: 8, n: 2, prompts_per_step: 4}]",
            # untrained model: answers are wrong, so give the returns a length-dependent part
            "rl.reward.shaping=[{name: overlong, params: {max_len: 8, cache_len: 4}}]",
            "rl.checkpoint.every=1",
            "rl.checkpoint.keep=2",
            *extra,
        ],
    )


def _data(tmp_path: Path) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=16)
    return out


def test_value_warmup_runs_exports_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    from r1cli.train.critic import Critic, load_critic
    from r1cli.train.value import run_value_warmup
    from r1cli.utils.io import read_jsonl

    data = _data(tmp_path)
    run = tmp_path / "run"
    kw = dict(data_path=data, init_model=str(tiny_model), out_dir=run / "model", ckpt_dir=run / "ckpt",
              metrics_path=run / "metrics.jsonl")
    run_value_warmup(_cfg(4), **kw)
    full = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in full] == [0, 1, 2, 3]
    assert all(r["return_mean"] < 0 for r in full)  # overlong penalty on (mostly) truncated responses
    assert full[-1]["value_loss"] < full[0]["value_loss"]  # the critic moves toward the returns
    assert full[0]["value_mean"] == 0.0  # zero-initialised head
    model, head = load_critic(run / "model")
    assert float(head.weight.detach().abs().sum()) > 0
    Critic(model, head, lr=1e-3, device="cpu")
    # resume: the newest checkpoint is step 3; a rerun redoes step 3 identically
    (run / "model").rename(run / "model-first")
    run_value_warmup(_cfg(4), **kw)
    again = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in again] == [0, 1, 2, 3]
    assert again[3]["value_loss"] == pytest.approx(full[3]["value_loss"], rel=1e-5)
    assert again[3]["explained_var"] == pytest.approx(full[3]["explained_var"], abs=1e-6)
    # the default trackers (jsonl + tensorboard): the resumed run's events replace the redone step's
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard" / "run"))
    acc.Reload()
    tb = [(e.step, e.value) for e in acc.Scalars("value_loss")]
    assert [s for s, _ in tb] == [0, 1, 2, 3]
    assert [v for _, v in tb] == pytest.approx([r["value_loss"] for r in again], rel=1e-6)


def _three_digit(response: str, gold: dict, **_: object):  # noqa: ANN202
    """Test reward known from the prompt alone: 1 when the first operand has three digits."""
    from r1cli.rewards.result import RewardResult

    hit = int(gold["a"]) >= 100
    return RewardResult(float(hit), hit, None, "ok")


def test_value_warmup_learns_prompt_dependent_returns(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small warm-up whose returns are predictable (from the prompt): the value loss falls and the explained
    variance — of predictions made before each mini-batch's own step, i.e. on rollouts not yet trained on —
    becomes clearly positive. With one optimizer step per rollout batch (the old behaviour) the same run
    learns about the mean only."""
    import r1cli.rewards.pool as pool_mod
    from r1cli.config import resolve
    from r1cli.data.prepare import prepare
    from r1cli.rewards import REWARDS
    from r1cli.train.value import run_value_warmup
    from r1cli.utils.io import read_jsonl

    monkeypatch.setitem(REWARDS, "_three_digit", _three_digit)
    from r1cli.config import names

    monkeypatch.setitem(names.KINDS, "reward", (*names.KINDS["reward"], "_three_digit"))  # a recipe may name it
    monkeypatch.setattr(pool_mod, "CHEAP_REWARDS", pool_mod.CHEAP_REWARDS | {"_three_digit"})
    data = tmp_path / "train.parquet"
    prepare("synth:addition", data, template="tiny-chat", task="addition", size=256)

    def run(name: str, mini: int | None, epochs: int) -> list[dict]:
        cfg = resolve("tiny", [
            "warmups.value.enabled=true", "warmups.value.steps=24", "warmups.value.lr=3e-4",
            f"warmups.value.epochs={epochs}", f"warmups.value.mini_batch_size={'null' if mini is None else mini}",
            "rl.reward.name=_three_digit", "rl.algorithm.advantage=gae",
            "rl.stages=[{name: s1, steps: 1, max_response: 4, n: 2, prompts_per_step: 16}]",
            "rl.checkpoint.every=1000",
        ])
        d = tmp_path / name
        run_value_warmup(cfg, data_path=data, init_model=str(tiny_model), out_dir=d / "model",
                         ckpt_dir=d / "ckpt", metrics_path=d / "metrics.jsonl")
        return read_jsonl(d / "metrics.jsonl")

    def mean(rows: list[dict], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    mini = run("mini", 8, 2)
    assert len(mini) == 24 and mini[0]["critic_steps"] == 2 * 4  # 32 rollouts / 8, two passes
    assert 0.1 < mean(mini, "return_mean") < 0.9  # both outcomes occur
    assert mean(mini[-8:], "value_loss") < 0.5 * mean(mini[:4], "value_loss")
    assert mean(mini[-8:], "explained_var") > 0.5
    full = run("full", None, 1)
    assert full[0]["critic_steps"] == 1
    assert mean(full[-8:], "explained_var") < mean(mini[-8:], "explained_var")


def _rand_batch(seed: int, rows: int):  # noqa: ANN202
    import random

    from r1cli.engines.batch import build_batch

    rng = random.Random(seed)
    prompts = [[rng.randrange(10, 200) for _ in range(rng.randint(2, 6))] for _ in range(rows)]
    responses = [[rng.randrange(10, 200) for _ in range(rng.randint(1, 5))] for _ in range(rows)]
    return prompts, build_batch(prompts, responses, pad_id=0)


def test_critic_mini_batches(tiny_model: Path) -> None:
    """``mini_batch_size`` rows per optimizer step: epochs·⌈B/k⌉ steps; k = B is the full-batch update; the
    first-pass predictions of each mini-batch are made before its own step (the first one sees V = 0)."""
    from r1cli.engines.hf_rollout import load_model
    from r1cli.train.critic import Critic, hidden_size, zero_head

    prompts, batch = _rand_batch(seed=5, rows=6)
    mask = batch.response_mask
    ret = torch.tensor([1.0 + p[-1] % 2 for p in prompts])[:, None] * mask  # nonzero: every step moves V

    def critic(k: int | None, epochs: int = 1) -> Critic:
        torch.manual_seed(0)
        m = load_model(str(tiny_model), dtype="float32")
        return Critic(m, zero_head(hidden_size(m)), lr=1e-2, micro_batch_size=2, value_clip=None,
                      epochs=epochs, mini_batch_size=k, device="cpu")

    full, same = critic(None), critic(6)
    m_full = full.update(batch, returns=ret, old_values=torch.zeros_like(mask), mask=mask)
    m_same = same.update(batch, returns=ret, old_values=torch.zeros_like(mask), mask=mask)
    assert m_full["critic_steps"] == m_same["critic_steps"] == 1.0
    assert m_full["value_loss"] == pytest.approx(m_same["value_loss"])
    torch.testing.assert_close(full.values(batch), same.values(batch))

    c = critic(4, epochs=3)
    m = c.update(batch, returns=ret, old_values=torch.zeros_like(mask), mask=mask)
    assert m["critic_steps"] == 3 * 2  # ⌈6/4⌉ = 2 steps per pass
    # rows 0-3 are predicted by the zero head (V = 0); rows 4-5 after one step, so the first-pass loss is
    # below the V = 0 loss only through rows 4-5
    zero_loss = 0.5 * float((ret**2 * mask).sum() / mask.sum())
    assert m["value_loss"] != pytest.approx(zero_loss)
    rows03 = 0.5 * float((ret[:4] ** 2 * mask[:4]).sum())
    assert m["value_loss"] * float(mask.sum()) >= rows03 - 1e-6
    with pytest.raises(ValueError, match="mini_batch_size"):
        critic(0)


def test_critic_mini_batches_count(tiny_model: Path) -> None:
    """``mini_batches`` = k (rl.train.critic_mini_batches): ⌈B/k⌉ rows per step, so 10 rows and k = 3 take 3
    steps per pass; k = 1 is the full-batch update, number for number; it excludes ``mini_batch_size``."""
    from r1cli.engines.hf_rollout import load_model
    from r1cli.train.critic import Critic, hidden_size, zero_head

    prompts, batch = _rand_batch(seed=7, rows=10)
    mask = batch.response_mask
    ret = torch.tensor([1.0 + p[-1] % 2 for p in prompts])[:, None] * mask

    def critic(epochs: int = 1, **kw: int | None) -> Critic:
        torch.manual_seed(0)
        m = load_model(str(tiny_model), dtype="float32")
        return Critic(m, zero_head(hidden_size(m)), lr=1e-2, micro_batch_size=3, value_clip=None,
                      epochs=epochs, device="cpu", **kw)

    def update(c: Critic) -> dict[str, float]:
        return c.update(batch, returns=ret, old_values=torch.zeros_like(mask), mask=mask)

    c3 = critic(epochs=2, mini_batches=3)
    assert [c3.step_rows(10), c3.step_rows(2), c3.step_rows(12)] == [4, 1, 4]
    assert update(c3)["critic_steps"] == 2 * 3
    assert critic(mini_batches=6).step_rows(10) == 2  # 5 steps of 2: never more steps than needed
    assert update(critic(mini_batches=6))["critic_steps"] == 5
    assert update(critic(mini_batches=50))["critic_steps"] == 10  # never more steps than rows

    full, one = critic(epochs=2), critic(epochs=2, mini_batches=1)
    m_full, m_one = update(full), update(one)
    assert m_full == m_one and m_one["critic_steps"] == 2
    torch.testing.assert_close(full.values(batch), one.values(batch), rtol=0, atol=0)
    for k, v in full.head.state_dict().items():
        assert torch.equal(v, one.head.state_dict()[k])

    with pytest.raises(ValueError, match="not both"):
        critic(mini_batch_size=4, mini_batches=3)
    with pytest.raises(ValueError, match="mini_batches must be >= 1"):
        critic(mini_batches=0)


def test_value_warmup_starts_from_critic_init(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rl.train.critic_init (relative to the run dir) is where the warm-up's critic starts; a critic export keeps
    its value head, so the first step's predictions are not the zero head's V = 0."""
    import r1cli.train.critic as critic_mod
    from r1cli.engines.hf_rollout import load_model
    from r1cli.train.critic import Critic, hidden_size
    from r1cli.train.value import run_value_warmup
    from r1cli.utils.io import read_jsonl

    data = _data(tmp_path)
    run = tmp_path / "run"
    model = load_model(str(tiny_model), dtype="float32")
    torch.manual_seed(11)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    head = torch.nn.Linear(hidden_size(model), 1)
    torch.nn.init.constant_(head.bias, 0.5)
    Critic(model, head, lr=1e-3, device="cpu").export(run / "models" / "rm")
    want = {k: v.detach().clone() for k, v in model.state_dict().items()}

    seen: list[tuple[str, dict[str, Any]]] = []
    real = critic_mod.fresh_critic

    def spy(path: str, dtype: str = "float32", device: str = "cpu"):  # noqa: ANN202
        out = real(path, dtype=dtype, device=device)
        seen.append((path, {k: v.detach().clone() for k, v in out[0].state_dict().items()}))
        return out

    monkeypatch.setattr(critic_mod, "fresh_critic", spy)
    cfg = _cfg(1, "rl.train.critic_init=models/rm")
    run_value_warmup(cfg, data_path=data, init_model=str(tiny_model), out_dir=run / "warmup" / "value" / "model",
                     ckpt_dir=run / "warmup" / "value" / "ckpt", metrics_path=run / "metrics.jsonl")
    assert [p for p, _ in seen] == [str(run / "models" / "rm")]  # resolved inside the run dir
    start = seen[0][1]
    for k, v in want.items():  # the warm-up's critic started from the export's weights, not the start model's
        assert torch.equal(start[k], v), k
    first = read_jsonl(run / "metrics.jsonl")[0]
    assert first["value_mean"] != 0.0  # the export's head (bias 0.5), not a zero head


def test_value_warmup_cli_refuses_when_disabled(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from r1cli.cli.main import app
    from r1cli.config import resolve
    from r1cli.pipeline.runner import freeze

    freeze(resolve("tiny"), tmp_path / "run")
    res = CliRunner().invoke(app, ["train", "value", "--run", str(tmp_path / "run")])
    assert res.exit_code == 2 and "warmups.value.enabled is false" in res.output


@pytest.mark.slow
def test_tiny_ppo_value_pretraining_and_critic_rl(tmp_path: Path) -> None:
    """tiny-ppo up to the RL stage: value loss falls, explained variance > 0; a PPO stage with the critic runs."""
    from r1cli.utils.io import read_jsonl

    run = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "r1cli", "pipeline", "tiny-ppo", "--run", str(run), "--until", "rl",
           "--set", "curation.filter.enabled=false", "--set", "rl.stages.0.steps=6"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3000)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    vm = read_jsonl(run / "warmup" / "value" / "metrics.jsonl")
    assert len(vm) == 100 and vm[0]["critic_steps"] == 4  # 256 rollouts / 64 per critic step

    def mean(rows: list[dict], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    assert mean(vm[-20:], "value_loss") < mean(vm[:5], "value_loss")
    # explained variance of predictions on each step's fresh rollouts (before the critic trains on them):
    # ~0 while the critic learns the mean, then positive (measured: 10-step means -0.002 -> 0.056)
    assert mean(vm[:5], "explained_var") < mean(vm[-20:], "explained_var")
    assert mean(vm[-20:], "explained_var") > 0.0
    assert abs(mean(vm[-5:], "value_mean") - mean(vm[-5:], "return_mean")) < 0.2
    rm = read_jsonl(run / "rl" / "s1" / "metrics.jsonl")
    assert len(rm) == 6 and all("value_loss" in r and "explained_var" in r for r in rm)
    assert rm[0]["value_mean"] > 0.2  # the critic starts from the pretrained one, not from V = 0
    assert (run / "rl" / "s1" / "critic" / "value_head.pt").exists()
    assert json.loads((run / "rl" / "s1" / "DONE").read_text())["steps"] == 6
