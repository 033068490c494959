"""Output manifests: a finished job's outputs are recorded (sizes + sha256) by the logger plugin; `r1 status`
names a damaged file and a rerun reruns its stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from r1cli.pipeline.manifest import damaged_outputs, manifest_path, verify, write_manifest
from r1cli.pipeline.runner import SnakemakeCall, run_snakemake
from r1cli.pipeline.status import run_status

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_names_truncated_changed_and_missing_files(tmp_path: Path) -> None:
    run = tmp_path
    (run / "m").mkdir()
    (run / "m" / "w.bin").write_bytes(b"w" * 100)
    (run / "m" / "config.json").write_text("{}")
    (run / "eval" / "x" / "t" / "h").mkdir(parents=True)
    (run / "eval/x/t/h/metrics.json").write_text("{}")
    (run / "eval/x/t/h/samples.jsonl").write_text('{"a": 1}\n' * 10)
    write_manifest(run, "m", "sft")
    write_manifest(run, "eval/x/t/h/metrics.json", "eval")  # covers the samples beside the metrics
    assert verify(run, "m", "sft") == [] and damaged_outputs(run) == {}
    with open(run / "m" / "w.bin", "r+b") as fh:
        fh.truncate(10)
    samples = run / "eval/x/t/h/samples.jsonl"
    samples.write_text('{"a": 2}\n' * 10)  # same size, other content
    os.utime(samples, ns=(1, 1))
    (run / "m" / "config.json").unlink()
    bad = damaged_outputs(run)
    assert bad["m"] == [f"{run / 'm' / 'config.json'} is missing",
                        f"{run / 'm' / 'w.bin'} has 10 bytes, 100 were written"]
    assert bad["eval/x/t/h/metrics.json"] == [f"{samples} changed after its stage wrote it (sha256 differs)"]
    assert damaged_outputs(run, {"m"}).keys() == {"m"}  # outputs no longer in the DAG are not rerun


SNAKEFILE = '''
rule all:
    input: "eval/m/b/h/metrics.json"

rule make:
    output: directory("model")
    shell: "mkdir -p {output} && head -c 1000 /dev/zero > {output}/w.bin"

rule eval:
    input: "model"
    output: "eval/m/b/h/metrics.json"
    shell: "echo '{{}}' > {output} && echo row > eval/m/b/h/samples.jsonl"
'''


def test_the_logger_plugin_records_finished_jobs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    sf = tmp_path / "Snakefile"
    sf.write_text(SNAKEFILE)
    events = run / "events.jsonl"
    res = run_snakemake(SnakemakeCall(run_dir=run, snakefile=sf, cores=1, events=events), capture=True)
    assert res.returncode == 0, res.stdout
    man = json.loads(manifest_path(run, "model").read_text())
    assert man["rule"] == "make" and man["files"]["model/w.bin"]["size"] == 1000
    man = json.loads(manifest_path(run, "eval/m/b/h").read_text())
    assert set(man["files"]) == {"eval/m/b/h/metrics.json", "eval/m/b/h/samples.jsonl"}
    assert man["declared"] == "eval/m/b/h/metrics.json"


def r1(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "r1cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_status_names_a_damaged_output_and_a_rerun_remakes_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ("pipeline", "tiny", "--run", str(run), "--until", "prepare", "--cores", "1",
            "--set", "data.train.size=40", "--set", "data.test.size=8")
    res = r1(*args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = run / "data" / "prepared.parquet"
    good = data.read_bytes()
    assert manifest_path(run, "data/prepared.parquet").exists()
    data.write_bytes(good[: len(good) // 2])
    st = r1("status", "--run", str(run))
    assert st.returncode == 0, st.stderr
    assert "│ damaged" in st.stdout
    assert f"damaged: {data} has {len(good) // 2} bytes, {len(good)} were written" in st.stdout
    again = r1(*args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"damaged output: {data} has {len(good) // 2} bytes, {len(good)} were written" in again.stdout
    assert data.read_bytes() == good  # remade (prepare is deterministic)
    st = run_status(run)
    assert st["warnings"] == [] and {r["stage"]: r["status"] for r in st["stages"]}["prepare train"] == "done"
