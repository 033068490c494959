"""Your own reward (r1cli/rewards/custom.py): FILE.py:FUNCTION / MODULE:FUNCTION, graded in the GradingPool's
workers (fork and forkserver) with the same deadline as built-ins; validated when the recipe resolves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from r1cli.errors import R1ConfigError
from r1cli.rewards import GradingPool, RewardResult, get_reward, needs_pool, score_by_task
from r1cli.rewards.custom import to_result

USER = '''
import os
import time


def score(response, gold, bonus=0.0, finished=True):
    """1 + bonus when the response equals the answer; the row's extra field `unit` must follow it."""
    text = response.strip()
    ok = text == f"{gold['answer']} {gold['unit']}"
    if not finished:
        return 0.0, False, text
    return (1.0 + bonus if ok else 0.0), ok, text


def pid(response, gold):
    return {"score": float(os.getpid()), "correct": True, "reason": "ok: pid"}


def slow(response, gold):
    if response == "HANG":
        time.sleep(30)
    return response == gold["answer"]


def boom(response, gold, **kw):
    raise RuntimeError("user bug")


def bad_type(response, gold):
    return "yes"
'''


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    p = tmp_path / "my_rewards.py"
    p.write_text(USER)
    return p


def test_return_values_to_results() -> None:
    assert to_result(0.5) == RewardResult(0.5, True, None, "ok")
    assert to_result(0) == RewardResult(0.0, False, None, "wrong")
    assert to_result(True) == RewardResult(1.0, True, None, "ok")
    assert to_result((0.1, False)) == RewardResult(0.1, False, None, "wrong")
    assert to_result((1, True, 42)) == RewardResult(1.0, True, "42", "ok")
    assert to_result({"score": -1, "reason": "format"}) == RewardResult(-1.0, False, None, "format")
    r = RewardResult(0.3, True, "x", "ok")
    assert to_result(r) is r
    with pytest.raises(TypeError, match="returned str"):
        to_result("yes")
    with pytest.raises(ValueError, match="non-finite"):
        to_result(float("nan"))


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_graded_in_pool_workers(user_file: Path, start_method: str) -> None:
    spec = f"{user_file}:score"
    golds = [{"answer": "3", "unit": "kg", "id": "a"}, {"answer": "4", "unit": "m", "id": "b"}] * 2
    resp = ["3 kg", "4 kg", "3 kg", "4 m"]
    with GradingPool(workers=2, deadline_s=10, start_method=start_method) as pool:
        got = pool.map(spec, resp, golds, {"bonus": 0.5}, finished=[True, True, False, True])
        pids = {r.score for r in pool.map(f"{user_file}:pid", ["x"] * 4, [{"answer": "x"}] * 4)}
    assert [(r.score, r.correct, r.extracted) for r in got] == [
        (1.5, True, "3 kg"), (0.0, False, "4 kg"), (0.0, False, "3 kg"), (1.5, True, "4 m")]
    import os

    assert os.getpid() not in pids  # graded in the workers, not in-process


def test_deadline_and_errors_like_builtins(user_file: Path) -> None:
    with GradingPool(workers=2, deadline_s=1.0) as pool:
        res = pool.map(f"{user_file}:slow", ["HANG", "5"], [{"answer": "5"}] * 2)
        err = pool.map(f"{user_file}:boom", ["x"], [{"answer": "x"}])
        typ = pool.map(f"{user_file}:bad_type", ["x"], [{"answer": "x"}])
        assert pool.stats["timeouts"] == 1
    assert (res[0].score, res[0].reason) == (0.0, "timeout") and res[1] == RewardResult(1.0, True, None, "ok")
    assert err[0].score == 0.0 and err[0].reason.startswith("error: RuntimeError: user bug")
    assert typ[0].reason.startswith("error: TypeError")


def test_by_task_and_module_form(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(user_file.parent))
    sys.modules.pop("my_rewards", None)
    golds = [{"answer": "3", "unit": "kg", "task": "units"}, {"answer": "7", "task": "addition"}]
    res = score_by_task("exact", ["3 kg", "7"], golds, by_task={"units": {"name": "my_rewards:score"}})
    from r1cli.rewards import REWARDS

    assert res[0] == RewardResult(1.0, True, "3 kg", "ok") and res[1] == REWARDS["exact"]("7", golds[1])
    assert needs_pool(["exact", "my_rewards:score"]) and not needs_pool(["exact", "countdown"])
    with pytest.raises(KeyError, match="FILE.py:FUNCTION"):
        get_reward("no_such_reward")


def test_recipe_validation_names_the_key(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from r1cli.config import resolve

    monkeypatch.chdir(user_file.parent)
    cfg = resolve("tiny", ["rl.reward.name=my_rewards.py:score"])
    assert cfg.rl.reward.name == f"{user_file.resolve()}:score"  # stored absolute: stage jobs run elsewhere
    with pytest.raises(R1ConfigError, match=r"rl\.reward\.name: .*does not exist"):
        resolve("tiny", ["rl.reward.name=missing.py:score"])
    with pytest.raises(R1ConfigError, match=r"rl\.reward\.name: .*has no function 'nope'"):
        resolve("tiny", ["rl.reward.name=my_rewards.py:nope"])
    with pytest.raises(R1ConfigError, match=r"rl\.reward\.by_task\.units\.name: .*does not exist"):
        resolve("tiny", ["rl.reward.by_task={units: {name: gone.py:score}}"])
    (user_file.parent / "broken.py").write_text("def score(:\n")
    with pytest.raises(R1ConfigError, match=r"rl\.reward\.name: .*importing .*broken.py failed: SyntaxError"):
        resolve("tiny", ["rl.reward.name=broken.py:score"])


def test_reward_score_cli(user_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from r1cli.cli.reward import app

    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "response": "3 kg", "answer": "3", "unit": "kg"},
        {"id": "b", "response": "3 g", "answer": "3", "unit": "kg"},
    ]))
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["score", str(inp), "--reward", f"{user_file}:score", "-p", "bonus=1",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["score"], r["correct"]) for r in rows] == [(2.0, True), (0.0, False)]
    res = CliRunner().invoke(app, ["score", str(inp), "--reward", f"{user_file}:nope", "--out", str(out)])
    assert res.exit_code == 2 and "--reward" in res.output and "no function 'nope'" in " ".join(res.output.split())
