"""Hub data as published (issue 16): verl parquet (Eurus-2-RL-Data, DAPO-Math-17k, Skywork-OR1), OREAL-RL,
OpenRLHF and TRL conversational prompt files, written here in each format, load into the same prepared
schema; nested field maps, per-row task routing, code test cases, DAPO's repeated rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from r1cli.cli.data import app
from r1cli.data.prepare import apps_tests, gold_of, normalise_rows, prepare
from r1cli.errors import R1InputError
from r1cli.rewards import REWARDS
from r1cli.utils.io import read_parquet

SYSTEM = "When tackling complex reasoning tasks, you have access to the following actions."
PRIME_SUFFIX = "\n\nPresent the answer in LaTex format: \\boxed{Your answer}"

VERL_ROWS: list[dict[str, Any]] = [
    {"data_source": "numina_olympiads",
     "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2+3?" + PRIME_SUFFIX}],
     "ability": "math", "reward_model": {"style": "rule", "ground_truth": "5"},
     "extra_info": {"split": "dummy", "index": 0}},
    {"data_source": "taco",
     "prompt": [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Read n and print 2n.\n\nWrite Python code to solve the problem."}],
     "ability": "code",
     "reward_model": {"style": "rule",
                      "ground_truth": json.dumps({"inputs": ["3\n", "5\n"], "outputs": ["6\n", "10\n"]})},
     "extra_info": {"split": "dummy", "index": 0}},
    {"data_source": "math_dapo", "prompt": [{"role": "user", "content": "1+1?"}], "ability": "MATH",
     "reward_model": {"style": "rule", "ground_truth": "2"}, "extra_info": {"split": "train", "index": 7}},
]
OREAL_ROWS = [{"question": "What is 2+3?", "gold_answer": "5", "pass_rate": 0.25},
              {"question": "1+1?", "gold_answer": "2", "pass_rate": 0.875}]
OPENRLHF_ROWS = [{"input": "What is 2+3?", "label": "5"},
                 {"context_messages": [{"role": "user", "content": "1+1?"}], "label": "2"}]
TRL_ROWS = [{"prompt": [{"role": "user", "content": "What is 2+3?"}], "answer": "5"}]


def _parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_verl_parquet_reads_messages_ground_truth_and_ability(tmp_path: Path) -> None:
    src = _parquet(tmp_path / "eurus.parquet", VERL_ROWS)
    res = prepare(str(src), tmp_path / "out.parquet", template="prime", task="math")
    assert res["rows"] == 3
    rows = read_parquet(tmp_path / "out.parquet")
    math, code, dapo = rows
    # the published chat prompt is kept verbatim (system prompt and instruction included, no template added)
    assert math["messages"] == VERL_ROWS[0]["prompt"] and math["prompt"] is None
    assert math["answer"] == "5" and math["task"] == "math"
    g = gold_of(math)
    assert g["data_source"] == "numina_olympiads" and "reward_model" not in g and "prompt" not in g
    assert g["problem"] == "What is 2+3?" + PRIME_SUFFIX
    # code rows are routed by `ability` and their APPS test cases become the code reward's tests
    assert code["task"] == "code"
    assert gold_of(code)["tests"] == [{"input": "3\n", "output": "6\n"}, {"input": "5\n", "output": "10\n"}]
    ok = REWARDS["code"]("```python\nprint(2 * int(input()))\n```", gold_of(code))
    assert ok.score == 1.0 and ok.correct
    assert dapo["answer"] == "2" and dapo["task"] == "math"  # ability lower-cased


def test_verl_ground_truth_list(tmp_path: Path) -> None:
    """verl's gsm8k example stores ground_truth as a list: the first is the answer, the rest alternatives."""
    row = {"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": "1+1?"}], "ability": "math",
           "reward_model": {"style": "rule", "ground_truth": ["2", "2.0"]}}
    src = _parquet(tmp_path / "gsm.parquet", [row])
    prepare(str(src), tmp_path / "out.parquet")
    (r,) = read_parquet(tmp_path / "out.parquet")
    assert r["answer"] == "2" and gold_of(r)["answer_alternatives"] == ["2.0"]


def test_nested_keys_in_field_maps(tmp_path: Path) -> None:
    rows, _ = normalise_rows(VERL_ROWS[:1], file="x", prompt_key="prompt", answer_key="reward_model.ground_truth")
    assert rows[0]["answer"] == "5"
    rows, _ = normalise_rows([{"q": {"text": "2+2?"}, "a": {"value": 4}}], file="x", prompt_key="q.text",
                             answer_key="a.value", template="chat")
    assert rows[0]["messages"][-1]["content"] == "2+2?" and rows[0]["answer"] == "4"
    with pytest.raises(R1InputError, match="missing or empty answer"):
        normalise_rows([{"q": "2+2?", "a": {}}], file="f.jsonl", prompt_key="q", answer_key="a.value")


def test_same_prepared_schema_from_verl_oreal_openrlhf_trl(tmp_path: Path) -> None:
    outs = {}
    for name, rows, write in [("verl.parquet", VERL_ROWS[:1], _parquet), ("oreal.jsonl", OREAL_ROWS, _jsonl),
                              ("openrlhf.jsonl", OPENRLHF_ROWS, _jsonl), ("trl.jsonl", TRL_ROWS, _jsonl)]:
        src = write(tmp_path / name, rows)
        prepare(str(src), tmp_path / f"{name}.out.parquet", template="chat", task="math")
        outs[name] = read_parquet(tmp_path / f"{name}.out.parquet")
    cols = {n: sorted(r[0]) for n, r in outs.items()}
    assert len({tuple(c) for c in cols.values()}) == 1, cols
    # the 2+3 question reaches the same user text and the same answer in every format
    for n, rows in outs.items():
        assert rows[0]["answer"] == "5", n
        assert rows[0]["messages"][-1]["role"] == "user"
        assert rows[0]["messages"][-1]["content"].startswith("What is 2+3?"), n
    oreal = outs["oreal.jsonl"]
    assert [gold_of(r)["pass_rate"] for r in oreal] == [0.25, 0.875]
    assert "gold_answer" not in gold_of(oreal[0]) and "question" not in gold_of(oreal[0])
    assert outs["openrlhf.jsonl"][1]["messages"] == [{"role": "user", "content": "1+1?"}]


def test_system_prompt_replaces_a_published_system_message(tmp_path: Path) -> None:
    rows, _ = normalise_rows(VERL_ROWS[:1], file="x", system_prompt="S")
    assert rows[0]["messages"][0] == {"role": "system", "content": "S"} and len(rows[0]["messages"]) == 2


def test_dapo_repetition_dropped(tmp_path: Path) -> None:
    dapo = {"data_source": "math_dapo", "prompt": [{"role": "user", "content": "Solve x+1=3."}],
            "ability": "MATH", "reward_model": {"style": "rule", "ground_truth": "2"}}
    other = {**dapo, "prompt": [{"role": "user", "content": "Solve x+2=3."}],
             "reward_model": {"style": "rule", "ground_truth": "1"}}
    raw = [{**dapo, "extra_info": {"index": f"u{i}"}} if i % 2 == 0 else {**other, "extra_info": {"index": f"v{i}"}}
           for i in range(200)]
    src = _parquet(tmp_path / "dapo.parquet", raw)
    res = prepare(str(src), tmp_path / "out.parquet", drop_duplicates=True)
    assert res["rows"] == 2 and res["duplicates_dropped"] == 198
    assert [r["answer"] for r in read_parquet(tmp_path / "out.parquet")] == ["2", "1"]
    res = prepare(str(src), tmp_path / "all.parquet")
    assert res["rows"] == 200 and res["duplicates_dropped"] == 0


def test_apps_call_based_tests_run_in_the_code_reward() -> None:
    tests = apps_tests({"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], 7]})
    assert tests is not None and len(tests) == 2
    gold = {"tests": tests}
    assert REWARDS["code"]("```python\ndef add(a, b):\n    return a + b\n```", gold).score == 1.0
    assert REWARDS["code"]("```python\ndef add(a, b):\n    return a - b\n```", gold).score == 0.0
    assert tests[0] == "assert add(1, 2) in ([3], 3)" and tests[1] == "assert add(3, 4) in (7,)"
    assert apps_tests("not json") is None and apps_tests({"x": 1}) is None
    with pytest.raises(ValueError, match="inputs"):
        apps_tests({"inputs": [1], "outputs": []})


def test_cli_prepare_loads_each_format(tmp_path: Path) -> None:
    """Acceptance: `r1 data prepare` loads a verl-format, an OREAL-format and an OpenRLHF-format file."""
    runner = CliRunner()
    srcs = [_parquet(tmp_path / "v.parquet", VERL_ROWS), _jsonl(tmp_path / "o.jsonl", OREAL_ROWS),
            _jsonl(tmp_path / "r.jsonl", OPENRLHF_ROWS)]
    schemas = set()
    for src in srcs:
        out = tmp_path / f"{src.stem}.prepared.parquet"
        res = runner.invoke(app, ["prepare", str(src), "--out", str(out), "--template", "qwen-math"])
        assert res.exit_code == 0, res.output
        rows = read_parquet(out)
        assert rows and all(r["answer"] and r["messages"] for r in rows)
        schemas.add(tuple(sorted(rows[0])))
    assert len(schemas) == 1


def test_oreal_file_filtered_by_its_published_pass_rates(tmp_path: Path) -> None:
    """OREAL-format file -> prepare -> `r1 data filter --pass-rate-key pass_rate` with OREAL's bands: no model,
    no rollouts; 0.875 (>= 0.8) dropped, 0.25 repeated 4 times."""
    src = _jsonl(tmp_path / "oreal.jsonl", OREAL_ROWS)
    prepare(str(src), tmp_path / "p.parquet", template="oreal")
    out = tmp_path / "f.parquet"
    res = CliRunner().invoke(app, ["filter", str(tmp_path / "p.parquet"), "--out", str(out), "--acc", "0:1",
                                   "--pass-rate-key", "pass_rate",
                                   "--repeat", "0:0.2=6,0.2:0.4=4,0.4:0.6=4,0.6:0.8=2,0.8:1=0"])
    assert res.exit_code == 0, res.output
    rows = read_parquet(out)
    assert len(rows) == 4 and {r["answer"] for r in rows} == {"5"}
    assert all(gold_of(r)["pass_rate"] == 0.25 for r in rows)
