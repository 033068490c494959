"""r1 data prepare: loading, normalising, templating, validation, on the real shared files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1cli.data.prepare import (
    gold_of,
    load_source,
    normalise_rows,
    prepare,
    read_rows,
    read_table,
    write_rows,
)
from r1cli.data.templates import TEMPLATES, apply_template, render_prompt
from r1cli.errors import R1InputError
from r1cli.utils.io import read_parquet

FILES = {  # file -> (template, task)
    "eval/aime2024.jsonl": ("r1-zero", "math"), "eval/aime2025.jsonl": ("qwen-math", "math"),
    "eval/amc2023.jsonl": ("r1-distill", "math"), "eval/amc_2022_2023.jsonl": ("dapo", "math"),
    "eval/math500.jsonl": ("qwen-math", "math"), "eval/minerva_math.jsonl": ("qwen-math", "math"),
    "eval/olympiadbench.jsonl": ("r1-distill", "math"), "eval/gsm8k_test.jsonl": ("chat", "gsm8k"),
    "train/limr_1389.jsonl": ("qwen-math", "math"), "train/math_lvl3to5_8k.jsonl": ("r1-zero", "math"),
    "train/deepscaler_head803.jsonl": ("r1-distill", "math"),
    "train/deepscaler_aime_1983_2023.jsonl": ("r1-distill", "math"),
    "train/kk_logic_train.jsonl": ("kk", "kk"), "train/kk_logic_test.jsonl": ("kk", "kk"),
    "train/countdown_train.jsonl": ("countdown", "countdown"),
    "train/countdown_test.jsonl": ("countdown", "countdown"),
}


def test_every_shared_file_is_covered(shared_data: Path) -> None:
    on_disk = {f"{p.parent.name}/{p.name}" for p in shared_data.glob("*/*.jsonl")}
    assert on_disk == set(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_prepare_every_shared_file(shared_data: Path, tmp_path: Path, name: str) -> None:
    template, task = FILES[name]
    src = shared_data / name
    n_lines = sum(1 for line in src.read_text(encoding="utf-8").splitlines() if line.strip())
    res = prepare(str(src), tmp_path / "out.parquet", template=template, task=task)
    assert res == {"source": str(src), "rows": n_lines, "invalid_skipped": 0,
                   "out": str(tmp_path / "out.parquet"), "duplicates_dropped": 0}
    rows = read_parquet(tmp_path / "out.parquet")
    raw = read_table(src)
    assert len(rows) == len(raw) == n_lines
    assert len({r["id"] for r in rows}) == len(rows)
    for r, s in zip(rows, raw, strict=True):
        assert r["id"] == s["id"]
        assert r["answer"] == s["answer"] and r["answer"].strip()
        assert r["task"] == task
        meta = json.loads(r["meta"])
        assert meta["problem"] == s["problem"]
        text = r["prompt"] if r["prompt"] is not None else r["messages"][-1]["content"]
        if template == "countdown":  # the countdown template rebuilds the question from nums/target
            assert str(s["nums"]) in text and str(s["target"]) in text
        else:
            assert s["problem"] in text
        gold = gold_of(r)
        assert gold["answer"] == s["answer"] and gold["id"] == s["id"]
    if "kk_logic" in name:
        assert json.loads(rows[0]["meta"])["names"] == raw[0]["names"]


def test_templates_have_their_recipe_markers() -> None:
    row = {"nums": [3, 5, 7], "target": 22}
    assert apply_template("r1-zero", "What is 1+1?", {})["prompt"].endswith("Assistant: <think>")
    assert "<answer> </answer>" in apply_template("r1-zero", "x", {})["prompt"]
    qm = apply_template("qwen-math", "P", {})["messages"]
    assert qm[0] == {"role": "system",
                     "content": "Please reason step by step, and put your final answer within \\boxed{}."}
    assert qm[1] == {"role": "user", "content": "P"}
    rd = apply_template("r1-distill", "P", {})["messages"]
    assert rd == [{"role": "user", "content": "P Let's think step by step and output the final answer within "
                                              "\\boxed{}."}]
    dapo = apply_template("dapo", "P", {})["messages"][0]["content"]
    assert "Answer: $Answer" in dapo and dapo.endswith('after "Answer:".')
    cd = apply_template("countdown", "ignored", row)["prompt"]
    assert "Using the numbers [3, 5, 7], create an equation that equals 22." in cd and cd.endswith("<think>")
    kk = apply_template("kk", "P", {})["messages"]
    assert kk[0]["role"] == "system" and "knight" in kk[0]["content"]
    sp = apply_template("qwen-math", "P", {}, system_prompt="SYS")["messages"]
    assert sp == [{"role": "system", "content": "SYS"}, {"role": "user", "content": "P"}]
    with pytest.raises(ValueError, match="unknown template 'nope'"):
        apply_template("nope", "P", {})
    assert {"r1-zero", "qwen-math", "r1-distill", "dapo", "countdown", "kk", "tiny-chat"} <= set(TEMPLATES)


def test_invalid_row_names_file_row_and_field(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"problem": "a", "answer": "1"}\n{"problem": "b"}\n{"problem": "", "answer": "3"}\n')
    with pytest.raises(R1InputError) as exc:
        prepare(str(src), tmp_path / "o.parquet")
    assert str(exc.value) == f"{src}, row 1, field 'answer': missing or empty answer"
    res = prepare(str(src), tmp_path / "o.parquet", skip_invalid=True)
    assert res["rows"] == 1 and res["invalid_skipped"] == 2
    assert not (tmp_path / "never.parquet").exists()


def test_bad_json_and_duplicate_ids(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"problem": "a", "answer": "1"}\n{"problem": oops}\n')
    with pytest.raises(R1InputError, match=r"bad.jsonl, row 1: invalid JSON"):
        read_table(src)
    dup = [{"id": "x", "problem": "a", "answer": "1"}, {"id": "x", "problem": "b", "answer": "2"}]
    with pytest.raises(R1InputError, match=r"row 1, field 'id': duplicate id 'x'"):
        normalise_rows(dup, file="f")
    with pytest.raises(R1InputError, match="file not found"):
        read_rows(tmp_path / "missing.jsonl")


def test_json_parquet_messages_and_key_fallbacks(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"data": [{"question": "Q1", "answer": 4.0}]}))
    rows, bad = normalise_rows(read_table(tmp_path / "a.json"), file="a.json")
    assert bad == 0 and rows[0]["messages"] == [{"role": "user", "content": "Q1"}]
    assert rows[0]["answer"] == "4" and rows[0]["id"] == "row-0"
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    rows, _ = normalise_rows([{"messages": msgs, "sol": [1, 2]}], file="m", answer_key="sol")
    assert rows[0]["messages"] == msgs and rows[0]["answer"] == "[1, 2]"
    write_rows(tmp_path / "r.parquet", rows)
    write_rows(tmp_path / "r.jsonl", rows)
    assert read_rows(tmp_path / "r.parquet") == read_rows(tmp_path / "r.jsonl") == rows
    src = tmp_path / "p.jsonl"
    src.write_text('{"text": "T", "label": "L"}\n')
    res = prepare(str(src), tmp_path / "p.parquet", prompt_key="text", answer_key="label", template="plain")
    out = read_parquet(tmp_path / "p.parquet")
    assert res["rows"] == 1 and out[0]["prompt"] == "T" and out[0]["answer"] == "L"


def test_synth_source_shuffle_limit_deterministic(tmp_path: Path) -> None:
    res = prepare("synth:addition", tmp_path / "a.parquet", size=50, shuffle=True, limit=10, seed=3,
                template="tiny-chat", task="addition")
    prepare("synth:addition", tmp_path / "b.parquet", size=50, shuffle=True, limit=10, seed=3,
                template="tiny-chat", task="addition")
    ra, rb = read_parquet(tmp_path / "a.parquet"), read_parquet(tmp_path / "b.parquet")
    assert res["rows"] == 10 and ra == rb
    assert [r["id"] for r in ra] != [f"addition-train-{i}" for i in range(10)]  # shuffled
    assert all(r["response"].endswith(f"<answer>{r['answer']}</answer>") for r in ra)


def test_unknown_source_and_offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(R1InputError, match="data source not found"):
        load_source("./nope.jsonl")
    with pytest.raises(R1InputError, match="unknown synthetic task"):
        load_source("synth:chess")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(R1InputError, match=r"could not load Hub dataset 'no-such-org/no-such-set' split"):
        load_source("no-such-org/no-such-set")


def test_render_prompt_with_tiny_tokenizer(tiny_model: Path, addition_rows: list[dict]) -> None:
    from r1cli.engines.hf_rollout import load_tokenizer

    tok = load_tokenizer(str(tiny_model))
    ids = render_prompt(tok, addition_rows[0])
    assert all(isinstance(i, int) for i in ids)
    text = tok.decode(ids)
    q = json.loads(addition_rows[0]["meta"])["problem"]
    assert q in text and text.index(q) < len(text) - len(q)  # the generation prompt follows the question
    plain = render_prompt(tok, {"id": "p", "prompt": q})
    assert tok.decode(plain) == q
    with pytest.raises(ValueError, match="neither"):
        render_prompt(tok, {"id": "z"})


def test_length_targets_are_seeded_per_row_and_reach_the_reward(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from r1cli.data.prepare import gold_of, prepare
    from r1cli.rewards import SHAPING
    from r1cli.utils.io import read_parquet

    lt = {"low": 20, "high": 32, "instruction": "Think for {n} tokens.", "separator": "\n\n"}
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    prepare("synth:addition", a, template="tiny-chat", task="addition", size=40, length_target=lt)
    prepare("synth:addition", b, template="tiny-chat", task="addition", size=40, length_target=lt)
    ra, rb = read_parquet(a), read_parquet(b)
    targets = [json.loads(r["meta"])["target_len"] for r in ra]
    assert targets == [json.loads(r["meta"])["target_len"] for r in rb]  # deterministic
    assert all(20 <= t <= 32 for t in targets) and len(set(targets)) > 3
    for r, t in zip(ra, targets, strict=True):
        assert r["messages"][-1]["content"].endswith(f"\n\nThink for {t} tokens.")
    g = gold_of(ra[0])
    assert g["target_len"] == targets[0]
    got = SHAPING["l1_exact"](score=1.0, correct=True, length=targets[0] + 5, gold=g, alpha=0.1)
    assert abs(got - 0.5) < 1e-9


def test_length_target_schema_rejects_bad_ranges() -> None:
    import pytest

    from r1cli.config import resolve
    from r1cli.errors import R1ConfigError

    with pytest.raises((R1ConfigError, ValueError), match="high"):
        resolve("l1-exact", ["data.train.length_target.low=50", "data.train.length_target.high=10"])


def _fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    """Replace datasets.load_dataset (no network) with a recorder returning two gsm8k-like rows."""
    import datasets

    calls: list[tuple[tuple, dict]] = []

    def load_dataset(*args: object, **kwargs: object) -> list[dict]:
        calls.append((args, kwargs))
        return [{"question": "1+1?", "answer": "2"}, {"question": "2+3?", "answer": "5"}]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_config_name_reaches_load_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_hub(monkeypatch)
    rows, name = load_source("openai/gsm8k", split="test", config="main")
    assert calls == [(("openai/gsm8k", "main"), {"split": "test"})]
    assert len(rows) == 2 and name == "hub:openai/gsm8k:main[test]"
    load_source("openai/gsm8k")  # no config: the call is as before
    assert calls[-1] == (("openai/gsm8k",), {"split": "train"})
    res = prepare("openai/gsm8k", tmp_path / "o.parquet", config="main", task="gsm8k")
    assert res["rows"] == 2 and calls[-1] == (("openai/gsm8k", "main"), {"split": "train"})


def test_hub_config_error_names_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("Config name is missing")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(R1InputError, match=r"'openai/gsm8k' config 'mian' split 'train'"):
        load_source("openai/gsm8k", config="mian")
