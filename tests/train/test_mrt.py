"""MRT's meta-prover: episode segmentation and one real RL step with the `mrt` advantage on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1cli.config import resolve
from r1cli.data.prepare import prepare
from r1cli.train.mrt import MRTProgress, segment_episodes
from r1cli.train.rl import RLStageRunner


def test_segmentation_follows_markers_and_gap() -> None:
    text = "Let x=1.\n\nSo y=2.\n\nWait, check.\n\nOk.\n\nWait again.\n\nAlternatively z.\n\nDone.</think>Wait no"
    cuts = segment_episodes(text, min_gap_paragraphs=2)
    # paragraph 2 ("Wait, check.") starts episode 2; paragraph 4 ("Wait again.") is 2 later: episode 3;
    # paragraph 5 ("Alternatively") is within 2 of it: ignored; text after </think> is never segmented
    assert [text[c:].split("\n")[0] for c in cuts] == ["Wait, check.", "Wait again."]
    assert segment_episodes(text, min_gap_paragraphs=1, max_episodes=2) == cuts[:1]
    tiny = "<think>7+5+0=12 4+8+1=13 0+3+1=4</think><answer>432</answer>"
    t_cuts = segment_episodes(tiny, markers=[""], paragraph_sep=" ", min_gap_paragraphs=1)
    assert [tiny[c:c + 5] for c in t_cuts] == ["4+8+1", "0+3+1"]


def test_split_params() -> None:
    seg, own = MRTProgress.split_params({"episode_markers": ["Wait"], "samples": 2, "progress_coef": 0.5,
                                         "baseline": "group_mean"})
    assert seg == {"episode_markers": ["Wait"], "samples": 2}
    assert own == {"progress_coef": 0.5, "baseline": "group_mean"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mrt") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=16)
    return out


def test_mrt_rl_step(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    cfg = resolve("mrt", ["rl.rollout.prompts_per_step=2", "rl.stages.0.n=2", "rl.stages.0.max_response=24",
                          "rl.stages.0.steps=1"], scale="tiny")
    runner = RLStageRunner(cfg, cfg.rl.stages[0], data_path=data, init_model=str(tiny_model),
                           stage_dir=tmp_path / "rl")
    ro, _ = runner.collect(0)
    # gold-like responses so segmentation has steps to cut: the trace of each row's own problem
    golds = [runner.rows[r] for r in ro.rows]
    ro.texts = [g["response"] for g in golds]
    ro.response_ids = [runner.tok.encode(t, add_special_tokens=False) for t in ro.texts]
    ro.sampler_logprobs = [[0.0] * len(x) for x in ro.response_ids]
    inputs, m = runner.mrt.inputs(ro, 0)
    n_steps = [g["response"].count("=") for g in golds]
    assert [len(e) for e in inputs["episode_ends"]] == [min(n, 4) for n in n_steps]
    assert all(len(mu) == len(e) + 1 and all(0 <= x <= 1 for x in mu)
               for mu, e in zip(inputs["forced_success"], inputs["episode_ends"], strict=True))
    assert m["mrt_forced_rollouts"] == sum(len(e) + 1 for e in inputs["episode_ends"]) * 2
    out = runner.update(ro, step=0)
    assert "mrt_progress_mean" in out and out["grad_norm"] >= 0
