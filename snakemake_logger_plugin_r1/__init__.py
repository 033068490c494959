"""Snakemake logger plugin ``r1``: appends Snakemake's structured log events (run_info, job_info with reasons
and resources, job_started/finished/error, progress) as JSON lines to a file r1 reads for ``--dry-run`` plans
and ``r1 status``. Selected with ``--logger r1 --logger-r1-path FILE``.
"""

import json
import os
import time
from dataclasses import dataclass, field
from logging import LogRecord
from typing import Any, Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

_STD = set(vars(LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    # Snakemake builds argparse types from the annotation: keep it a real type, not a string.
    path: Optional[str] = field(  # noqa: UP045
        default=None, metadata={"help": "JSON-lines file the events are appended to"}
    )


def _jsonable(v: Any, depth: int = 0) -> Any:
    if depth > 4:
        return str(v)
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if hasattr(v, "_names") and hasattr(v, "items"):  # snakemake Namedlist (resources, params, ...)
        try:
            return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
        except Exception:  # noqa: BLE001
            pass
    if isinstance(v, dict):
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_jsonable(x, depth + 1) for x in v]
    if hasattr(v, "_asdict"):
        return _jsonable(v._asdict(), depth + 1)
    if hasattr(v, "items") and callable(v.items):
        try:
            return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
        except Exception:  # noqa: BLE001
            return str(v)
    return str(v)


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        path = getattr(self.settings, "path", None) or os.environ.get("R1_SNAKEMAKE_EVENTS")
        self._path = path
        self.baseFilename = path or ""  # Snakemake lists file handlers by this attribute
        self._fh = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._jobs: dict[str, tuple[Any, list[str]]] = {}  # jobid -> (rule, declared outputs)

    def emit(self, record: LogRecord) -> None:
        if self._fh is None:
            return
        event = getattr(record, "event", None)
        if event is None:
            # plain messages: keep the executor's submissions (e.g. "Job 3 has been submitted with SLURM jobid 7")
            try:
                msg = record.getMessage()
            except Exception:  # noqa: BLE001
                return
            if "has been submitted with" not in msg:
                return
            event = "job_submitted"
        row = {k: _jsonable(v) for k, v in vars(record).items() if k not in _STD}
        row["event"] = str(event)
        row["time"] = time.time()
        try:
            msg = record.getMessage()
            if msg:
                row["msg"] = msg[:2000]
        except Exception:  # noqa: BLE001
            pass
        if event == "job_info":
            self._jobs[str(row.get("jobid"))] = (row.get("rule_name"), [str(o) for o in row.get("output") or []])
        if event == "job_finished":
            row["manifests"] = self._manifests(str(row.get("job_id", row.get("jobid"))))
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()

    def _manifests(self, jobid: str) -> Any:
        """Sizes + sha256 of the finished job's outputs (r1cli.pipeline.manifest), in the run dir (Snakemake's
        working directory). Never lets a manifest problem stop Snakemake: the error goes into the event."""
        rule, outputs = self._jobs.get(jobid, (None, []))
        if not outputs:
            return []
        try:
            from pathlib import Path

            from r1cli.pipeline.manifest import write_manifest

            return [str(p) for o in outputs if (p := write_manifest(Path.cwd(), o, rule)) is not None]
        except Exception as exc:  # noqa: BLE001
            return f"error: {type(exc).__name__}: {exc}"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return True

    @property
    def has_filter(self) -> bool:
        return False

    @property
    def has_formatter(self) -> bool:
        return False

    @property
    def needs_rulegraph(self) -> bool:
        return False
