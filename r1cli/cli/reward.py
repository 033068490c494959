"""``r1 reward``: score responses with a registered reward, and audit the math verifier.

No torch here; math-verify is imported only inside the grading workers / when a command runs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from r1cli.cli.common import console, fail, parse_params
from r1cli.cli.grammar import R1Typer
from r1cli.errors import R1InputError

app = R1Typer(
    help="Score model responses with a reward (math, exact, countdown, kk, gsm8k, swe, code, or your own "
    "FILE.py:FUNCTION) and audit r1's math grader against plain math-verify (or an independent second grader).",
    no_args_is_help=True,
)


def _read_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Read a jsonl file; every row must be an object with the ``required`` fields.

    ``answer`` and ``response`` must be strings; ``finished`` (optional) a boolean."""
    if not path.is_file():
        raise R1InputError("file not found", file=str(path))
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise R1InputError(f"invalid JSON: {exc.msg}", file=str(path), row=n) from None
            if not isinstance(row, dict):
                raise R1InputError("row is not a JSON object", file=str(path), row=n)
            for field in required:
                if field not in row:
                    raise R1InputError("missing field", file=str(path), row=n, field=field)
                if field in ("response", "answer") and not isinstance(row[field], str):
                    raise R1InputError(
                        f"must be a string, got {type(row[field]).__name__}",
                        file=str(path),
                        row=n,
                        field=field,
                    )
            if "finished" in row and not isinstance(row["finished"], bool):
                raise R1InputError("must be true or false", file=str(path), row=n, field="finished")
            row["_line"] = n
            rows.append(row)
    if not rows:
        raise R1InputError("no rows", file=str(path))
    return rows


def _check_names(params: dict[str, Any]) -> None:
    """Unknown scheme / extractor names are errors (they would score every row 0 with exit 0)."""
    from r1cli.config.names import check_reward_params

    try:
        check_reward_params(params)
    except ValueError as exc:
        key = "--scheme" if "scheme" in str(exc) else "--extractor"
        raise R1InputError(str(exc), field=key) from None


def _check_pool_options(workers: int, deadline: float) -> None:
    if workers < 1:
        raise R1InputError(f"must be at least 1, got {workers}", field="--workers")
    if not deadline > 0:
        raise R1InputError(f"must be a positive number of seconds, got {deadline:g}", field="--deadline")


def _task_fields(reward: str) -> tuple[str, ...]:
    return {
        "countdown": ("nums", "target"),
        "kk": ("names", "solution"),
        "swe": ("oracle_patch",),
        "code": ("tests",),
    }.get(reward, ())


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph (``et al.``, ``eq.``, ``e.g.`` do not end one)."""
    import re

    text = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "`")
    m = re.search(r"(?<!\bal)(?<!\beq)(?<!e\.g)(?<!i\.e)(?<!\bvs)\.(\s+(?=[A-Z])|$)", text)
    return text if m is None else text[: m.start() + 1]


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables")) -> None:
    """The reward registry: every reward name (rl.reward.name, --reward), the shaping terms
    (rl.reward.shaping) and the names the -p scheme= / -p extractor= parameters take."""
    from rich.table import Table

    from r1cli.rewards import EXTRACTORS, MATH_SCHEMES, REWARDS, SHAPING, TOKEN_SHAPING

    rewards = {k: _first_sentence(f.__doc__) for k, f in REWARDS.items()}
    shaping = {k: _first_sentence(f.__doc__) for k, f in {**SHAPING, **TOKEN_SHAPING}.items()}
    params = {"scheme": list(MATH_SCHEMES), "extractor": list(EXTRACTORS)}
    if as_json:
        typer.echo(json.dumps({"rewards": rewards, "shaping": shaping, "params": params}, indent=2))
        return
    for title, rows in (("rewards (--reward NAME)", rewards), ("shaping terms (rl.reward.shaping)", shaping)):
        t = Table(title=title, title_justify="left")
        t.add_column("name", style="bold", no_wrap=True)
        t.add_column("what it does", overflow="fold")
        for k, doc in rows.items():
            t.add_row(k, doc)
        console.print(t)
    for k, names in params.items():
        console.print(f"-p {k}=  {' | '.join(names)}", highlight=False)
    console.print("your own reward: --reward FILE.py:FUNCTION or MODULE:FUNCTION (signature: "
                  "r1cli/rewards/custom.py)", highlight=False)


@app.command()
def score(
    input: Path = typer.Argument(
        ..., help="jsonl with id, response, answer (+ task fields, optional finished)"
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="output jsonl: input rows + score, correct, extracted, reason"
    ),
    reward: str = typer.Option(
        "math", "--reward", "-r",
        help="reward: math, exact, countdown, kk, gsm8k, swe, code, or your own FILE.py:FUNCTION / "
        "MODULE:FUNCTION (signature: r1cli/rewards/custom.py)",
    ),
    scheme: str | None = typer.Option(None, help="math score scheme: binary | pm1 | limr | simplerl"),
    extractor: str | None = typer.Option(None, help="auto | boxed | answer_tag | answer_line | gsm8k"),
    require_think: bool = typer.Option(False, "--require-think", help="grade only text after </think>"),
    param: list[str] = typer.Option(
        [], "--param", "-p", metavar="<key=value>", help="reward parameter, repeatable (JSON value)"
    ),
    workers: int = typer.Option(2, help="grading worker processes"),
    deadline: float = typer.Option(10.0, help="hard per-item deadline in seconds"),
) -> None:
    """Score every row and write it back with score, correct, extracted and reason.

    Your own reward (``--reward my_rewards.py:score``) gets each row minus ``response`` as its gold row (so
    every extra field is there) and runs in the same worker pool with the same hard deadline."""
    from r1cli.rewards import GradingPool, get_reward

    try:
        try:
            get_reward(reward)
            if ":" in reward:  # workers get the absolute path, whatever their working directory
                from r1cli.utils.userfn import normalize

                reward = normalize(reward, "--reward")
        except KeyError as exc:
            raise R1InputError(str(exc.args[0]), field="--reward") from None
        except R1InputError as exc:
            raise R1InputError(str(exc).removeprefix("reward: "), field="--reward") from None
        _check_pool_options(workers, deadline)
        params = parse_params(param)
        if scheme is not None:
            params["scheme"] = scheme
        if extractor is not None:
            params["extractor"] = extractor
        _check_names(params)
        rows = _read_rows(input, ("id", "response", "answer") + _task_fields(reward))
    except R1InputError as exc:
        raise fail(str(exc)) from None
    if require_think:
        params["require_think"] = True
    golds = [{k: v for k, v in r.items() if k not in ("response", "_line")} for r in rows]
    finished = [bool(r.get("finished", True)) for r in rows]
    with GradingPool(workers=workers, deadline_s=deadline) as pool:
        results = pool.map(reward, [r["response"] for r in rows], golds, params, finished)
    from r1cli.utils.io import atomic_write_jsonl

    out_rows = []
    for row, res in zip(rows, results, strict=True):
        o = {k: v for k, v in row.items() if k != "_line"}
        o.update(score=res.score, correct=res.correct, extracted=res.extracted, reason=res.reason)
        out_rows.append(o)
    atomic_write_jsonl(out, out_rows)
    n = len(results)
    acc = sum(r.correct for r in results) / n
    mean = sum(r.score for r in results) / n
    reasons = Counter(r.reason.split(":")[0] for r in results)
    console.print(f"{n} rows  accuracy {100 * acc:.1f} %  mean score {mean:.3f}  reasons {dict(reasons)}  -> {out}")


AUDIT_AGAINST = {"math-verify": "math_verify", "independent": "math_independent"}


def _audit_inputs(path: Path) -> list[dict[str, Any]]:
    """Rows (id, response, answer) to audit: a jsonl with those fields, an eval's ``samples.jsonl`` (answers
    from the ``gold`` of its sibling ``problems.jsonl``), or a run / eval directory (every ``samples.jsonl``
    below it)."""
    if path.is_dir():
        files = sorted(path.rglob("samples.jsonl"))
        if not files:
            raise R1InputError("no samples.jsonl below this directory (eval outputs hold responses)", file=str(path))
        return [row for f in files for row in _audit_inputs(f)]
    rows = _read_rows(path, ("id", "response"))
    missing = [r for r in rows if "answer" not in r]
    if missing:
        problems = path.parent / "problems.jsonl"
        if not problems.is_file():
            raise R1InputError(
                "missing field (and no problems.jsonl beside it to take the gold from)",
                file=str(path),
                row=missing[0]["_line"],
                field="answer",
            )
        gold = {str(p["id"]): p.get("gold") for p in _read_rows(problems, ("id",))}
        for r in missing:
            if not isinstance(gold.get(str(r["id"])), str):
                raise R1InputError(
                    f"no string gold for id {r['id']!r} in {problems}", file=str(path), row=r["_line"], field="id"
                )
            r["answer"] = gold[str(r["id"])]
    for r in rows:
        if not isinstance(r["answer"], str):
            raise R1InputError("must be a string", file=str(path), row=r["_line"], field="answer")
        r["_file"] = str(path)
    return rows


@app.command()
def audit(
    input: Path = typer.Argument(
        ...,
        help="jsonl with id, response, answer (optional answer_alternatives); an eval samples.jsonl (gold from "
        "problems.jsonl beside it); or a run/eval directory (all samples.jsonl below it)",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="write the disagreeing rows here (jsonl)"),
    against: str = typer.Option(
        "math-verify", help="reference grader: math-verify (plain verify(parse(gold), parse(text))) | independent"
    ),
    extractor: str = typer.Option("auto", help="answer extractor"),
    workers: int = typer.Option(2, help="grading worker processes"),
    deadline: float = typer.Option(10.0, help="hard per-item deadline in seconds"),
    show: int = typer.Option(50, help="print at most this many disagreements"),
) -> None:
    """Grade with r1's math reward and a reference grader; list where they disagree.

    r1's grader is the ``math`` reward (normalisation + math-verify + sympy fallback). The reference is plain
    math-verify (``math_verify``: what DeepScaleR-style peers use) or ``math_independent`` (normalised string +
    sympy numeric comparison, no math-verify). The disagreements show where r1's rewards differ from a peer's."""
    from rich.table import Table

    from r1cli.rewards import GradingPool

    try:
        if against not in AUDIT_AGAINST:
            raise R1InputError(f"unknown grader {against!r}; choose {' | '.join(AUDIT_AGAINST)}", field="--against")
        _check_pool_options(workers, deadline)
        _check_names({"extractor": extractor})
        rows = _audit_inputs(input)
    except R1InputError as exc:
        raise fail(str(exc)) from None
    responses = [r["response"] for r in rows]
    golds = [{k: v for k, v in r.items() if k not in ("response", "_line", "_file")} for r in rows]
    with GradingPool(workers=workers, deadline_s=deadline) as pool:
        first = pool.map("math", responses, golds, {"extractor": extractor})
        second = pool.map(AUDIT_AGAINST[against], responses, golds, {"extractor": extractor})
    disagree = [(row, a, b) for row, a, b in zip(rows, first, second, strict=True) if a.correct != b.correct]
    table = Table(title=f"r1 vs {against}: {len(disagree)} disagreements of {len(rows)}")
    for col in ("id", "line", "r1 extracted", f"{against} extracted", "gold", "r1", against):
        table.add_column(col, overflow="fold")
    for row, a, b in disagree[:show]:
        table.add_row(
            str(row["id"]),
            str(row["_line"]),
            str(a.extracted),
            str(b.extracted),
            row["answer"],
            f"{a.correct} ({a.reason})",
            f"{b.correct} ({b.reason})",
        )
    console.print(table)
    n = len(rows)
    only_r1 = sum(a.correct for _, a, _ in disagree)
    console.print(
        f"agreement {100 * (1 - len(disagree) / n):.2f} %  accuracy r1 {100 * sum(a.correct for a in first) / n:.1f} %"
        f"  {against} {100 * sum(b.correct for b in second) / n:.1f} %  (correct only for r1: {only_r1}, "
        f"only for {against}: {len(disagree) - only_r1})"
    )
    if out is not None:
        from r1cli.utils.io import atomic_write_jsonl

        key = AUDIT_AGAINST[against]
        atomic_write_jsonl(
            out,
            [
                {
                    "id": row["id"],
                    "file": row["_file"],
                    "line": row["_line"],
                    "answer": row["answer"],
                    "extracted": a.extracted,
                    f"{key}_extracted": b.extracted,
                    "r1": a.correct,
                    key: b.correct,
                    "reason_r1": a.reason,
                    f"reason_{key}": b.reason,
                }
                for row, a, b in disagree
            ],
        )
