"""End to end on the embedded tiny model (offline): r1cli.eval.evaluate and the pipeline eval stage."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from r1cli.eval import EvalOutput, EvalSampling, evaluate, run_eval_stage


def test_evaluate_tiny_addition_and_aime(
    tiny_model: Path, eval_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sampling = EvalSampling(n=4, temperature=1.0, top_p=1.0, max_tokens=8, limit=6)
    kw = dict(output=EvalOutput(tmp_path), data_dir=eval_data_dir, progress=False)
    res = evaluate(str(tiny_model), "addition,aime24", sampling, **kw)
    assert [r.benchmark for r in res] == ["addition", "aime24"]
    for r in res:
        assert r.out_dir.parent.parent.name == "model" and r.generated == 6 * 5
        m = json.loads((r.out_dir / "metrics.json").read_text())
        assert m["n_problems"] == 6 and m["n_samples"] == 24
        assert 0.0 <= m["avg@4"] <= m["pass@4"] <= 1.0
        assert m["response_len_max"] <= 8
        assert m["spec"]["model_fingerprint"] and not m["spec"]["model_fingerprint"].startswith("id:")
        lines = (r.out_dir / "samples.jsonl").read_text().splitlines()
        assert len(lines) == 30
    again = evaluate(str(tiny_model), ["addition", "aime24"], sampling, **kw)
    assert [r.generated for r in again] == [0, 0]


def _make_run(tmp_path: Path, tiny_model: Path, extra: list[str]) -> tuple[object, Path]:
    from r1cli.config import resolve, to_yaml
    from r1cli.data.prepare import prepare

    cfg = resolve("tiny", ["eval.limit=5", "eval.max_tokens=8", "eval.n=2", "eval.k=[1,2]", *extra])
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(to_yaml(cfg))
    prepare(
        "synth:addition",
        run / "data" / "test.parquet",
        split="test",
        task="addition",
        template=cfg.template,
        size=16,
    )
    shutil.copytree(tiny_model, run / "base" / "model")
    shutil.copytree(tiny_model, run / "warmup" / "sft" / "model")
    return cfg, run


def test_pipeline_stage_writes_the_planned_path(tiny_model: Path, tmp_path: Path) -> None:
    from r1cli.config import load_frozen, to_dict
    from r1cli.pipeline.dag import Plan

    _, run = _make_run(tmp_path, tiny_model, ["eval.models=[sft]"])
    cfg = load_frozen(run)
    path = run_eval_stage(cfg, run, "sft", "test", progress=False)
    planned = Plan(to_dict(cfg)).eval_targets()
    assert [str(path.relative_to(run))] == planned
    m = json.loads(path.read_text())
    for key in (
        "greedy_acc",
        "avg@2",
        "pass@1",
        "pass@2",
        "maj@2",
        "response_len_mean",
        "truncation_rate",
        "n_problems",
        "benchmark",
        "model",
        "spec",
    ):
        assert key in m, key
    assert m["n_problems"] == 5 and m["benchmark"] == "test" and m["model"] == "sft"
    assert m["spec"]["reward"] == "exact"
    # the eval table reaches the default tracker besides jsonl (tensorboard), as stage eval/<model>/<benchmark>
    if importlib.util.find_spec("tensorboard") is not None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(run / "tensorboard" / "eval" / "sft" / "test"))
        acc.Reload()
        assert acc.Scalars("n_problems")[0].value == 5
        text = acc.Tensors("eval/text_summary")[0].tensor_proto.string_val[0].decode()
        assert text.startswith("| benchmark | model | n_problems |") and "| test | sft | 5 |" in text
        assert "spec.reward" in text
    # rerun: nothing generated
    run_eval_stage(
        cfg, run, "sft", "test", rollout=lambda: (_ for _ in ()).throw(AssertionError()), progress=False
    )


def test_length_budgets_evaluate_each_budget_with_its_instruction(tiny_model: Path, tmp_path: Path) -> None:
    """L1's per-budget protocol: eval.length_budgets [8, 16] -> test@8 and test@16, each prompt carrying its
    'Think for N tokens.' instruction, at the paths the pipeline plans."""
    from r1cli.config import load_frozen, to_dict
    from r1cli.pipeline.dag import Plan

    _, run = _make_run(tmp_path, tiny_model, ["eval.models=[sft]", "eval.length_budgets=[8, 16]"])
    cfg = load_frozen(run)
    planned = Plan(to_dict(cfg)).eval_targets()
    assert [p.split("/")[2] for p in planned] == ["test@8", "test@16"]
    for bench in ("test@8", "test@16"):
        path = run_eval_stage(cfg, run, "sft", bench, progress=False)
        assert str(path.relative_to(run)) in planned
        assert json.loads(path.read_text())["benchmark"] == bench
        samples = [json.loads(x) for x in (path.parent / "samples.jsonl").read_text().splitlines()]
        assert samples
    from r1cli.eval.api import recipe_test_data, with_budget

    d = with_budget(recipe_test_data(cfg, run), 8)
    msgs = d.rows[0].get("messages") or [{"role": "user", "content": d.rows[0]["prompt"]}]
    assert msgs[-1]["content"].endswith("\n\nThink for 8 tokens.") and d.name == "test@8"
    assert json.loads(d.rows[0]["meta"])["target_len"] == 8


def test_budget_names_parse() -> None:
    from r1cli.config import resolve
    from r1cli.errors import R1ConfigError
    from r1cli.eval.spec import eval_benchmarks, split_budget

    assert split_budget("aime24@512") == ("aime24", 512) and split_budget("aime24") == ("aime24", None)
    for bad in ("aime24@", "aime24@x", "@5", "aime24@0"):
        with pytest.raises(ValueError, match="NAME@N"):
            split_budget(bad)
    cfg = {"eval": {"benchmarks": ["a", "b"], "length_budgets": [1, 2]}}
    assert eval_benchmarks(cfg) == ["a@1", "a@2", "b@1", "b@2"]
    assert eval_benchmarks({"eval": {"benchmarks": ["a"], "length_budgets": []}}) == ["a"]
    with pytest.raises(R1ConfigError, match="length_budgets"):
        resolve("tiny", ["eval.length_budgets=[0]"])
