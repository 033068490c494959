"""Output manifests: when a stage's job finishes, the size and sha256 of every file of its declared outputs are
recorded in ``<run>/logs/manifests/``; ``r1 status`` and every ``r1 pipeline`` rerun verify them, so a truncated
model, data file or eval sample file is named and rerun instead of being trusted because it exists.

Written by the Snakemake logger plugin (``snakemake_logger_plugin_r1``) on ``job_finished``, in the Snakemake
process, whose working directory is the run dir. No torch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from r1cli.utils.io import atomic_write_json

MANIFEST_DIR = "logs/manifests"


def covered(rule: str | None, output: str) -> str:
    """The path a job's output vouches for: the output itself, or for an eval job its whole directory (the
    samples beside metrics.json are what the metrics were computed from)."""
    if rule == "eval" and output.endswith("/metrics.json"):
        return output.rsplit("/", 1)[0]
    return output


def manifest_path(run: Path, output: str) -> Path:
    return Path(run) / MANIFEST_DIR / (output.strip("/").replace("/", "__") + ".json")


def _sha256(path: Path) -> str:
    from r1cli.utils.io import sha256_file

    return sha256_file(path)


def _files(run: Path, target: str) -> list[Path]:
    p = Path(run) / target
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    return []


def write_manifest(run: Path, output: str, rule: str | None = None) -> Path | None:
    """Record the files of a finished job's output (None when the output does not exist)."""
    run = Path(run)
    target = covered(rule, output)
    files = _files(run, target)
    if not files:
        return None
    entries = {}
    for f in files:
        st = f.stat()
        entries[str(f.relative_to(run))] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(f)}
    path = manifest_path(run, target)
    atomic_write_json(
        path, {"output": target, "declared": output, "rule": rule, "time": time.time(), "files": entries}
    )
    return path


def read_manifest(run: Path, output: str, rule: str | None = None) -> dict[str, Any] | None:
    path = manifest_path(run, covered(rule, output))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def verify(run: Path, output: str, rule: str | None = None) -> list[str]:
    """Problems of a recorded output, each naming the file: missing, size changed (a truncation), or content
    changed (checked by sha256 only when the mtime moved). [] when intact or when no manifest was recorded."""
    run = Path(run)
    man = read_manifest(run, output, rule)
    if man is None:
        return []
    problems = []
    for rel, want in man["files"].items():
        f = run / rel
        try:
            st = f.stat()
        except OSError:
            problems.append(f"{f} is missing")
            continue
        if st.st_size != want.get("size"):
            problems.append(f"{f} has {st.st_size} bytes, {want.get('size')} were written")
        elif st.st_mtime_ns != want.get("mtime_ns") and _sha256(f) != want.get("sha256"):
            problems.append(f"{f} changed after its stage wrote it (sha256 differs)")
    return problems


def damaged_outputs(run: Path, outputs: set[str] | None = None) -> dict[str, list[str]]:
    """Declared output -> its problems, over every recorded manifest (restricted to ``outputs``, the current
    DAG's outputs, when given: a manifest of an output the config no longer has is not a reason to rerun)."""
    out: dict[str, list[str]] = {}
    root = Path(run) / MANIFEST_DIR
    if not root.is_dir():
        return out
    for mp in sorted(root.glob("*.json")):
        try:
            man = json.loads(mp.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        declared = man.get("declared") or man.get("output")
        if not isinstance(declared, str) or (outputs is not None and declared not in outputs):
            continue
        problems = verify(run, declared, man.get("rule"))
        if problems:
            out[declared] = problems
    return out
