"""Experiment tracking: one stage's metrics, resolved config and tables, fanned out to the trackers named in
``logging.report_to`` (``jsonl``, ``tensorboard``, ``wandb``, ``mlflow``), each through its own client.

Every backend has the same four calls: ``start(run_name, stage, config)``, ``log(step, metrics)``,
``log_table(name, rows)``, ``finish()``; :class:`StageLogger` holds the selected ones and has the same calls
(plus ``with`` support). Where each writes, for a run directory ``RUN``:

- ``jsonl``: the stage's ``metrics.jsonl`` (r1's own record: the report and ``r1 pipeline status`` read it) and
  ``<name>.table.jsonl`` beside it for tables.
- ``tensorboard``: ``RUN/tensorboard/<stage>/`` (``tensorboard --logdir RUN/tensorboard``): scalars, the resolved
  config and tables as text (markdown).
- ``wandb``: ``RUN/wandb/`` -- offline mode unless ``WANDB_MODE`` is set or ``WANDB_API_KEY`` is present
  (``wandb sync RUN/wandb/offline-run-*`` uploads later); project ``logging.project``, group = the run, job
  type = the stage, the resolved config as the run config, tables as ``wandb.Table``.
- ``mlflow``: a local SQLite store ``RUN/mlflow/mlflow.db`` with artifacts in ``RUN/mlflow/artifacts``
  (``mlflow ui --backend-store-uri sqlite:///RUN/mlflow/mlflow.db``; MLflow's plain-file store is in
  maintenance mode and refuses to start), or ``MLFLOW_TRACKING_URI`` when set; experiment
  ``logging.project``, one MLflow run per stage, the flattened config as params, tables through
  ``log_table``.

No client is imported at module import (and no torch): each backend imports its package in ``start``. A
selected tracker whose package is missing fails at start naming ``logging.report_to``; a tracker that fails
while logging is reported once and switched off (a W&B hiccup must not kill a 10-hour RL stage); the jsonl
record never is.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from r1cli.errors import R1ConfigError
from r1cli.utils.io import append_jsonl, atomic_write_jsonl, read_jsonl

TRACKERS = ("jsonl", "tensorboard", "wandb", "mlflow")
#: PyPI package that provides each optional tracker (``pip install 'r1cli[tracking]'`` installs both)
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


class Tracker(Protocol):
    def start(self, run_name: str, stage: str, config: Mapping[str, Any]) -> None: ...

    def log(self, step: int, metrics: Mapping[str, Any]) -> None: ...

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def finish(self) -> None: ...


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics row (bools as 0/1; strings, lists and ``step`` dropped)."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if k == "step":
            continue
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, int | float):
            out[k] = float(v)
        elif hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # numpy / torch scalar
            out[k] = float(v.item())
    return out


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"rl": {"lr": 1e-6}}`` -> ``{"rl.lr": "1e-06"}``; lists and None as JSON (MLflow params)."""
    out: dict[str, str] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v if isinstance(v, str) else json.dumps(v, default=str)
    return out


def find_run_dir(path: str | os.PathLike[str]) -> Path:
    """The run directory holding ``path``: the nearest folder (``path`` included) with a frozen ``config.yaml``;
    ``path`` itself when there is none (a stage run outside a pipeline run dir)."""
    p = Path(path).resolve()
    for d in (p, *p.parents):
        if (d / "config.yaml").is_file():
            return d
    return p


def stage_label(run_dir: Path, stage_dir: Path) -> str:
    """``RUN/rl/stage1`` -> ``rl/stage1``: the stage's folder relative to its run dir (its folder name when it
    lies outside)."""
    try:
        rel = Path(stage_dir).resolve().relative_to(Path(run_dir).resolve())
    except ValueError:
        return Path(stage_dir).name
    return rel.as_posix() if rel.parts else Path(stage_dir).resolve().name


def _missing(name: str) -> R1ConfigError:
    return R1ConfigError(
        f"logging.report_to includes {name!r} but the {PACKAGES[name]!r} package is not installed "
        f"(pip install 'r1cli[tracking]', or drop {name!r} from logging.report_to)"
    )


def _markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    cols = _columns(rows)
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |\n" for r in rows)
    return head + body


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    return cols


def _plain(v: Any) -> Any:
    """A table cell a tracker can store: scalars as they are, anything else as JSON text."""
    if v is None or isinstance(v, str | bool | int | float):
        return v
    return json.dumps(v, default=str)


class JsonlTracker:
    """r1's own record: one JSON line per step in ``metrics_path`` (fsynced), tables as ``<name>.table.jsonl``
    beside it. ``resume_step``: lines with ``step >= resume_step`` are dropped at start (a resumed stage redoes
    those steps). ``metrics_path`` None: nothing is written (eval keeps its own metrics.json)."""

    def __init__(self, metrics_path: Path | None, resume_step: int | None = None) -> None:
        self.path = metrics_path
        self.resume_step = resume_step

    def start(self, run_name: str, stage: str, config: Mapping[str, Any]) -> None:
        if self.path is not None and self.resume_step is not None and self.path.exists():
            keep = [r for r in read_jsonl(self.path) if int(r.get("step", 0)) < self.resume_step]
            atomic_write_jsonl(self.path, keep)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        row = dict(metrics)
        row.setdefault("step", step)
        append_jsonl(self.path, row)

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.path is not None:
            atomic_write_jsonl(self.path.with_name(f"{_safe(name)}.table.jsonl"), rows)

    def finish(self) -> None:
        return None


class TensorBoardTracker:
    """Event files in ``log_dir`` through ``torch.utils.tensorboard.SummaryWriter``; a resumed stage purges
    events at and after ``resume_step`` (``purge_step``)."""

    def __init__(self, log_dir: Path, resume_step: int | None = None) -> None:
        self.log_dir = log_dir
        self.resume_step = resume_step
        self.writer: Any = None

    def start(self, run_name: str, stage: str, config: Mapping[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise _missing("tensorboard") from None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=self.resume_step or None)
        import yaml

        text = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
        self.writer.add_text("config", f"run `{run_name}`, stage `{stage}`\n\n```yaml\n{text}```", 0)
        self.writer.flush()

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        for k, v in scalars(metrics).items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.writer.add_text(name, _markdown(rows), 0)
        self.writer.flush()

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbTracker:
    """A W&B run in ``root/wandb``: offline unless ``WANDB_MODE`` is set or ``WANDB_API_KEY`` is present. The
    run id is derived from the run dir and the stage, so a resumed stage continues the same W&B run."""

    live = 0  # W&B runs open in this process (the service is torn down when the last one finishes)

    def __init__(self, root: Path, project: str, run_key: str) -> None:
        self.root, self.project, self.run_key = root, project, run_key
        self.run: Any = None

    @staticmethod
    def mode() -> str:
        env = os.environ.get("WANDB_MODE")
        if env:
            return env
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"

    def start(self, run_name: str, stage: str, config: Mapping[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise _missing("wandb") from None
        self.root.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(silent=True, console="off", disable_git=True, save_code=False,
                                  x_disable_stats=True)
        self.run = wandb.init(
            project=self.project,
            name=f"{run_name}/{stage}",
            group=run_name,
            job_type=stage.split("/")[0],
            tags=[f"stage:{stage}"],
            config=dict(config),
            dir=str(self.root),
            mode=self.mode(),  # type: ignore[arg-type]
            id=_safe_id(self.run_key),
            resume="allow",
            reinit="create_new",
            settings=settings,
        )
        WandbTracker.live += 1

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.run.log(scalars(metrics), step=step)

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        import wandb

        cols = _columns(rows)
        self.run.log({name: wandb.Table(columns=cols, data=[[_plain(r.get(c)) for c in cols] for r in rows])})

    def finish(self) -> None:
        if self.run is not None:
            import wandb

            self.run.finish()
            self.run = None
            WandbTracker.live -= 1
            if WandbTracker.live == 0:
                wandb.teardown()  # stops the W&B service: the offline run log is complete on disk on return


class MLflowTracker:
    """One MLflow run per stage in experiment ``project``; store ``MLFLOW_TRACKING_URI`` or the SQLite store in
    ``root``. A resumed stage reopens its MLflow run (found by the ``r1.key`` tag) instead of starting another."""

    def __init__(self, root: Path, project: str, run_key: str) -> None:
        self.root, self.project, self.run_key = root, project, run_key
        self.client: Any = None
        self.run_id: str | None = None

    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / 'mlflow.db'}"

    def start(self, run_name: str, stage: str, config: Mapping[str, Any]) -> None:
        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow") from None
        self.root.mkdir(parents=True, exist_ok=True)
        self.client = c = MlflowClient(tracking_uri=self.tracking_uri())
        exp = c.get_experiment_by_name(self.project)
        if exp is None:
            try:
                eid = c.create_experiment(self.project, artifact_location=(self.root / "artifacts").as_uri())
            except Exception:  # noqa: BLE001 - another stage created it meanwhile
                exp = c.get_experiment_by_name(self.project)
                if exp is None:
                    raise
                eid = exp.experiment_id
        else:
            eid = exp.experiment_id
        key = _safe_id(self.run_key)
        found = c.search_runs([eid], filter_string=f"tags.`r1.key` = '{key}'", max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            c.update_run(self.run_id, status="RUNNING")
            return
        run = c.create_run(eid, run_name=f"{run_name}/{stage}",
                           tags={"r1.key": key, "r1.run": run_name, "r1.stage": stage})
        self.run_id = run.info.run_id
        params = [Param(k, v[:500]) for k, v in flatten(config).items()]
        for i in range(0, len(params), 100):
            c.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        ms = [Metric(_mlflow_key(k), v, ts, step) for k, v in scalars(metrics).items()]
        for i in range(0, len(ms), 1000):
            self.client.log_batch(self.run_id, metrics=ms[i : i + 1000])

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        cols = _columns(rows)
        data = {c: [_plain(r.get(c)) for r in rows] for c in cols}
        self.client.log_table(self.run_id, data=data, artifact_file=f"{_safe(name)}.json")

    def finish(self) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id)
            self.run_id = None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _safe_id(key: str) -> str:
    """A W&B/MLflow-safe id: readable prefix plus a hash of the full key (run dir path + stage)."""
    h = hashlib.sha256(key.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "-" for c in key.rsplit("::", 1)[-1])[:40]
    return f"{stem}-{h}"


def _mlflow_key(k: str) -> str:
    """MLflow metric names allow alphanumerics, ``_ - . / space``; ``pass@k`` becomes ``pass_at_k``."""
    k = k.replace("@", "_at_")
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in k)


class StageLogger:
    """What a training/eval stage logs through: the trackers of ``report_to`` for one stage of one run.

    ``logger.log(step, metrics)`` replaces ``append_jsonl(metrics_path, metrics)`` (the jsonl line is the same:
    the metrics dict with ``step`` added when absent); numeric entries go to the other trackers at ``step``.
    ``log_table(name, rows)`` records a table (eval results, before/after measures). Use as a context manager
    or call ``finish()``; ``enabled=False`` (e.g. ranks other than 0) makes every call a no-op.
    """

    def __init__(
        self,
        *,
        report_to: Sequence[str],
        run_dir: Path,
        stage: str,
        metrics_path: Path | None,
        config: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        project: str = "r1",
        resume_step: int | None = None,
        enabled: bool = True,
    ) -> None:
        unknown = [t for t in report_to if t not in TRACKERS]
        if unknown:
            raise R1ConfigError(f"logging.report_to: unknown tracker(s) {unknown} (known: {', '.join(TRACKERS)})")
        self.run_dir = Path(run_dir)
        self.stage = stage
        self.run_name = run_name or self.run_dir.name
        self.config = dict(config or {})
        self.enabled = enabled
        key = f"{self.run_dir.resolve()}::{self.run_name}-{stage}"
        self.backends: dict[str, Tracker] = {}
        for name in dict.fromkeys(report_to):
            if name == "jsonl":
                self.backends[name] = JsonlTracker(metrics_path, resume_step)
            elif name == "tensorboard":
                self.backends[name] = TensorBoardTracker(self.run_dir / "tensorboard" / stage, resume_step)
            elif name == "wandb":
                self.backends[name] = WandbTracker(self.run_dir, project, key)
            else:
                self.backends[name] = MLflowTracker(self.run_dir / "mlflow", project, key)
        self._started = False

    @classmethod
    def for_recipe(
        cls,
        cfg: Any,
        *,
        metrics_path: Path | None,
        stage: str | None = None,
        run_dir: Path | None = None,
        resume_step: int | None = None,
        enabled: bool = True,
    ) -> StageLogger:
        """A started logger for a stage of a run with recipe ``cfg`` (``logging.report_to``,
        ``logging.project``; the resolved recipe is the run config). ``run_dir`` None: the nearest folder above
        ``metrics_path`` with the frozen ``config.yaml``. ``stage`` None: the stage folder relative to the run
        dir (``rl/stage1``, ``warmup/sft``, ``long2short/rl``), unique within a run."""
        if run_dir is None:
            if metrics_path is None:
                raise ValueError("StageLogger.for_recipe needs run_dir or metrics_path")
            run_dir = find_run_dir(metrics_path.parent)
        if stage is None:
            if metrics_path is None:
                raise ValueError("StageLogger.for_recipe needs stage or metrics_path")
            stage = stage_label(run_dir, metrics_path.parent)
        lg = cfg.logging
        logger = cls(
            report_to=list(lg.report_to),
            run_dir=run_dir,
            stage=stage,
            metrics_path=metrics_path,
            config=cfg.model_dump(mode="json"),
            project=lg.project,
            resume_step=resume_step,
            enabled=enabled,
        )
        return logger.start()

    def start(self) -> StageLogger:
        if self.enabled and not self._started:
            for name, b in self.backends.items():
                try:
                    b.start(self.run_name, self.stage, self.config)
                except R1ConfigError:
                    self._finish_started()
                    raise
                except Exception as exc:
                    self._finish_started()
                    raise R1ConfigError(
                        f"logging.report_to: tracker {name!r} failed to start: {type(exc).__name__}: {exc}"
                    ) from exc
            self._started = True
        return self

    def _finish_started(self) -> None:
        for b in self.backends.values():
            try:
                b.finish()
            except Exception:  # noqa: BLE001 - cleanup after a failed start
                pass

    def _each(self, call: str, *args: Any) -> None:
        if not self.enabled:
            return
        if not self._started:
            self.start()
        for name in list(self.backends):
            b = self.backends[name]
            if name == "jsonl":
                getattr(b, call)(*args)
                continue
            try:
                getattr(b, call)(*args)
            except Exception as exc:  # noqa: BLE001 - see module docstring
                from r1cli.utils.progress import log

                log(f"tracking: {name} failed ({type(exc).__name__}: {exc}); {name} is off for stage {self.stage}")
                del self.backends[name]
                try:
                    b.finish()
                except Exception:  # noqa: BLE001
                    pass

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self._each("log", int(step), metrics)

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._each("log_table", name, [dict(r) for r in rows])

    def finish(self) -> None:
        if not self.enabled or not self._started:
            return
        for name, b in list(self.backends.items()):
            try:
                b.finish()
            except Exception as exc:  # noqa: BLE001
                if name == "jsonl":
                    raise
                from r1cli.utils.progress import log

                log(f"tracking: {name} failed to finish ({type(exc).__name__}: {exc})")
        self._started = False

    def __enter__(self) -> StageLogger:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()
