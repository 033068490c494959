from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from r1cli.errors import R1InputError
from r1cli.eval.compare import collect_metrics, compare, metric_keys


def _write(root: Path, model: str, bench: str, h: str, **metrics: Any) -> Path:
    d = root / model / bench / h
    d.mkdir(parents=True)
    spec = {
        "n": 4,
        "temperature": metrics.pop("temperature", 0.6),
        "top_p": 0.95,
        "max_tokens": 64,
        "template": "chat",
        "system_prompt": None,
        "seed": 0,
        "greedy": True,
        "limit": None,
    }
    m = {"benchmark": bench, "model": model, "spec_hash": h, "spec": spec, "n_problems": 30, **metrics}
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def test_compare_pairs_and_deltas(tmp_path: Path) -> None:
    _write(tmp_path / "A", "m1", "aime24", "h1", **{"avg@4": 0.25, "pass@4": 0.5, "greedy_acc": 0.2})
    _write(tmp_path / "A", "m1", "math500", "h1", **{"avg@4": 0.5})
    _write(tmp_path / "B", "m2", "aime24", "h1", **{"avg@4": 0.40, "pass@4": 0.5, "greedy_acc": 0.3})
    _write(tmp_path / "B", "m2", "gsm8k", "h1", **{"avg@4": 0.9})
    pairs = compare(tmp_path / "A", tmp_path / "B")
    by = {p["benchmark"]: p for p in pairs}
    assert set(by) == {"aime24", "math500", "gsm8k"}
    rows = {r[0]: r for r in by["aime24"]["rows"]}
    assert rows["avg@4"][3] == pytest.approx(0.15) and rows["pass@4"][3] == 0.0
    assert rows["greedy_acc"][1:3] == (0.2, 0.3)
    assert by["math500"]["b"] is None and by["gsm8k"]["a"] is None
    assert by["aime24"]["spec_diff"] == {}


def test_compare_flags_spec_differences(tmp_path: Path) -> None:
    _write(tmp_path / "A", "m", "aime24", "h1", **{"avg@4": 0.25})
    _write(tmp_path / "B", "m", "aime24", "h2", temperature=1.0, **{"avg@4": 0.3})
    (p,) = compare(tmp_path / "A", tmp_path / "B")
    assert p["spec_diff"] == {"temperature": (0.6, 1.0)}


def test_collect_accepts_file_dir_tree_and_errors(tmp_path: Path) -> None:
    d = _write(tmp_path, "m", "aime24", "h", **{"avg@4": 0.1})
    assert (
        len(collect_metrics(d / "metrics.json")) == len(collect_metrics(d)) == len(collect_metrics(tmp_path))
    )
    with pytest.raises(R1InputError):
        collect_metrics(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(R1InputError):
        collect_metrics(tmp_path / "empty")


def test_metric_key_order() -> None:
    rows = [{"pass@16": 1, "pass@8": 1, "avg@16": 0.5, "greedy_acc": 0.1, "maj@16": 0.3, "flag": True}]
    assert metric_keys(rows) == ["greedy_acc", "avg@16", "pass@8", "pass@16", "maj@16"]
