"""Model cards (r1cli/report/card.py) and `r1 push` (up to the Hub calls, which are monkeypatched)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from r1cli.config import resolve, to_dict, to_yaml

EVAL = {
    "model": "final", "benchmark": "test", "n_problems": 256, "greedy_acc": 0.8125, "avg@4": 0.75,
    "pass@1": 0.75, "pass@4": 0.9, "response_len_mean": 31.4, "truncation_rate": 0.0123,
    "spec": {"n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 64, "template": "tiny-chat", "seed": 0,
             "spec_hash": "abc123"},
}


def _run(tmp_path: Path, *sets: str) -> tuple[Any, Path]:
    cfg = resolve("tiny", list(sets))
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    for rel in ("warmup/sft/model", "rl/s1/model", "rl/s2/model"):
        (run / rel).mkdir(parents=True)
        (run / rel / "config.json").write_text("{}")
        (run / rel / "model.safetensors").write_bytes(b"\0" * 8)
    e = run / "eval" / "final" / "test" / "abc123"
    e.mkdir(parents=True)
    (e / "metrics.json").write_text(json.dumps(EVAL))
    return cfg, run


def test_card_front_matter_and_sections(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from r1cli.report.card import model_card

    cfg, run = _run(tmp_path, "model.path=Qwen/Qwen2.5-Math-7B",
                    "data.train.source=agentica-org/DeepScaleR-Preview-Dataset")
    text = model_card(to_dict(cfg), run, model_name="s2", aliases=["final"], repo_id="me/tiny-r1")
    card = ModelCard(text)  # the Hub's own parser of the YAML front matter
    d = card.data.to_dict()
    assert d["base_model"] == "Qwen/Qwen2.5-Math-7B" and d["library_name"] == "transformers"
    assert d["datasets"] == ["agentica-org/DeepScaleR-Preview-Dataset"]
    assert {"r1", "rl", "reinforcement-learning", "final", "recipe:tiny"} <= set(d["tags"])
    body = card.text
    assert "base → sft → rl:s1 → rl:s2" in body
    # eval table: the final model's numbers in percent, with the sampling spec
    row = next(line for line in body.splitlines() if line.startswith("| test |"))
    assert "| 256 | 81.2 | 75.0 | 90.0 | 31 | 1.2 |" in row
    assert "n=4 T=0.6 top_p=0.95 max_tokens=64 template=tiny-chat seed=0 spec abc123" in row
    assert 'AutoModelForCausalLM.from_pretrained("me/tiny-r1"' in body
    assert "rl:\n" in body and "report_to:" in body  # the full resolved config


def test_intermediate_stage_card_has_no_final_evals(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from r1cli.report.card import model_card

    cfg, run = _run(tmp_path)
    card = ModelCard(model_card(to_dict(cfg), run, model_name="s1"))
    assert "base_model" not in card.data.to_dict()  # embedded:tiny is no Hub model
    assert "final" not in card.data.to_dict()["tags"]
    assert "No evaluation of this model yet" in card.text and "rl:s2" not in card.text


def test_write_model_card_names_and_aliases(tmp_path: Path) -> None:
    from r1cli.cli.push import model_names, write_model_card

    cfg, run = _run(tmp_path)
    assert model_names(cfg, run, "final") == (run / "rl" / "s2" / "model", ["s2"])
    assert model_names(cfg, run, "s2")[1] == ["final"]
    path = write_model_card(cfg, run, "s2")
    assert path == run / "rl" / "s2" / "model" / "README.md" and "| test |" in path.read_text()
    with pytest.raises(ValueError, match="not a trained model"):
        model_names(cfg, run, "nope")


def test_push_uploads_folder_with_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    from r1cli.cli.main import app

    _, run = _run(tmp_path)
    calls: dict[str, Any] = {}

    def create_repo(self: Any, repo_id: str, **kw: Any) -> str:
        calls["create"] = (repo_id, kw)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self: Any, **kw: Any) -> Any:
        folder = Path(kw["folder_path"])
        calls["upload"] = kw
        calls["files"] = {p.name: p.read_bytes() for p in folder.iterdir()}
        return None

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    res = CliRunner().invoke(app, ["push", "--run", str(run), "--repo-id", "me/tiny-r1", "--private"])
    assert res.exit_code == 0, res.output
    assert calls["create"] == ("me/tiny-r1", {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls["upload"]["repo_id"] == "me/tiny-r1" and calls["upload"]["repo_type"] == "model"
    assert set(calls["files"]) == {"config.json", "model.safetensors", "README.md"}
    readme = calls["files"]["README.md"].decode()
    assert readme.startswith("---\n") and 'from_pretrained("me/tiny-r1"' in readme and "| test |" in readme
    assert not (run / "rl" / "s2" / "model" / "README.md").exists()  # the run's folder is untouched


def test_push_refuses_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from r1cli.cli.main import app

    _, run = _run(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    r = CliRunner().invoke(app, ["push", "--run", str(run), "--repo-id", "noslash"])
    assert r.exit_code == 2 and "OWNER/NAME" in r.output
    r = CliRunner().invoke(app, ["push", "--run", str(run), "--repo-id", "me/x", "--stage", "long2short"])
    assert r.exit_code == 2 and "no exported model" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["push", "--run", str(run), "--repo-id", "me/x", "--stage", "base"])
    assert r.exit_code == 2 and "not a trained model" in " ".join(r.output.split())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = CliRunner().invoke(app, ["push", "--run", str(run), "--repo-id", "me/x"])
    assert r.exit_code == 2 and "HF_HUB_OFFLINE" in r.output
