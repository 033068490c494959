"""evaluate_benchmark with a counting fake engine: resume, crash recovery, spec and model changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from r1cli.data.benchmarks import load_benchmark
from r1cli.errors import R1InputError
from r1cli.eval.metrics import pass_at_k
from r1cli.eval.runner import EvalData, ModelRef, evaluate_benchmark, model_fingerprint, published_for
from r1cli.eval.spec import sampling_spec, spec_hash
from tests.eval.conftest import fake_engine_for


def _data(limit: int = 10) -> EvalData:
    b, rows = load_benchmark("addition", limit=limit)
    return EvalData(name=b.name, rows=rows, reward=b.reward, template=b.template)


def _spec(**kw: Any) -> dict[str, Any]:
    base = {
        "n": 4,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_tokens": 16,
        "template": "chat",
        "system_prompt": None,
        "seed": 0,
        "greedy": True,
        "limit": None,
        "k": [1, 2, 4],
    }
    base.update(kw)
    return sampling_spec(**base)


def _run(engine: Any, data: EvalData, spec: dict[str, Any], out: Path, **kw: Any) -> Any:
    kw.setdefault("chunk_sequences", 8)
    fp = kw.pop("fingerprint", "fp0")
    return evaluate_benchmark(engine, data, spec, out / spec_hash(spec), model=ModelRef("fake", None, fp),
                              progress=False, **kw)


def _samples(d: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (d / "samples.jsonl").read_text().splitlines()]


def test_outputs_and_metric_values(tmp_path: Path) -> None:
    data = _data()
    eng = fake_engine_for(data.rows)
    res = _run(eng, data, _spec(), tmp_path)
    d = res.out_dir
    assert {p.name for p in d.iterdir()} >= {"spec.json", "samples.jsonl", "problems.jsonl", "metrics.json"}
    rows = _samples(d)
    assert len(rows) == 10 * 4 + 10  # n samples + one greedy per problem
    assert res.generated == 50 and eng.sequences == 50
    # the chunk budget is respected and greedy calls are temperature 0, n = 1
    assert all(n_prompts * spec.n <= 8 for n_prompts, spec in eng.calls)
    assert any(spec.greedy and spec.n == 1 for _, spec in eng.calls)
    m = json.loads((d / "metrics.json").read_text())
    # recompute from samples.jsonl by hand
    per: dict[str, list[bool]] = {}
    for r in rows:
        if r["kind"] == "sample":
            per.setdefault(r["id"], [False] * 4)[r["idx"]] = r["correct"]
    greedy = [r["correct"] for r in rows if r["kind"] == "greedy"]
    assert m["avg@4"] == pytest.approx(sum(sum(v) / 4 for v in per.values()) / 10)
    assert m["pass@2"] == pytest.approx(sum(pass_at_k(4, sum(v), 2) for v in per.values()) / 10)
    assert m["greedy_acc"] == pytest.approx(sum(greedy) / 10)
    assert m["truncation_rate"] == pytest.approx(0.25)  # the fake marks sample 1 of 4 as truncated
    assert m["response_len_mean"] == pytest.approx((5 + 6 + 7 + 8) / 4)
    assert 0 < m["avg@4"] < 1  # the fake mixes right and wrong answers
    for key in ("maj@4", "maj@2", "n_problems", "benchmark", "model", "spec", "response_len_mean"):
        assert key in m
    assert m["spec"]["model_fingerprint"] == "fp0" and m["spec"]["r1_version"]
    assert m["spec_hash"] == spec_hash(_spec()) == d.name
    assert all(r["prompt_sha"] and r["finish_reason"] in ("stop", "length") for r in rows)
    probs = [json.loads(x) for x in (d / "problems.jsonl").read_text().splitlines()]
    assert len(probs) == 10 and all("gold" in p and "pass@4" in p for p in probs)


def test_rerun_same_spec_generates_nothing_and_never_builds_the_engine(tmp_path: Path) -> None:
    data = _data()
    first = _run(fake_engine_for(data.rows), data, _spec(), tmp_path)

    def factory() -> Any:
        raise AssertionError("the engine must not be built when nothing is missing")

    again = _run(factory, data, _spec(), tmp_path)
    assert again.generated == 0
    strip = ("elapsed_s", "generated")
    assert {k: v for k, v in again.metrics.items() if k not in strip} == {
        k: v for k, v in first.metrics.items() if k not in strip
    }


def test_changed_temperature_writes_a_new_directory(tmp_path: Path) -> None:
    data = _data(4)
    a = _run(fake_engine_for(data.rows), data, _spec(), tmp_path)
    eng = fake_engine_for(data.rows)
    b = _run(eng, data, _spec(temperature=0.6), tmp_path)
    assert a.out_dir != b.out_dir and a.out_dir.exists() and b.out_dir.exists()
    assert eng.sequences == 4 * 5 and json.loads((a.out_dir / "spec.json").read_text())["temperature"] == 1.0
    # k only changes metrics, not samples: same directory, nothing generated
    c = _run(fake_engine_for(data.rows), data, _spec(k=[1, 4]), tmp_path)
    assert c.out_dir == a.out_dir and c.generated == 0 and "pass@2" not in c.metrics


def test_crash_then_resume_generates_only_the_missing(tmp_path: Path) -> None:
    data = _data(10)
    spec = _spec()
    crashing = fake_engine_for(data.rows, fail_after=3)  # 3 chunks of 2 problems x 4 samples survive
    with pytest.raises(KeyboardInterrupt):
        _run(crashing, data, spec, tmp_path)
    d = tmp_path / spec_hash(spec)
    kept = _samples(d)
    assert len(kept) == 3 * 8 and not (d / "metrics.json").exists()
    done_ids = {r["id"] for r in kept}
    eng = fake_engine_for(data.rows)
    res = _run(eng, data, spec, tmp_path)
    assert res.generated == 50 - 24 == eng.sequences
    prompts_seen = sum(n for n, s in eng.calls if not s.greedy)
    assert prompts_seen == 10 - len(done_ids)
    # the finished run equals an uninterrupted one
    ref = _run(fake_engine_for(data.rows), data, spec, tmp_path / "ref")
    for key in ("avg@4", "pass@2", "pass@4", "maj@4", "greedy_acc", "truncation_rate"):
        assert res.metrics[key] == pytest.approx(ref.metrics[key])


def test_torn_last_line_and_partial_problem_are_regenerated(tmp_path: Path) -> None:
    data = _data(3)
    spec = _spec()
    full = _run(fake_engine_for(data.rows), data, spec, tmp_path)
    path = full.out_dir / "samples.jsonl"
    lines = path.read_text().splitlines()
    victim = json.loads(lines[1])  # one sample of the first problem
    keep = [x for i, x in enumerate(lines) if i != 1]
    path.write_text("\n".join(keep) + "\n" + lines[-1][:25])  # plus a torn duplicate line
    eng = fake_engine_for(data.rows)
    res = _run(eng, data, spec, tmp_path)
    assert res.generated == 1 == eng.sequences
    assert eng.calls[0][1].n == 1  # only the missing index
    rows = _samples(full.out_dir)
    assert len(rows) == len(lines)
    assert any(r["id"] == victim["id"] and r["idx"] == victim["idx"] for r in rows)


def test_model_change_restart_or_error(tmp_path: Path) -> None:
    data = _data(2)
    spec = _spec()
    _run(fake_engine_for(data.rows), data, spec, tmp_path, fingerprint="A")
    with pytest.raises(R1InputError, match="another model"):
        _run(fake_engine_for(data.rows), data, spec, tmp_path, fingerprint="B", on_model_change="error")
    eng = fake_engine_for(data.rows)
    res = _run(eng, data, spec, tmp_path, fingerprint="B", on_model_change="restart")
    assert res.generated == 2 * 5 and res.metrics["spec"]["model_fingerprint"] == "B"


def test_changed_prompt_is_regenerated(tmp_path: Path) -> None:
    data = _data(2)
    spec = _spec()
    _run(fake_engine_for(data.rows), data, spec, tmp_path)
    data.rows[0]["messages"] = [
        {"role": "user", "content": "changed " + data.rows[0]["messages"][-1]["content"]}
    ]
    eng = fake_engine_for(data.rows)
    res = _run(eng, data, spec, tmp_path)
    assert res.generated == 5  # 4 samples + greedy of the changed problem only


def test_greedy_reuses_samples_at_temperature_zero(tmp_path: Path) -> None:
    data = _data(3)
    eng = fake_engine_for(data.rows)
    res = _run(eng, data, _spec(temperature=0.0, n=2, k=[1]), tmp_path)
    assert eng.sequences == 6 and all(s.greedy for _, s in eng.calls)
    assert "greedy_acc" in res.metrics


def test_no_greedy(tmp_path: Path) -> None:
    data = _data(3)
    res = _run(fake_engine_for(data.rows), data, _spec(greedy=False), tmp_path)
    assert "greedy_acc" not in res.metrics and res.generated == 12


def test_published_lookup_and_fingerprint(tmp_path: Path) -> None:
    pub = {"AIME24": 43.1, "MATH500": 87.8, "Minerva": 30.2, "avg": 57.0}
    assert published_for(pub, "aime24") == 43.1
    assert published_for(pub, "math500") == 87.8
    assert published_for(pub, "minerva") == 30.2
    assert published_for(pub, "gsm8k") is None and published_for(None, "aime24") is None
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 100)
    a = model_fingerprint(str(d))
    assert a == model_fingerprint(str(d))
    (d / "model.safetensors").write_bytes(b"\1" * 100)
    assert model_fingerprint(str(d)) != a
    assert model_fingerprint("org/not-cached-model").startswith("id:")
