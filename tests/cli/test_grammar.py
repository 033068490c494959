"""One CLI grammar (issue 18; README "CLI grammar"): one spelling per concept, the old spellings still work for one
release as hidden aliases (never in --help, a note on stderr), no ``<bool>`` on flags, ``r1 reward list``,
``recipes diff --set``, "did you mean" for mistyped keys and names."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from r1cli.cli.grammar import params_from_json, rewrite_args
from r1cli.cli.main import app
from r1cli.config import resolve
from r1cli.pipeline.runner import freeze

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
ENV = {"COLUMNS": "200", "HF_HUB_OFFLINE": "1"}

#: (command path, old spelling, new spelling or None when the old flag is simply dropped)
RENAMED = [
    (("pipeline",), "--run-dir", "--run"),
    (("eval",), "--n", "--samples"),
    (("eval",), "--benchmark", "--benchmarks"),
    (("data", "filter"), "--n", "--samples"),
    (("data", "filter"), "--reward-params", "--param"),
    (("data", "filter"), "--no-merge", None),
    (("data", "filter"), "--no-remeasure", None),
    (("data", "prepare"), "--no-shuffle", None),
    (("data", "prepare"), "--no-skip-invalid", None),
    (("data", "decontaminate"), "--against", "--benchmarks"),
]


def _flag(name: str) -> re.Pattern[str]:
    """``name`` as a whole option name: ``--n`` does not match ``--no-greedy`` nor ``--benchmark`` ``--benchmarks``."""
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")


def _all_commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        out.append(path)
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return out


def _help(path: tuple[str, ...]) -> str:
    res = runner.invoke(app, [*path, "--help"], env=ENV)
    assert res.exit_code == 0, (path, res.output)
    return res.output


# --- help texts ---------------------------------------------------------------------------------------------
def test_no_bool_metavar_in_any_help() -> None:
    paths = _all_commands()
    assert ("reward", "list") in paths and ("data", "filter") in paths and len(paths) > 20
    for path in paths:
        text = _help(path)
        assert "<bool>" not in text, f"r1 {' '.join(path)} --help shows <bool>"
        assert "--help" in text
        if _flag("--out").search(text):
            assert re.search(r"--out\s+-o\b", text), f"r1 {' '.join(path)}: --out without -o"


def test_plain_flags_have_no_negative_twin() -> None:
    text = _help(("data", "filter"))
    assert _flag("--merge").search(text) and not _flag("--no-merge").search(text)
    assert not _flag("--no-remeasure").search(text)
    assert not _flag("--no-shuffle").search(_help(("data", "prepare")))


@pytest.mark.parametrize(("path", "old", "new"), RENAMED)
def test_old_spellings_are_hidden_and_new_ones_shown(path: tuple[str, ...], old: str, new: str | None) -> None:
    text = _help(path)
    assert not _flag(old).search(text), f"r1 {' '.join(path)} --help still shows {old}"
    if new is not None:
        assert _flag(new).search(text), f"r1 {' '.join(path)} --help lacks {new}"


@pytest.mark.parametrize("cmd", ["status", "report", "push"])
def test_run_dir_is_the_run_option_everywhere(cmd: str) -> None:
    text = _help((cmd,))
    assert _flag("--run").search(text) and "Arguments" not in text  # no positional RUN in the help any more
    for path in (("pipeline",), ("eval",), ("data", "filter"), ("train", "rl"), ("long2short",)):
        assert _flag("--run").search(_help(path)), path


def test_one_spelling_per_concept_across_commands() -> None:
    for path in (("eval",), ("data", "filter")):
        assert _flag("--samples").search(_help(path)), path
    for path in (("eval",), ("data", "decontaminate")):
        assert re.search(r"--benchmarks\s+-b\b", _help(path)), path
    for path in (("reward", "score"), ("data", "filter")):
        assert re.search(r"--param\s+-p\b", _help(path)) and re.search(r"--reward\s+-r\b", _help(path)), path
    for path in (("pipeline",), ("recipes", "show"), ("recipes", "diff")):
        assert _flag("--set").search(_help(path)), path
    assert re.search(r"--dry-run\s+-n\b", _help(("pipeline",)))


# --- the old spellings still work (with a note), the new ones work ------------------------------------------
def test_rewrite_args_renames_options_not_values() -> None:
    renames = {"--n": "--samples", "--reward-params": params_from_json, "--no-merge": ""}
    takes = {"--n", "--samples", "--system-prompt", "-p", "--out"}
    assert rewrite_args(["--n", "4", "--system-prompt", "--n", "--n=2", "--no-merge", "x"], renames, None, takes) == [
        "--samples",
        "4",
        "--system-prompt",
        "--n",
        "--samples",
        "2",
        "x",
    ]
    assert rewrite_args(["--reward-params", '{"scheme": "pm1", "k": 2}'], renames, None, takes) == [
        "-p",
        'scheme="pm1"',
        "-p",
        "k=2",
    ]
    assert rewrite_args(["a", "--out", "o", "b", "--", "c"], {}, "--run", takes) == [
        "--run",
        "a",
        "--out",
        "o",
        "--run",
        "b",
        "--run",
        "c",
    ]


def test_status_report_push_take_run_and_the_old_positional(tmp_path: Path) -> None:
    run = tmp_path / "run"
    freeze(resolve("tiny"), run)
    new = runner.invoke(app, ["status", "--run", str(run)], env=ENV)
    old = runner.invoke(app, ["status", str(run)], env=ENV)
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert "pending" in new.stdout and new.stdout == old.stdout
    assert "note:" in old.stderr and "--run" in old.stderr and "note:" not in new.stderr
    bad = tmp_path / "nope"
    for cmd in (
        ["report", "--run", str(run), "--run", str(bad)],
        ["report", str(run), str(bad)],
        ["push", "--run", str(bad), "--repo-id", "a/b"],
        ["push", str(bad), "--repo-id", "a/b"],
    ):
        res = runner.invoke(app, cmd, env=ENV)
        assert res.exit_code == 2 and f"{bad} is not an r1 run directory" in " ".join(res.output.split()), cmd


def test_pipeline_run_and_old_run_dir(tmp_path: Path) -> None:
    env = {**ENV, "PYTHONPATH": str(ROOT)}
    for flag in ("--run", "--run-dir"):
        res = subprocess.run(
            [sys.executable, "-m", "r1cli", "pipeline", "tiny", flag, str(tmp_path / "r"), "-n", "--until", "prepare"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            env={**os.environ, **env},
        )
        assert res.returncode == 0, res.stderr
        assert f"planfor{tmp_path / 'r'}(profile" in "".join(res.stdout.split())  # the plan is for that dir
        assert ("note:" in res.stderr) == (flag == "--run-dir")
        assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_eval_samples_and_benchmarks_in_the_run_form(tmp_path: Path) -> None:
    for args in (["--samples", "2"], ["--n", "2"]):
        res = runner.invoke(
            app, ["eval", "--run", str(tmp_path), "--model-name", "sft", "--benchmarks", "test", *args], env=ENV
        )
        assert res.exit_code == 2 and "drop --samples" in res.output, res.output
    for flag in ("--benchmarks", "--benchmark"):
        res = runner.invoke(app, ["eval", "--run", str(tmp_path), "--model-name", "sft", flag, "test"], env=ENV)
        assert res.exit_code == 2 and "frozen config" in res.output, res.output
    res = runner.invoke(app, ["eval", "--run", str(tmp_path), "--model-name", "sft", "-b", "a,b"], env=ENV)
    assert res.exit_code == 2 and "one benchmark" in res.output


def test_filter_params_samples_and_reward(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "prompt": "1+1?", "answer": "2"}) + "\n")
    base = ["data", "filter", str(inp), "--out", str(tmp_path / "o.parquet"), "--model", "m"]
    for extra in (["-p", "scheme=pm_1"], ["--param", "scheme=pm_1"], ["--reward-params", '{"scheme": "pm_1"}']):
        res = runner.invoke(app, [*base, *extra], env=ENV)
        assert res.exit_code == 2 and "unknown scheme 'pm_1'" in " ".join(res.output.split()), extra
    res = runner.invoke(app, [*base, "--reward-params", "[1]"], env=ENV)
    assert res.exit_code == 2 and "JSON object" in res.output
    for flag in ("--samples", "--n"):
        res = runner.invoke(app, [*base, flag, "0"], env=ENV)
        assert res.exit_code == 2 and "--samples" in res.output, res.output
    res = runner.invoke(app, [*base, "-r", "mathh"], env=ENV)
    assert res.exit_code == 2 and "did you mean 'math'" in " ".join(res.output.split())


def test_decontaminate_benchmarks_and_old_against(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "prompt": "1+1?", "answer": "2"}) + "\n")
    for flag in ("--benchmarks", "-b", "--against"):
        res = runner.invoke(
            app, ["data", "decontaminate", str(inp), "--out", str(tmp_path / "o.jsonl"), flag, "aime2"], env=ENV
        )
        assert res.exit_code == 2 and "unknown benchmark 'aime2'" in res.output, (flag, res.output)
        assert "did you mean" in " ".join(res.output.split())


# --- r1 reward list -----------------------------------------------------------------------------------------
def test_reward_list_shows_the_registry() -> None:
    from r1cli.rewards import EXTRACTORS, MATH_SCHEMES, REWARDS, SHAPING, TOKEN_SHAPING

    res = runner.invoke(app, ["reward", "list"], env=ENV)
    assert res.exit_code == 0, res.output
    for name in [*REWARDS, *SHAPING, *TOKEN_SHAPING, *MATH_SCHEMES, *EXTRACTORS]:
        assert _flag(name).search(res.output), name
    assert "Knights & Knaves" in res.output and "FILE.py:FUNCTION" in res.output
    res = runner.invoke(app, ["reward", "list", "--json"], env=ENV)
    got = json.loads(res.stdout)
    assert list(got["rewards"]) == list(REWARDS) and all(got["rewards"].values())
    assert got["rewards"]["gsm8k"].startswith("GSM8K (Cobbe et al. 2021): numeric match")  # "et al." ends nothing
    assert got["params"]["scheme"] == list(MATH_SCHEMES)


def test_help_names_only_commands_that_exist() -> None:
    """Every ``r1 WORD [WORD]`` a help text names is a command (``r1 reward list`` was named before it existed)."""
    paths = {" ".join(p) for p in _all_commands()}
    groups = {" ".join(p[:-1]) for p in _all_commands() if p}
    for path in _all_commands():
        for ref in re.findall(r"\br1 ((?:[a-z][a-z0-9-]* ?){1,2})", " ".join(_help(path).split())):
            words = ref.split()
            ok = " ".join(words[:2]) in paths or (words[0] in paths and words[0] not in groups)
            ok = ok or (words[0] == "eval" and len(words) == 1)  # r1 eval --model ...: the group's own form
            assert ok, f"r1 {' '.join(path)} --help names r1 {ref}, which is no command"


# --- recipes diff --set and "did you mean" ------------------------------------------------------------------
def test_recipes_diff_set_shows_what_an_override_changes() -> None:
    res = runner.invoke(app, ["recipes", "diff", "tiny", "--set", "seed=3", "--set", "rl.stages.0.steps=7"], env=ENV)
    assert res.exit_code == 0, res.output
    changed = [x for x in res.stdout.splitlines() if x[:1] in "+-" and x[:3] not in ("+++", "---")]
    assert sorted(changed) == sorted(["-seed: 0", "+seed: 3", "-    steps: 30", "+    steps: 7"])
    assert runner.invoke(app, ["recipes", "diff", "tiny"], env=ENV).stdout == ""
    res = runner.invoke(app, ["recipes", "diff", "tiny", "deepscaler", "--set", "seed=3"], env=ENV)
    assert "+seed: 3" in res.stdout


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["recipes", "show", "tiny", "--set", "rl.stages.0.stepz=3"], "unknown key (did you mean 'steps'?)"),
        (["recipes", "show", "tiny", "--set", "rl.rollout.temprature=1"], "did you mean 'temperature'?"),
        (["recipes", "show", "tiny", "--set", "model.tiny.hiden_size=3"], "did you mean 'hidden_size'?"),
        (["recipes", "show", "tiny", "--set", "rll.x=1"], "rll: unknown key (did you mean 'rl'?)"),
        (["recipes", "diff", "tiny", "--set", "sed=1"], "did you mean 'seed'?"),
        (["recipes", "show", "tiny", "--set", "rl.reward.name=mathh"], "did you mean 'math'?"),
        (["recipes", "show", "tiny", "--set", "rl.algorithm.advantage=grpoo"], "did you mean 'grpo'"),
        (["recipes", "show", "deepscalr"], "unknown recipe 'deepscalr' (did you mean 'deepscaler'?)"),
        (["recipes", "show", "deepscaler", "--scale", "tinny"], "no scale 'tinny' (did you mean 'tiny'?)"),
        (["pipeline", "tiny", "--set", "sed=1", "-n"], "did you mean 'seed'?"),
        (["reward", "score", "x.jsonl", "-o", "y", "-r", "mathh"], "did you mean 'math'?"),
    ],
)
def test_did_you_mean(args: list[str], hint: str) -> None:
    res = runner.invoke(app, args, env=ENV)
    assert res.exit_code == 2, res.output
    assert hint in " ".join(res.output.split())


def test_no_suggestion_for_a_far_off_key() -> None:
    res = runner.invoke(app, ["recipes", "show", "tiny", "--set", "zzzzzz=1"], env=ENV)
    assert res.exit_code == 2 and "unknown key" in res.output and "did you mean" not in res.output


def test_config_layer_suggests_without_torch() -> None:
    code = (
        "import sys\nfrom r1cli.config import resolve\ntry:\n    resolve('tiny', ['seeed=1'])\n"
        "except Exception as e:\n    assert \"did you mean 'seed'\" in str(e), e\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


# --- the CLI holds no logic: no function over 100 lines -----------------------------------------------------
def test_cli_functions_are_at_most_100_lines() -> None:
    for f in sorted((ROOT / "r1cli" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert n <= 100, f"{f.name}:{node.name} is {n} lines"
