"""`r1 data ...` commands: standalone forms and the run-dir forms the Snakefile calls."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from r1cli.cli.data import app
from r1cli.utils.io import atomic_write_jsonl, read_parquet

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def r1(*args: Any) -> Any:
    res = runner.invoke(app, [str(a) for a in args])
    return res


def _shared() -> Path:
    env = os.environ.get("R1_SHARED_DIR")
    return (Path(env) if env else (REPO / ".." / "shared").resolve()) / "data"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.engines.tiny_model import build_tiny

    out = tmp_path_factory.mktemp("tinycli") / "model"
    build_tiny(out, seed=0)
    return out


def test_prepare_invalid_row_exit_2_and_skip(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?", "solution": "4"}\n')
    res = r1("prepare", src, "--out", tmp_path / "o.parquet", "--template", "r1-zero")
    assert res.exit_code == 2
    assert f"{src}, row 1, field 'answer': missing or empty answer" in " ".join(res.output.split())
    res = r1("prepare", src, "--out", tmp_path / "o.parquet", "--template", "r1-zero", "--skip-invalid")
    assert res.exit_code == 0, res.output
    rows = read_parquet(tmp_path / "o.parquet")
    assert len(rows) == 1 and rows[0]["prompt"].endswith("User: 1+1? Assistant: <think>")
    assert r1("prepare", src, "--out", tmp_path / "x.parquet", "--template", "nope").exit_code == 2
    assert r1("prepare", "--out", tmp_path / "x.parquet").exit_code == 2  # no SOURCE


def test_filter_bad_band_exit_2(tmp_path: Path) -> None:
    for band, msg in (("0.8:0.2", "lower bound 0.8 exceeds upper bound 0.2"), ("0:2", "must lie in [0, 1]")):
        res = r1("filter", tmp_path / "in.parquet", "--out", tmp_path / "o.parquet", "--acc", band,
                 "--model", "m")
        assert res.exit_code == 2 and msg in res.output


def test_dedup_decontaminate_stats(tmp_path: Path) -> None:
    shared = _shared()
    if not (shared / "eval" / "aime2024.jsonl").exists():
        pytest.skip("shared data absent")
    aime = [json.loads(x) for x in (shared / "eval" / "aime2024.jsonl").read_text().splitlines()]
    rows = [{"id": "t0", "problem": "What is 2+3?", "answer": "5"},
            {"id": "t1", "problem": "WHAT   is 2 + 3 ?", "answer": "5"},
            {"id": "t2", "problem": aime[4]["problem"].lower(), "answer": aime[4]["answer"]}]
    atomic_write_jsonl(tmp_path / "in.jsonl", rows)
    res = r1("dedup", tmp_path / "in.jsonl", "--out", tmp_path / "d.parquet")
    assert res.exit_code == 0, res.output
    assert [r["id"] for r in read_parquet(tmp_path / "d.parquet")] == ["t0", "t2"]
    rep = json.loads((tmp_path / "d.report.json").read_text())["dedup"]
    assert rep["exact"] == 1 and rep["removed"][0]["duplicate_of"] == "t0"
    res = r1("decontaminate", tmp_path / "d.parquet", "--out", tmp_path / "c.jsonl",
             "--against", "aime24,amc23", "--data-dir", shared)
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in (tmp_path / "c.jsonl").read_text().splitlines()] == ["t0"]
    rep = json.loads((tmp_path / "c.report.json").read_text())["decontaminate"]
    assert rep["against"] == {"aime24": 30, "amc23": 40}
    assert rep["removed"][0]["benchmark_id"] == aime[4]["id"] and rep["removed"][0]["overlap"] == 1.0
    res = r1("decontaminate", tmp_path / "d.parquet", "--out", tmp_path / "c2.parquet", "--against", "nope")
    assert res.exit_code == 2 and "unknown benchmark 'nope'" in res.output
    res = r1("stats", tmp_path / "in.jsonl", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["rows"] == 3


def test_standalone_filter_reuses_pass_rates_and_shards(tmp_path: Path, tiny: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "p.parquet"
    assert r1("prepare", "synth:addition", "--out", src, "--size", 6, "--template", "tiny-chat", "--task",
              "addition").exit_code == 0
    common = ["--model", tiny, "--n", 2, "--max-tokens", 6, "--reward", "exact", "--batch-size", 4]
    res = r1("filter", src, "--out", tmp_path / "f.parquet", "--acc", "0:1", *common)
    assert res.exit_code == 0, res.output
    rates = read_parquet(tmp_path / "f.passrates.parquet")
    assert len(rates) == 6 and len(read_parquet(tmp_path / "f.parquet")) == 6
    import r1cli.engines.factory as ro
    monkeypatch.setattr(ro, "make_rollout", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rollout")))
    res = r1("filter", src, "--out", tmp_path / "f.parquet", "--acc", ":0", *common)  # another band: reuse
    assert res.exit_code == 0, res.output
    assert "reusing pass rates" in " ".join(res.output.split())
    kept = {r["id"] for r in read_parquet(tmp_path / "f.parquet")}
    assert kept == {p["id"] for p in rates if p["pass_rate"] == 0.0}
    for other in (["--temperature", 0.5], ["--stop", "</answer>"]):  # other settings: never the old pass rates
        res = r1("filter", src, "--out", tmp_path / "f.parquet", "--acc", ":0", *common, *other)
        assert res.exit_code == 1 and "reusing" not in res.output, res.output
        assert isinstance(res.exception, AssertionError)  # it measured again (the patched engine)
    monkeypatch.undo()
    for i in (0, 1):
        res = r1("filter", src, "--out", tmp_path / "g.parquet", "--shard", f"{i}/2", *common)
        assert res.exit_code == 0, res.output
    assert r1("filter", src, "--out", tmp_path / "g.parquet", "--merge", "--acc", "0:1").exit_code == 0
    merged = read_parquet(tmp_path / "g.passrates.parquet")
    assert [p["id"] for p in merged] == [p["id"] for p in rates]
    assert all(p["n"] == 2 and p["model"] == str(tiny) for p in merged)
    assert len(read_parquet(tmp_path / "g.parquet")) == 6
    res = r1("filter", src, "--out", tmp_path / "h.parquet", "--merge")
    assert res.exit_code == 2 and "no shard files" in res.output


def _run_dir(tmp_path: Path, tiny: Path, data_dir: Path | None) -> Path:
    from r1cli.config import resolve, to_dict, validate

    d = to_dict(resolve("tiny"))
    d["data"]["train"]["size"] = 12
    d["data"]["test"]["size"] = 8
    d["data"]["data_dir"] = str(data_dir) if data_dir else None
    d["warmups"]["sft"]["enabled"] = False
    d["curation"]["dedup"] = {"enabled": True, "near": True, "threshold": 0.8, "ngram": 5}
    d["curation"]["decontaminate"] = {"enabled": True, "against": ["addition"], "ngram": 13}
    d["curation"]["filter"].update({"model": "sft", "acc": "0:1", "n": 2, "max_tokens": 6, "shards": 2,
                                    "batch_size": 4})
    d["curation"]["mine_hard"] = {"enabled": True, "from_stage": "s1", "max_acc": 0.25}
    d["curation"]["limr"] = {"enabled": True, "threshold": 0.5, "reference_stage": "s1"}
    validate(d)
    run = tmp_path / "run"
    (run / "base").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    os.symlink(tiny, run / "base" / "model")
    return run


def test_prepare_the_sft_warmups_own_data(tmp_path: Path, tiny: Path) -> None:
    """data.sft (warmups.sft.data: sft) is prepared to data/sft.parquet with the recipe's template, apart from
    the RL prompts: here 40 SFT traces beside 12 RL prompts."""
    run = _run_dir(tmp_path, tiny, None)
    d = yaml.safe_load((run / "config.yaml").read_text())
    d["data"]["sft"] = {**d["data"]["train"], "size": 40}
    d["warmups"]["sft"]["enabled"] = True
    d["warmups"]["sft"]["data"] = "sft"
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    res = r1("prepare", "--run", run, "--split", "sft")
    assert res.exit_code == 0, res.output
    rows = read_parquet(run / "data" / "sft.parquet")
    assert len(rows) == 40 and all(r["response"] for r in rows)
    assert not (run / "data" / "prepared.parquet").exists()


def test_pipeline_forms(tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run_dir(tmp_path, tiny, None)
    assert r1("prepare", "--run", run, "--split", "prepared").exit_code == 0
    assert r1("prepare", "--run", run, "--split", "test").exit_code == 0
    assert len(read_parquet(run / "data" / "prepared.parquet")) == 12
    assert len(read_parquet(run / "data" / "test.parquet")) == 8
    assert r1("prepare", "--run", run, "--split", "bogus").exit_code == 2
    res = r1("prepare", "--run", run, "--split", "sft")
    assert res.exit_code == 2 and "no data.sft" in res.output and not (run / "data" / "sft.parquet").exists()
    res = r1("clean", "--run", run)
    assert res.exit_code == 0, res.output
    rep = json.loads((run / "data" / "clean.report.json").read_text())
    assert rep["rows_in"] == 12 and rep["rows_out"] == 12
    assert rep["decontaminate"]["against"] == {"addition": 256}
    for i in (0, 1):
        res = r1("filter", "--run", run, "--shard", f"{i}/2")
        assert res.exit_code == 0, res.output
        assert (run / "data" / "passrates" / f"shard-{i}-of-2.parquet").exists()
    res = r1("filter", "--run", run, "--merge")
    assert res.exit_code == 0, res.output
    rates = read_parquet(run / "data" / "passrates.parquet")
    assert [p["id"] for p in rates] == [r["id"] for r in read_parquet(run / "data" / "clean.parquet")]
    assert len(read_parquet(run / "data" / "filtered.parquet")) == 12
    # Refiltering with another band reads the pass rates only.
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["curation"]["filter"]["acc"] = "0.9:1"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    import r1cli.engines.factory as ro
    monkeypatch.setattr(ro, "make_rollout", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rollout")))
    res = r1("filter", "--run", run, "--merge")
    want = [p["id"] for p in rates if p["pass_rate"] >= 0.9]
    if want:
        assert res.exit_code == 0
        assert [r["id"] for r in read_parquet(run / "data" / "filtered.parquet")] == want
    else:
        assert res.exit_code == 2 and "keeps none of 12 prompts" in " ".join(res.output.split())
    # mine-hard and limr from a stage's trajectories.
    cfg["curation"]["filter"]["acc"] = "0:1"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    monkeypatch.undo()
    assert r1("filter", "--run", run, "--merge").exit_code == 0
    ids = [r["id"] for r in read_parquet(run / "data" / "filtered.parquet")]
    traj = []
    for e in range(3):
        for j, rid in enumerate(ids):
            traj.append({"step": e, "epoch": e, "id": rid, "n": 4, "correct": min(4, (j % 4) * e // 2),
                         "reward_mean": 0.0})
    atomic_write_jsonl(run / "rl" / "s1" / "trajectories.jsonl", traj)
    res = r1("mine-hard", "--run", run, "--stage", "s1")
    assert res.exit_code == 0, res.output
    hard = [r["id"] for r in read_parquet(run / "data" / "hard-s1.parquet")]
    acc = {rid: sum(t["correct"] for t in traj if t["id"] == rid) / 12 for rid in ids}
    assert hard == [rid for rid in ids if acc[rid] < 0.25]
    res = r1("mine-hard", "--rollouts", run / "rl" / "s1", "--out", tmp_path / "h.jsonl", "--max-acc", 0.25)
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in (tmp_path / "h.jsonl").read_text().splitlines()] == hard
    res = r1("limr", "--run", run)
    assert res.exit_code == 0, res.output
    from r1cli.data.limr import learning_impact
    _, sc = learning_impact(traj)
    assert [r["id"] for r in read_parquet(run / "data" / "limr.parquet")] == [i for i in ids if sc[i] >= 0.5]
    scores = read_parquet(run / "data" / "limr.scores.parquet")
    assert {s["id"]: s["score"] for s in scores} == pytest.approx(sc)


def _fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    import datasets

    calls: list[tuple[tuple, dict]] = []

    def load_dataset(*args: object, **kwargs: object) -> list[dict]:
        calls.append((args, kwargs))
        return [{"question": f"{i}+1?", "answer": str(i + 1)} for i in range(3)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_prepare_hub_config_standalone_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from r1cli.config import resolve, to_dict, validate

    calls = _fake_hub(monkeypatch)
    res = r1("prepare", "openai/gsm8k", "--config", "main", "--out", tmp_path / "g.parquet", "--task", "gsm8k")
    assert res.exit_code == 0, res.output
    assert calls == [(("openai/gsm8k", "main"), {"split": "train"})]
    assert len(read_parquet(tmp_path / "g.parquet")) == 3
    d = to_dict(resolve("tiny"))
    d["data"]["train"].update({"source": "openai/gsm8k", "config": "main", "split": "train", "task": "gsm8k",
                               "size": None})
    validate(d)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    res = r1("prepare", "--run", run, "--split", "prepared")
    assert res.exit_code == 0, res.output
    assert calls[-1] == (("openai/gsm8k", "main"), {"split": "train"})
    assert len(read_parquet(run / "data" / "prepared.parquet")) == 3


# --- OREAL repeat bands, from pre-written pass-rate shards (no model runs) ---------------------------------------
def _rows_and_shards(where: Path, stem: str, n_shards: int) -> list[dict[str, Any]]:
    """Six prepared rows with pass rates 0, 0.1, 0.3, 0.7, 0.9, 1.0 (of 10), split into shard files."""
    from r1cli.data.prepare import normalise_rows
    from r1cli.utils.io import write_parquet

    rows, _ = normalise_rows([{"id": f"q{i}", "problem": f"{i}+1?", "answer": str(i + 1)} for i in range(6)],
                             file="t")
    rates = [{"id": f"q{i}", "n": 10, "correct": c, "pass_rate": c / 10, "model": "m"}
             for i, c in enumerate((0, 1, 3, 7, 9, 10))]
    for i in range(n_shards):
        write_parquet(where / f"{stem}{i}-of-{n_shards}.parquet", rates[i::n_shards])
    return rows


def _ids_and_meta(path: Path) -> list[tuple[str, float, int | None]]:
    out = []
    for r in read_parquet(path):
        m = json.loads(r["meta"])
        out.append((r["id"], m["pass_rate"], m.get("repeat")))
    return out


def test_standalone_filter_merge_repeats_by_band(tmp_path: Path) -> None:
    from r1cli.utils.io import write_parquet

    rows = _rows_and_shards(tmp_path, "g.passrates.shard-", 2)
    write_parquet(tmp_path / "in.parquet", rows)
    res = r1("filter", tmp_path / "in.parquet", "--out", tmp_path / "g.parquet", "--merge", "--acc", "0:0.95",
             "--repeat", "0:0.2=6,0.2:0.4=4,0.4:0.6=4,0.6:0.8=2")
    assert res.exit_code == 0, res.output
    got = _ids_and_meta(tmp_path / "g.parquet")
    want = ([("q0", 0.0, k) for k in range(6)] + [("q1", 0.1, k) for k in range(6)]
            + [("q2", 0.3, k) for k in range(4)] + [("q3", 0.7, k) for k in range(2)] + [("q4", 0.9, 0)])
    assert got == want  # q5 (1.0) is outside the --acc band
    text = " ".join(res.output.replace("│", " ").split())
    assert "rows out 19" in text and "repeat [0, 0.2) ×6 2 kept prompts → 12 rows" in text, res.output
    # without --repeat: one row each, the pass rate still in meta
    res = r1("filter", tmp_path / "in.parquet", "--out", tmp_path / "h.parquet", "--merge", "--acc", "0:1",
             "--passrates", tmp_path / "g.passrates.parquet")
    assert res.exit_code == 0, res.output
    assert _ids_and_meta(tmp_path / "h.parquet") == [(f"q{i}", c / 10, None) for i, c in
                                                      enumerate((0, 1, 3, 7, 9, 10))]
    for bad in ("0:0.2", "0:0.4=2,0.2:0.6=3", "0.5:0.2=2"):
        res = r1("filter", tmp_path / "in.parquet", "--out", tmp_path / "x.parquet", "--merge", "--repeat", bad,
                 "--passrates", tmp_path / "g.passrates.parquet")
        assert res.exit_code == 2 and "--repeat" in res.output, res.output
    assert not (tmp_path / "x.parquet").exists()


def test_pipeline_filter_merge_writes_repeats(tmp_path: Path) -> None:
    from r1cli.config import resolve, to_dict, validate
    from r1cli.utils.io import write_parquet

    d = to_dict(resolve("tiny"))
    d["curation"]["dedup"]["enabled"] = d["curation"]["decontaminate"]["enabled"] = False
    d["curation"]["filter"].update({"enabled": True, "acc": "0:1", "shards": 2, "repeat": [
        {"lo": 0.0, "hi": 0.2, "times": 3}, {"lo": 0.8, "hi": 1.0, "times": 2}]})
    validate(d)
    run = tmp_path / "run"
    (run / "data" / "passrates").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    rows = _rows_and_shards(run / "data" / "passrates", "shard-", 2)
    write_parquet(run / "data" / "prepared.parquet", rows)
    res = r1("filter", "--run", run, "--merge")
    assert res.exit_code == 0, res.output
    assert _ids_and_meta(run / "data" / "filtered.parquet") == (
        [("q0", 0.0, k) for k in range(3)] + [("q1", 0.1, k) for k in range(3)] + [("q2", 0.3, 0), ("q3", 0.7, 0)]
        + [("q4", 0.9, k) for k in range(2)] + [("q5", 1.0, k) for k in range(2)])
    assert [p["id"] for p in read_parquet(run / "data" / "passrates.parquet")] == [f"q{i}" for i in range(6)]
    assert r1("filter", "--run", run, "--merge", "--repeat", "0:1=2").exit_code == 2


# --- drop-solved (Skywork-OR1) ------------------------------------------------------------------------------------
def test_drop_solved_run_and_standalone_forms(tmp_path: Path) -> None:
    from r1cli.config import resolve, to_dict, validate
    from r1cli.data.prepare import normalise_rows
    from r1cli.utils.io import write_parquet

    d = to_dict(resolve("tiny", ["rl.stages.1.data=unsolved"]))
    validate(d)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    rows, _ = normalise_rows([{"id": f"q{i}", "problem": f"{i}+1?", "answer": str(i + 1)} for i in range(5)],
                             file="t")
    write_parquet(run / "data" / "filtered.parquet", rows)  # s1's data (the filter is on in tiny)
    traj = [{"step": 0, "epoch": 0, "id": "q0", "n": 4, "correct": 4, "reward_mean": 1.0},   # solved early only
            {"step": 1, "epoch": 0, "id": "q0", "n": 4, "correct": 2, "reward_mean": 0.5},
            {"step": 0, "epoch": 0, "id": "q1", "n": 4, "correct": 1, "reward_mean": 0.25},  # solved last
            {"step": 1, "epoch": 0, "id": "q1", "n": 4, "correct": 4, "reward_mean": 1.0},
            {"step": 1, "epoch": 0, "id": "q2", "n": 4, "correct": 4, "reward_mean": 1.0},   # solved
            {"step": 1, "epoch": 0, "id": "q3", "n": 4, "correct": 0, "reward_mean": 0.0}]   # q4 never seen
    atomic_write_jsonl(run / "rl" / "s1" / "trajectories.jsonl", traj)
    res = r1("drop-solved", "--run", run, "--stage", "s1")
    assert res.exit_code == 0, res.output
    assert [r["id"] for r in read_parquet(run / "data" / "unsolved-s1.parquet")] == ["q0", "q3", "q4"]
    res = r1("drop-solved", "--rollouts", run / "rl" / "s1", "--out", tmp_path / "u.jsonl")  # data inferred
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in (tmp_path / "u.jsonl").read_text().splitlines()] == ["q0", "q3", "q4"]
    res = r1("drop-solved", "--rollouts", run / "rl" / "s1" / "trajectories.jsonl", "--data",
             run / "data" / "filtered.parquet", "--out", tmp_path / "v.parquet")
    assert res.exit_code == 0 and len(read_parquet(tmp_path / "v.parquet")) == 3
    # errors: the first stage has no previous one, a stage that has not run, bad lines, everything solved
    res = r1("drop-solved", "--run", run, "--stage", "s2")
    assert res.exit_code == 2 and "no trajectories" in res.output
    import copy

    d1 = copy.deepcopy(d)
    d1["rl"]["stages"][0]["data"] = "unsolved"
    (run / "config.yaml").write_text(yaml.safe_dump(d1, sort_keys=False))
    res = r1("drop-solved", "--run", run, "--stage", "s1")
    assert res.exit_code == 2 and "the first stage has none" in " ".join(res.output.split())
    (run / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    atomic_write_jsonl(tmp_path / "bad.jsonl", [{"id": "q0", "n": 4}])
    res = r1("drop-solved", "--rollouts", tmp_path / "bad.jsonl", "--data", run / "data" / "filtered.parquet",
             "--out", tmp_path / "w.parquet")
    assert res.exit_code == 2 and "field 'correct'" in " ".join(res.output.split())
    atomic_write_jsonl(tmp_path / "all.jsonl", [{"id": f"q{i}", "n": 2, "correct": 2} for i in range(5)])
    res = r1("drop-solved", "--rollouts", tmp_path / "all.jsonl", "--data", run / "data" / "filtered.parquet",
             "--out", tmp_path / "w.parquet")
    assert res.exit_code == 2 and "nothing left" in " ".join(res.output.split())
    assert not (tmp_path / "w.parquet").exists()
    assert r1("drop-solved", "--out", tmp_path / "w.parquet").exit_code == 2  # no --rollouts
