"""``r1 eval compare A B``: two evaluation trees side by side, with deltas (B − A) and the spec fields that
differ (a comparison across sampling settings is flagged, never hidden)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from r1cli.errors import R1InputError
from r1cli.eval.spec import SPEC_KEYS

HEADLINE_ORDER = ("greedy_acc", "avg@", "pass@", "maj@", "response_len_mean", "truncation_rate", "n_problems")


def collect_metrics(root: str | Path) -> list[dict[str, Any]]:
    """Every metrics.json under ``root`` (a metrics.json file, an eval dir or a tree of them)."""
    p = Path(root)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = [p / "metrics.json"] if (p / "metrics.json").exists() else sorted(p.rglob("metrics.json"))
    else:
        raise R1InputError(f"not found: {p}")
    out = []
    for f in files:
        try:
            m = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise R1InputError(f"invalid JSON ({exc.msg})", file=str(f)) from exc
        if not isinstance(m, dict) or "benchmark" not in m:
            continue
        m["_path"] = str(f)
        out.append(m)
    if not out:
        raise R1InputError(f"no metrics.json under {p}")
    return out


def metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Numeric headline metrics present in any of ``rows``, in display order."""
    keys: list[str] = []
    for prefix in HEADLINE_ORDER:
        found = {
            k
            for r in rows
            for k, v in r.items()
            if (k == prefix or (prefix.endswith("@") and k.startswith(prefix)))
            and isinstance(v, int | float)
            and not isinstance(v, bool)
        }
        keys += sorted(found - set(keys), key=lambda k: (len(k), k))
    return keys


def spec_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    sa, sb = a.get("spec") or {}, b.get("spec") or {}
    return {k: (sa.get(k), sb.get(k)) for k in SPEC_KEYS if sa.get(k) != sb.get(k)}


def compare(a: str | Path, b: str | Path) -> list[dict[str, Any]]:
    """Pairs of metrics by benchmark (and spec hash when a side has several). Each entry: benchmark, a, b
    (metrics or None), rows [(metric, va, vb, delta)], spec_diff."""
    ma, mb = collect_metrics(a), collect_metrics(b)

    def index(ms: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(str(m["benchmark"]), str(m.get("spec_hash", ""))): m for m in ms}

    ia, ib = index(ma), index(mb)
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    used_b: set[tuple[str, str]] = set()
    for key, m in ia.items():
        if key in ib:
            pairs.append((m, ib[key]))
            used_b.add(key)
    done_a = {id(x) for x, _ in pairs}
    for key, m in ia.items():
        if id(m) in done_a:
            continue
        cands = [k for k in ib if k[0] == key[0] and k not in used_b]
        if len(cands) == 1:
            pairs.append((m, ib[cands[0]]))
            used_b.add(cands[0])
        else:
            pairs.append((m, None))
    for key, m in ib.items():
        if key not in used_b:
            pairs.append((None, m))
    out = []
    for x, y in sorted(pairs, key=lambda p: str((p[0] or p[1] or {}).get("benchmark"))):
        present = [m for m in (x, y) if m is not None]
        rows = []
        for k in metric_keys(present):
            va = x.get(k) if x else None
            vb = y.get(k) if y else None
            d = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
            rows.append((k, va, vb, d))
        out.append(
            {
                "benchmark": (x or y or {}).get("benchmark"),
                "a": x,
                "b": y,
                "rows": rows,
                "spec_diff": spec_diff(x, y) if x and y else {},
            }
        )
    return out
