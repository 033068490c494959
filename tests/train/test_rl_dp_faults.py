"""Faults under data parallelism: one rank killed mid-stage ends the job within seconds with no process left;
the rerun resumes from the last checkpoint and ends with the uninterrupted run's metrics — on the same number
of ranks and on a different one (the torch engine's state is global)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from r1cli.engines.launch import launch_local

WORKER = Path(__file__).with_name("rl_dp_worker.py")
REPO = Path(__file__).resolve().parents[2]
SETS = ["rl.rollout.prompts_per_step=4", "rl.stages=[{name: s1, steps: 5, max_response: 10, n: 4}]",
        "rl.rollout.dynamic_sampling.max_rounds=2", "rl.train.micro_batch_size=4", "rl.train.token_budget=null",
        "rl.checkpoint.every=2", "rl.checkpoint.keep=3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from r1cli.data.prepare import prepare

    out = tmp_path_factory.mktemp("dpf") / "train.parquet"
    prepare("synth:addition", out, template="tiny-chat", task="addition", size=24)
    return out


def _launch(ranks: int, data: Path, model: Path, out: Path) -> list[int]:
    arg = json.dumps({"recipe": "tiny", "sets": SETS, "data": str(data), "model": str(model), "stage_dir": str(out)})
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return launch_local([str(WORKER), arg], ranks, env=env, timeout=600, python=sys.executable)


def _ranks_of(out: Path) -> dict[int, int]:
    """pid -> RANK of the live worker processes of the stage dir ``out``."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if str(out) not in (d / "cmdline").read_bytes().decode(errors="replace"):
                continue
            env = dict(x.split("=", 1) for x in (d / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in x)
        except OSError:
            continue
        if "RANK" in env:
            found[int(d.name)] = int(env["RANK"])
    return found


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


KEYS = ["reward_mean", "acc", "groups_kept", "samples", "grad_norm", "entropy", "clipfrac"]


def test_kill_one_rank_then_resume(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    ref_out = tmp_path / "ref"
    assert _launch(2, data, tiny_model, ref_out) == [0, 0]
    ref = _metrics(ref_out)

    out = tmp_path / "run"
    killed: dict[str, float] = {}

    def killer() -> None:
        deadline = time.time() + 300
        while time.time() < deadline:
            if (out / "checkpoints").exists() and any((out / "checkpoints").glob("step_*/meta.json")):
                victims = [p for p, r in _ranks_of(out).items() if r == 1]
                if victims:
                    os.kill(victims[0], signal.SIGKILL)
                    killed["t"] = time.time()
                    return
            time.sleep(0.05)

    th = threading.Thread(target=killer)
    th.start()
    codes = _launch(2, data, tiny_model, out)
    returned = time.time()
    th.join()
    assert "t" in killed, "rank 1 was never killed"
    assert codes[1] == -signal.SIGKILL and codes != [0, 0], codes
    assert returned - killed["t"] < 15, f"the job took {returned - killed['t']:.1f} s to end after a rank died"
    time.sleep(0.5)
    assert _ranks_of(out) == {}, "a rank outlived the job"
    assert not (out / "DONE").exists()

    assert _launch(2, data, tiny_model, out) == [0, 0]  # resume on the same ranks
    got = _metrics(out)
    assert [m["step"] for m in got] == [0, 1, 2, 3, 4]
    for a, b in zip(ref, got, strict=True):
        for k in KEYS:
            assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6), (a["step"], k)


def test_resume_on_a_different_number_of_ranks(tmp_path: Path, tiny_model: Path, data: Path) -> None:
    """A checkpoint written by 2 ranks resumes on 1 (torch engine: weights, optimizer and data position are
    global) and continues exactly as the 2-rank run would."""
    ref_out = tmp_path / "ref"
    assert _launch(2, data, tiny_model, ref_out) == [0, 0]
    ref = _metrics(ref_out)
    out = tmp_path / "run"
    assert _launch(2, data, tiny_model, out) == [0, 0]
    # back to the state after step 4's checkpoint: drop the export and the newest steps' log lines
    import shutil

    shutil.rmtree(out / "model")
    (out / "DONE").unlink()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(lines[:4]) + "\n")
    assert _launch(1, data, tiny_model, out) == [0]
    got = _metrics(out)
    assert [m["ranks"] for m in got] == [2, 2, 2, 2, 1]
    for k in KEYS:
        assert got[4][k] == pytest.approx(ref[4][k], rel=1e-4, abs=1e-5), k
