"""Pass-rate filter: band parsing, band application, measurement with a scripted engine (hand-computed pass
rates), per-shard resume after a kill, and a real run on the tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from r1cli.data import filter as flt
from r1cli.data.filter import (
    apply_band,
    band_summary,
    measure_passrates,
    measure_shard,
    merge_shards,
    parse_band,
    parse_shard,
    partial_path,
    shard_rows,
)
from r1cli.engines.rollout import Sample
from r1cli.errors import R1InputError
from r1cli.utils.io import read_parquet, write_parquet


@pytest.mark.parametrize("text,want", [
    ("0.2:0.8", (0.2, 0.8)), ("1:15/16", (1 / 16, 15 / 16)), (":0.0625", (0.0, 0.0625)), ("0.5:", (0.5, 1.0)),
    (":", (0.0, 1.0)), ("1/8:7/8", (0.125, 0.875)), ("0:0", (0.0, 0.0)), (" 0.25 : 1 ", (0.25, 1.0)),
])
def test_parse_band(text: str, want: tuple[float, float]) -> None:
    assert parse_band(text) == pytest.approx(want)


@pytest.mark.parametrize("text,msg", [
    ("0.8:0.2", "lower bound 0.8 exceeds upper bound 0.2"), ("0.2:1.5", r"must lie in \[0, 1\]"),
    ("-0.1:0.5", r"must lie in \[0, 1\]"), ("0.5", "expected LO:HI"), ("a:b", "bad bound"),
    ("1:15/0", "denominator must be positive"), ("17:15/16", "exceeds|must lie"), ("nan:1", "must lie"),
])
def test_parse_band_rejects(text: str, msg: str) -> None:
    with pytest.raises(R1InputError, match=msg):
        parse_band(text)


def test_parse_shard_and_shard_rows() -> None:
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(R1InputError, match="--shard"):
            parse_shard(bad)
    rows = [{"id": str(i)} for i in range(10)]
    shards = [shard_rows(rows, i, 3) for i in range(3)]
    assert sorted(r["id"] for s in shards for r in s) == sorted(r["id"] for r in rows)
    assert [r["id"] for r in shards[1]] == ["1", "4", "7"]


def _rates(pairs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "n": n, "correct": c, "pass_rate": c / n} for i, (c, n) in enumerate(pairs)]


def test_apply_band_on_synthetic_pass_rates() -> None:
    rates = _rates([(0, 16), (1, 16), (8, 16), (15, 16), (16, 16), (4, 16)])
    rows = [{"id": f"p{i}"} for i in range(6)]
    keep = lambda band: [r["id"] for r in apply_band(rows, rates, *parse_band(band))]  # noqa: E731
    assert keep("1:15/16") == ["p1", "p2", "p3", "p5"]       # Skywork: drop 0/16 and 16/16
    assert keep(":0.0625") == ["p0", "p1"]                   # ORZ hard: at most 1/16
    assert keep("0.2:0.8") == ["p2", "p5"]                   # 4/16 = 0.25, 8/16 = 0.5
    assert keep("0.25:0.25") == ["p5"]                       # inclusive bounds
    s = band_summary(rates, *parse_band("1:15/16"))
    assert s == {"prompts": 6, "kept": 4, "band": [1 / 16, 15 / 16], "mean_pass_rate": 44 / 96,
                 "all_solved": 1, "none_solved": 1}
    with pytest.raises(R1InputError, match="1 prompts have no pass rate"):
        apply_band(rows + [{"id": "zz"}], rates, 0, 1)


class _Tok:
    chat_template = None
    eos_token_id = 0
    pad_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


class ScriptedEngine:
    """Row 'Q: a+b=' is answered correctly by the first (a + b) % (n + 1) of its n samples."""

    calls: list[int] = []
    specs: list[Any] = []

    def __init__(self, *a: Any, **k: Any) -> None:
        self.tokenizer = _Tok()

    def generate(self, prompts: list[list[int]], spec: Any) -> list[list[Sample]]:
        ScriptedEngine.calls.append(len(prompts))
        ScriptedEngine.specs.append(spec)
        out = []
        for p in prompts:
            a, b = map(int, re.search(r"Q: (\d+)\+(\d+)=", "".join(map(chr, p))).groups())  # type: ignore[union-attr]
            k = (a + b) % (spec.n + 1)
            out.append([Sample(p, [1] * (j + 1), [0.0] * (j + 1), "stop" if j % 2 else "length",
                               text=f"<answer>{a + b if j < k else -1}</answer>") for j in range(spec.n)])
        return out


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedEngine]:
    import r1cli.engines.factory as ro

    ScriptedEngine.calls = []
    ScriptedEngine.specs = []
    monkeypatch.setattr(ro, "make_rollout", lambda backend, path, **kw: ScriptedEngine())
    return ScriptedEngine


KW = dict(n=4, temperature=1.0, top_p=1.0, max_tokens=8, reward="exact", reward_params={}, seed=0)


def _expected(rows: list[dict]) -> dict[str, float]:
    import json
    out = {}
    for r in rows:
        m = json.loads(r["meta"])
        out[r["id"]] = ((m["a"] + m["b"]) % 5) / 4
    return out


def test_measure_with_scripted_engine_hand_values(scripted: type[ScriptedEngine], addition_rows: list[dict]
                                                  ) -> None:
    res = measure_passrates(addition_rows, "unused", batch_size=4, **KW)  # type: ignore[arg-type]
    want = _expected(addition_rows)
    assert [p["id"] for p in res] == [r["id"] for r in addition_rows]
    assert {p["id"]: p["pass_rate"] for p in res} == want
    assert all(p["n"] == 4 and p["correct"] == want[p["id"]] * 4 for p in res)
    # response lengths 1..4 (mean 2.5); samples 0 and 2 end by 'length'
    assert all(p["mean_len"] == 2.5 and p["truncated"] == 2 for p in res)
    assert scripted.calls == [4, 4, 2]
    lo, hi = parse_band("0.25:0.75")
    kept = apply_band(addition_rows, res, lo, hi)
    assert {r["id"] for r in kept} == {i for i, v in want.items() if 0.25 <= v <= 0.75}


def test_killed_shard_resumes_where_it_stopped(scripted: type[ScriptedEngine], addition_rows: list[dict],
                                               tmp_path: Path) -> None:
    out = tmp_path / "shard-0-of-1.parquet"
    full = measure_passrates(addition_rows, "unused", batch_size=3, **KW)  # type: ignore[arg-type]

    def kill_after_two(done: int, total: int) -> None:
        if done >= 6:
            raise KeyboardInterrupt
    scripted.calls = []
    with pytest.raises(KeyboardInterrupt):
        measure_shard(addition_rows, out, "unused", batch_size=3, on_batch=kill_after_two, **KW)  # type: ignore
    assert not out.exists()
    parts = list(tmp_path.glob(".shard-0-of-1.parquet.partial-*.parquet"))
    assert len(parts) == 1 and len(read_parquet(parts[0])) == 6
    scripted.calls = []
    res = measure_shard(addition_rows, out, "unused", batch_size=3, **KW)  # type: ignore[arg-type]
    assert scripted.calls == [3, 1]  # only the two unfinished batches are generated again
    assert [{k: v for k, v in p.items() if k not in ("model", "settings")} for p in res] == full
    assert [p["pass_rate"] for p in read_parquet(out)] == [p["pass_rate"] for p in full]
    assert read_parquet(out)[0]["model"] == "unused"
    assert not list(tmp_path.glob(".*partial*"))
    # Another setting never reuses this partial: its key differs.
    key = flt.measure_key("unused", n=4, temperature=1.0, top_p=1.0, max_tokens=8, reward="exact",
                          reward_params={}, seed=0, batch_size=3, engine="hf")
    assert partial_path(out, key).name == parts[0].name
    assert flt.measure_key("unused", n=8, temperature=1.0, top_p=1.0, max_tokens=8, reward="exact",
                           reward_params={}, seed=0, batch_size=3, engine="hf") != key
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"12")
    k1 = flt.measure_key(str(model), n=4, temperature=1.0, top_p=1.0, max_tokens=8, reward="exact",
                         reward_params={}, seed=0, batch_size=3, engine="hf")
    (model / "model.safetensors").write_bytes(b"123")  # retrained weights at the same path
    assert flt.measure_key(str(model), n=4, temperature=1.0, top_p=1.0, max_tokens=8, reward="exact",
                           reward_params={}, seed=0, batch_size=3, engine="hf") != k1


def test_stop_strings_reach_the_sampler_and_the_key(scripted: type[ScriptedEngine], addition_rows: list[dict],
                                                    tmp_path: Path) -> None:
    """``stop`` (the RL stages' rl.rollout.stop in a pipeline) is passed to every batch's SamplingSpec, is part of
    the settings key (a partial measured without it is never resumed with it), and an empty list keeps the key of
    runs from before the option existed."""
    out = tmp_path / "s.parquet"
    measure_shard(addition_rows, out, "unused", batch_size=4, stop=["</answer>"], **KW)  # type: ignore[arg-type]
    assert {tuple(s.stop) for s in scripted.specs} == {("</answer>",)}
    common = dict(n=4, temperature=1.0, top_p=1.0, max_tokens=8, reward="exact", reward_params={}, seed=0,
                  batch_size=4, engine="hf")
    plain = flt.measure_key("unused", **common)  # type: ignore[arg-type]
    assert flt.measure_key("unused", stop=(), **common) == plain  # type: ignore[arg-type]
    with_stop = flt.measure_key("unused", stop=("</answer>",), **common)  # type: ignore[arg-type]
    assert with_stop != plain
    assert {p["settings"] for p in read_parquet(out)} == {with_stop}
    scripted.specs = []
    measure_passrates(addition_rows, "unused", batch_size=4, **KW)  # type: ignore[arg-type]
    assert {tuple(s.stop) for s in scripted.specs} == {()}


def test_merge_shards_refuses_mixed_settings(tmp_path: Path) -> None:
    write_parquet(tmp_path / "s0.parquet", [{**r, "settings": "aaa"} for r in _rates([(1, 2)])])
    write_parquet(tmp_path / "s1.parquet", [{"id": "q", "n": 2, "correct": 0, "pass_rate": 0.0, "settings": "bbb"}])
    write_parquet(tmp_path / "s2.parquet", [{"id": "r", "n": 2, "correct": 0, "pass_rate": 0.0, "settings": "aaa"}])
    assert len(merge_shards([tmp_path / "s0.parquet", tmp_path / "s2.parquet"])) == 2
    with pytest.raises(R1InputError, match="different settings"):
        merge_shards([tmp_path / "s0.parquet", tmp_path / "s1.parquet"])


def test_merge_shards_checks(tmp_path: Path) -> None:
    write_parquet(tmp_path / "s0.parquet", _rates([(1, 2)]))
    write_parquet(tmp_path / "s1.parquet", [{"id": "q", "n": 2, "correct": 0, "pass_rate": 0.0}])
    assert [p["id"] for p in merge_shards([tmp_path / "s0.parquet", tmp_path / "s1.parquet"])] == ["p0", "q"]
    with pytest.raises(R1InputError, match="measured in two shards"):
        merge_shards([tmp_path / "s0.parquet", tmp_path / "s0.parquet"])
    with pytest.raises(R1InputError, match="shard missing"):
        merge_shards([tmp_path / "s9.parquet"])


def test_tiny_model_filter_consistent_and_resumable(tiny_model: Path, addition_rows: list[dict],
                                                    tmp_path: Path) -> None:
    kw = dict(n=2, temperature=1.0, top_p=1.0, max_tokens=6, reward="exact", reward_params={}, seed=1,
              batch_size=4)
    out = tmp_path / "s.parquet"
    full = measure_shard(addition_rows, tmp_path / "full.parquet", str(tiny_model), **kw)  # type: ignore[arg-type]
    assert [p["id"] for p in full] == [r["id"] for r in addition_rows]
    assert all(p["n"] == 2 and p["pass_rate"] == p["correct"] / 2 and 0 < p["mean_len"] <= 6 for p in full)

    def kill(done: int, total: int) -> None:
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        measure_shard(addition_rows, out, str(tiny_model), on_batch=kill, **kw)  # type: ignore[arg-type]
    resumed = measure_shard(addition_rows, out, str(tiny_model), **kw)  # type: ignore[arg-type]
    assert resumed == full  # same seeds per batch offset: identical to the uninterrupted run
    lo, hi = parse_band(":0")
    kept = apply_band(addition_rows, full, lo, hi)
    assert {r["id"] for r in kept} == {p["id"] for p in full if p["pass_rate"] == 0.0}


# --- OREAL repeat bands ----------------------------------------------------------------------------------------
OREAL = [(0.0, 0.2, 6), (0.2, 0.4, 4), (0.4, 0.6, 4), (0.6, 0.8, 2)]


def _prepared(ids: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "prompt": f"q {i}", "answer": "1", "task": "math", "meta": '{"src": "x"}'} for i in ids]


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(row["meta"])


def test_repeat_by_band_oreal_counts_order_and_meta() -> None:
    rows = _prepared(["a", "b", "c", "d"])
    rates = _rates([(1, 10), (3, 10), (7, 10), (10, 10)])  # 0.1, 0.3, 0.7, 1.0
    rates = [{**p, "id": i} for p, i in zip(rates, "abcd", strict=True)]
    out = flt.repeat_by_band(rows, rates, OREAL)
    assert [r["id"] for r in out] == ["a"] * 6 + ["b"] * 4 + ["c"] * 2 + ["d"]  # data order, copies adjacent
    assert [_meta(r)["repeat"] for r in out] == [*range(6), *range(4), *range(2), 0]
    assert [_meta(r)["pass_rate"] for r in out] == [0.1] * 6 + [0.3] * 4 + [0.7] * 2 + [1.0]
    assert all(_meta(r)["src"] == "x" and isinstance(r["meta"], str) for r in out)  # other meta kept
    assert rows[0]["meta"] == '{"src": "x"}'  # inputs untouched
    # no bands: one row each, pass rate recorded, no repeat key
    plain = flt.repeat_by_band(rows, rates, [])
    assert [r["id"] for r in plain] == ["a", "b", "c", "d"]
    assert [_meta(r) for r in plain] == [{"src": "x", "pass_rate": p} for p in (0.1, 0.3, 0.7, 1.0)]
    assert flt.repeat_by_band([{"id": "a", "meta": {"k": 1}}], rates, [])[0]["meta"] == {"k": 1, "pass_rate": 0.1}
    with pytest.raises(R1InputError, match="'zz' has no pass rate"):
        flt.repeat_by_band(_prepared(["zz"]), rates, OREAL)


def test_repeat_band_boundaries() -> None:
    # [lo, hi): a rate equal to hi belongs to the next band; hi = 1 includes 1; outside every band: once
    assert [flt.repeat_times(p, OREAL) for p in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)] == [6, 4, 4, 2, 1, 1]
    assert flt.repeat_times(3 / 15, OREAL) == 4 and flt.repeat_times(2 / 10, OREAL) == 4  # float noise
    top = [(0.5, 1.0, 3)]
    assert [flt.repeat_times(p, top) for p in (0.4999, 0.5, 15 / 16, 1.0)] == [1, 3, 3, 3]
    assert flt.repeat_times(0.8, [(0.6, 0.8, 2), (0.8, 1.0, 5)]) == 5


def test_parse_repeat() -> None:
    assert flt.parse_repeat("0.2:0.4=4, 0:0.2=6") == [(0.0, 0.2, 6), (0.2, 0.4, 4)]
    assert flt.parse_repeat("0:1/8=6") == [(0.0, 0.125, 6)]
    for bad, msg in (("0:0.2", "expected LO:HI=TIMES"), ("0.2=3", "expected LO:HI=TIMES"),
                     ("0:0.2=x", "integer >= 0"), ("0:0.2=-1", "integer >= 0"), ("0.4:0.2=2", "LO < HI"),
                     ("0:1.5=2", "LO < HI"), ("a:0.2=2", "invalid pass-rate bound"),
                     ("0:0.4=2,0.2:0.6=3", "overlap"), (",", "expected LO:HI=TIMES")):
        with pytest.raises(R1InputError, match="--repeat") as e:
            flt.parse_repeat(bad)
        assert msg in str(e.value)


def test_repeat_summary_counts_prompts_and_rows() -> None:
    rates = [{"id": str(i), "pass_rate": p} for i, p in enumerate((0.1, 0.15, 0.3, 0.7, 0.9))]
    assert flt.repeat_summary(rates, OREAL) == [
        {"lo": 0.0, "hi": 0.2, "times": 6, "prompts": 2, "rows": 12},
        {"lo": 0.2, "hi": 0.4, "times": 4, "prompts": 1, "rows": 4},
        {"lo": 0.4, "hi": 0.6, "times": 4, "prompts": 0, "rows": 0},
        {"lo": 0.6, "hi": 0.8, "times": 2, "prompts": 1, "rows": 2}]


def test_repeat_zero_drops_the_band() -> None:
    """OREAL (oreal/datasets/prompt.py): prompts with pass rate >= 0.8 are in no band and are dropped; a
    [0.8, 1] band with TIMES 0 expresses it exactly (0.8 itself and 1.0 dropped, 0.79 kept twice)."""
    assert flt.parse_repeat("0.6:0.8=2,0.8:1=0") == [(0.6, 0.8, 2), (0.8, 1.0, 0)]
    rows = [{"id": str(i), "meta": "{}"} for i in range(4)]
    rates = [{"id": str(i), "pass_rate": p} for i, p in enumerate((0.79, 0.8, 1.0, 0.1))]
    out = flt.repeat_by_band(rows, rates, [(0.0, 0.2, 6), (0.6, 0.8, 2), (0.8, 1.0, 0)])
    assert [r["id"] for r in out] == ["0", "0"] + ["3"] * 6


def test_pass_rates_from_meta() -> None:
    rows = [{"id": "a", "answer": "1", "meta": json.dumps({"pass_rate": 0.25})},
            {"id": "b", "answer": "2", "meta": json.dumps({"pass_rate": 1})}]
    got = flt.passrates_from_meta(rows, "pass_rate")
    assert [(p["id"], p["pass_rate"]) for p in got] == [("a", 0.25), ("b", 1.0)]
    bad = [{"id": "c", "answer": "1", "meta": json.dumps({"pass_rate": "high"})}]
    with pytest.raises(R1InputError, match="pass_rate") as e:
        flt.passrates_from_meta(bad, "pass_rate", file="prepared.parquet")
    assert "prepared.parquet" in str(e.value)
    with pytest.raises(R1InputError, match="pass rate"):
        flt.passrates_from_meta([{"id": "d", "answer": "1", "meta": "{}"}], "pass_rate")
