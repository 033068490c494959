"""Experiment tracking (r1cli/utils/tracking.py): what each tracker wrote, read back with that tracker's own reader
(TensorBoard's EventAccumulator, the MLflow client on the run's store, W&B's offline transaction log)."""

from __future__ import annotations

import glob
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from r1cli.config import resolve
from r1cli.errors import R1ConfigError
from r1cli.utils.io import read_jsonl
from r1cli.utils.tracking import StageLogger, flatten, scalars

ROWS = [
    {"loss": 2.0, "grad_norm": 1.5, "lr": 1e-3, "stage": "s1", "step": 0},
    {"loss": 1.0, "grad_norm": 0.5, "lr": 1e-3, "stage": "s1", "step": 1},
    {"loss": 0.5, "grad_norm": 0.25, "lr": 5e-4, "stage": "s1", "step": 2},
]
TABLE = [{"model": "final", "benchmark": "test", "avg@1": 0.5, "pass@1": 0.5}]


def _logger(run: Path, report_to: list[str], **kw: Any) -> StageLogger:
    cfg = resolve("tiny", [f"logging.report_to=[{','.join(report_to)}]"])
    (run / "config.yaml").write_text("name: tiny\n")  # a run dir: find_run_dir stops here
    return StageLogger.for_recipe(cfg, stage=kw.pop("stage", "s1"), metrics_path=run / "rl" / "s1" / "metrics.jsonl",
                                  **kw)


def _write(run: Path, report_to: list[str]) -> None:
    with _logger(run, report_to) as lg:
        for r in ROWS:
            lg.log(r["step"], r)
        lg.log_table("eval", TABLE)


def test_scalars_and_flatten() -> None:
    assert scalars({"a": 1, "b": True, "c": "x", "step": 3, "d": [1]}) == {"a": 1.0, "b": 1.0}
    assert flatten({"rl": {"lr": 1e-6, "stages": [{"n": 2}]}, "x": None}) == {
        "rl.lr": "1e-06", "rl.stages": '[{"n": 2}]', "x": "null"}


def test_schema_default_and_validation() -> None:
    assert resolve("tiny").logging.report_to == ["jsonl", "tensorboard"]
    with pytest.raises(R1ConfigError, match=r"logging\.report_to\.1"):
        resolve("tiny", ["logging.report_to=[jsonl,neptune]"])
    with pytest.raises(R1ConfigError, match="must include 'jsonl'"):
        resolve("tiny", ["logging.report_to=[tensorboard]"])
    with pytest.raises(R1ConfigError, match="twice"):
        resolve("tiny", ["logging.report_to=[jsonl,jsonl]"])


def test_jsonl_lines_are_the_old_lines_and_resume_truncates(tmp_path: Path) -> None:
    _write(tmp_path, ["jsonl"])
    path = tmp_path / "rl" / "s1" / "metrics.jsonl"
    assert read_jsonl(path) == ROWS
    assert read_jsonl(path.with_name("eval.table.jsonl")) == TABLE
    # a stage resumed at step 1 redoes steps >= 1: their old lines go
    with _logger(tmp_path, ["jsonl"], resume_step=1) as lg:
        lg.log(1, {"loss": 9.0})
    assert [(r["step"], r["loss"]) for r in read_jsonl(path)] == [(0, 2.0), (1, 9.0)]


def test_stage_label_is_the_stage_folder_in_the_run(tmp_path: Path) -> None:
    with _logger(tmp_path, ["jsonl"], stage=None) as lg:
        assert lg.stage == "rl/s1" and lg.run_dir == tmp_path.resolve() and lg.run_name == tmp_path.name


def test_disabled_logger_writes_nothing(tmp_path: Path) -> None:
    with _logger(tmp_path, ["jsonl"], enabled=False) as lg:
        lg.log(0, {"loss": 1.0})
    assert not (tmp_path / "rl" / "s1" / "metrics.jsonl").exists()


def test_tensorboard_read_back(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _write(tmp_path, ["jsonl", "tensorboard"])
    acc = EventAccumulator(str(tmp_path / "tensorboard" / "s1"))
    acc.Reload()
    assert {"loss", "grad_norm", "lr"} <= set(acc.Tags()["scalars"])
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(0, 2.0), (1, 1.0), (2, 0.5)]
    texts = {t: acc.Tensors(t)[0].tensor_proto.string_val[0].decode() for t in acc.Tags()["tensors"]}
    cfg_text = next(v for k, v in texts.items() if k.startswith("config"))
    assert "name: tiny" in cfg_text and "report_to" in cfg_text
    eval_text = next(v for k, v in texts.items() if k.startswith("eval"))
    assert "| final | test | 0.5 | 0.5 |" in eval_text


def test_mlflow_read_back(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    _write(tmp_path, ["jsonl", "mlflow"])
    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    exp = c.get_experiment_by_name("r1")
    (run,) = c.search_runs([exp.experiment_id])
    assert run.info.run_name == f"{tmp_path.name}/s1" and run.info.status == "FINISHED"
    assert run.data.params["rl.stages"].startswith("[") and run.data.params["name"] == "tiny"
    assert run.data.params["logging.report_to"] == '["jsonl", "mlflow"]'
    assert [(m.step, m.value) for m in c.get_metric_history(run.info.run_id, "grad_norm")] == [
        (0, 1.5), (1, 0.5), (2, 0.25)]
    table = json.loads(Path(c.download_artifacts(run.info.run_id, "eval.json", str(tmp_path))).read_text())
    assert table["columns"] == ["model", "benchmark", "avg@1", "pass@1"] and table["data"] == [
        ["final", "test", 0.5, 0.5]]
    # a resumed stage continues the same MLflow run
    with _logger(tmp_path, ["jsonl", "mlflow"], resume_step=3) as lg:
        lg.log(3, {"loss": 0.25})
    assert len(c.search_runs([exp.experiment_id])) == 1
    assert [m.step for m in c.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2, 3]


def _wandb_records(path: str) -> list[Any]:
    """Records of a W&B transaction log (``run-<id>.wandb``): the 7-byte W&B header, then LevelDB-log framing
    (32 KiB blocks of [crc32c:4][length:2 LE][type:1][data] chunks, type 1 full / 2 first / 3 middle / 4 last)
    around ``wandb_internal_pb2.Record`` protobufs -- parsed with W&B's own protobuf classes."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    out, pos, buf, block = [], 7, b"", 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
    return out


def test_wandb_offline_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    _write(tmp_path, ["jsonl", "wandb"])
    (log,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    recs = _wandb_records(log)
    run = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    assert (run.display_name, run.run_group, run.job_type, run.project) == (f"{tmp_path.name}/s1", tmp_path.name,
                                                                         "s1", "r1")
    cfg = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert cfg["name"] == "tiny" and cfg["logging"]["report_to"] == ["jsonl", "wandb"]
    hist = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            for r in recs if r.WhichOneof("record_type") == "history"]
    losses = [(h["_step"], h["loss"]) for h in hist if "loss" in h]
    assert losses == [(0, 2.0), (1, 1.0), (2, 0.5)]
    (table,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "files" / "media" / "table" / "eval_*.json"))
    t = json.loads(Path(table).read_text())
    assert t["columns"] == ["model", "benchmark", "avg@1", "pass@1"] and t["data"] == [["final", "test", 0.5, 0.5]]


def test_missing_package_names_the_key(tmp_path: Path) -> None:
    """A selected tracker whose package is absent: resolve fails naming logging.report_to (run in a child with
    the package hidden, so this runs whether or not wandb is installed here)."""
    code = (
        "import sys; sys.modules['wandb'] = None\n"
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'wandb' else real(n, *a)\n"
        "from r1cli.config import resolve\n"
        "from r1cli.errors import R1ConfigError\n"
        "try:\n    resolve('tiny', ['logging.report_to=[jsonl,wandb]'])\n"
        "except R1ConfigError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "logging.report_to" in out and "'wandb' package is not installed" in out
