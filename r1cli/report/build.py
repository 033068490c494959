"""``r1 report RUN [RUN ...]`` → one HTML page with its PNGs embedded.

For one run: RL curves across all stages on one step axis with stage boundaries; optimisation curves (grad
norm, lr, generation/update tokens per second, fraction of groups dropped by dynamic sampling); SFT loss; data
funnel; the eval table beside the recipe's published numbers; the resolved hyperparameters; sample completions
(correct and wrong) of every evaluated model.

For several runs: runs whose resolved recipes differ only in ``seed`` form a group; each group's curves are the
mean over its seeds with a ± 1 standard deviation band, its eval numbers mean ± std; the hyperparameter table
shows each group and marks the keys that differ.

One unit: r1 stores fractions (metrics.json, summary.json); every table and axis here shows percentages, and
published numbers (percent in the recipes) sit beside them in the same unit.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import yaml

from r1cli.utils.io import atomic_write_json, atomic_write_text, read_jsonl

CURVES = [
    ("reward_mean", "reward (mean)"),
    ("acc", "training accuracy (%)"),
    ("response_len_mean", "response length (tokens)"),
    ("entropy", "entropy"),
    ("kl", "KL"),
    ("clipfrac", "clip fraction (%)"),
    ("truncation_rate", "truncation rate (%)"),
    ("t_step", "seconds per step"),
]
#: logged by every RL step, drawn on their own page section
TRAINING_CURVES = [
    ("grad_norm", "gradient norm"),
    ("lr", "learning rate"),
    ("gen_tokens_per_s", "generation tokens/s"),
    ("update_tokens_per_s", "update tokens/s"),
    ("filtered_group_frac", "groups dropped by dynamic sampling (%)"),
    ("zero_adv_frac", "rows with zero advantage (%)"),
]
#: metrics that are fractions: drawn and tabulated as percentages
PERCENT = {"acc", "clipfrac", "truncation_rate", "filtered_group_frac", "zero_adv_frac"}
#: hyperparameters shown in the table (YAML paths of the resolved recipe)
HYPERPARAMS = [
    "seed", "model.path", "template", "warmups.sft.enabled", "warmups.sft.steps", "warmups.sft.lr",
    "curation.filter.enabled", "curation.filter.acc", "rl.algorithm.advantage", "rl.algorithm.policy_loss",
    "rl.algorithm.loss_agg", "rl.algorithm.clip_low", "rl.algorithm.clip_high", "rl.algorithm.kl.type",
    "rl.algorithm.kl.coef", "rl.algorithm.entropy_coef", "rl.reward.name", "rl.reward.shaping", "rl.train.lr",
    "rl.train.schedule", "rl.train.grad_clip", "rl.rollout.prompts_per_step", "rl.rollout.temperature",
    "rl.rollout.top_p", "rl.rollout.dynamic_sampling.filter", "rl.stages", "long2short.enabled",
    "eval.n", "eval.temperature", "eval.top_p", "eval.max_tokens",
]
SAMPLES_PER_KIND = 2  # completions shown per evaluated model: this many correct and this many wrong


def load_run(run: Path) -> dict[str, Any]:
    run = Path(run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg.pop("_r1", None)
    stages = []
    for st in cfg.get("rl", {}).get("stages", []):
        d = run / "rl" / st["name"]
        rows = read_jsonl(d / "metrics.jsonl") if (d / "metrics.jsonl").exists() else []
        stages.append({"name": st["name"], "max_response": st["max_response"], "steps": st["steps"], "rows": rows,
                       "dir": d})
    sft_p = run / "warmup" / "sft" / "metrics.jsonl"
    evals = []
    for m in sorted(run.glob("eval/*/*/*/metrics.json")):
        try:
            e = json.loads(m.read_text())
        except json.JSONDecodeError:
            continue
        e["_dir"] = str(m.parent)
        evals.append(e)
    funnel = []
    for label, rel in (
        ("prepared", "data/prepared.parquet"),
        ("clean", "data/clean.parquet"),
        ("filtered", "data/filtered.parquet"),
    ):
        p = run / rel
        if p.exists():
            import pyarrow.parquet as pq

            funnel.append((label, pq.ParquetFile(p).metadata.num_rows))
    return {
        "run": run,
        "cfg": cfg,
        "stages": stages,
        "sft": read_jsonl(sft_p) if sft_p.exists() else [],
        "evals": evals,
        "funnel": funnel,
    }


# --------------------------------------------------------------------------------------------- grouping
def recipe_key(cfg: dict[str, Any]) -> str:
    """Runs with the same key are seeds of one recipe: the resolved config without ``seed`` and ``logging``."""
    from r1cli.config import config_hash

    return config_hash({k: v for k, v in cfg.items() if k not in ("seed", "logging")})


def group_runs(datas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups of runs (seeds of one recipe) in first-seen order, each labelled by its recipe name -- plus, when
    two groups share a name, the hyperparameters that tell them apart (``tiny (lr=0.001)``)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in datas:
        groups.setdefault(recipe_key(d["cfg"]), []).append(d)
    names = [g[0]["cfg"].get("name", "?") for g in groups.values()]
    flats = [_flat({k: v for k, v in g[0]["cfg"].items() if k not in ("seed", "logging")}) for g in groups.values()]
    out = []
    for i, ((key, runs), name) in enumerate(zip(groups.items(), names, strict=True)):
        label = name
        same = [j for j, n in enumerate(names) if n == name]
        if len(same) > 1:
            differ = [k for k in flats[i] if len({flats[j].get(k) for j in same}) > 1]
            shown = ", ".join(_short(k, flats[i][k]) for k in differ[:2])
            label = f"{name} ({shown}{', …' if len(differ) > 2 else ''})" if shown else f"{name} [{key[:6]}]"
        seeds = [r["cfg"].get("seed") for r in runs]
        out.append({"key": key, "label": label, "runs": runs, "seeds": seeds})
    return out


def _short(key: str, value: str) -> str:
    """``rl.train.lr`` + ``0.001`` -> ``train.lr=0.001`` (the last path part, two when the last is generic)."""
    parts = key.split(".")
    k = ".".join(parts[-2:]) if parts[-1] in ("lr", "n", "name", "coef", "steps", "enabled", "params") else parts[-1]
    v = json.loads(value)
    return f"{k}={v if isinstance(v, str | int | float | bool) or v is None else value}"


def _mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if isinstance(x, int | float) and not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _series(run: dict[str, Any], key: str) -> tuple[dict[int, float], list[tuple[int, str]]]:
    """One run's metric on the all-stages step axis (stage i starts after the configured steps of stages
    before it, so seeds line up) and the stage boundaries."""
    out: dict[int, float] = {}
    bounds: list[tuple[int, str]] = []
    offset = 0
    for s in run["stages"]:
        bounds.append((offset, s["name"]))
        for r in s["rows"]:
            v = r.get(key)
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[offset + int(r["step"])] = float(v) * (100.0 if key in PERCENT else 1.0)
        offset += max(int(s["steps"]), 1 + max((int(r["step"]) for r in s["rows"]), default=-1))
    bounds.append((offset, ""))
    return out, bounds


def _aggregate(runs: list[dict[str, Any]], key: str) -> tuple[list[int], list[float], list[float]]:
    per = [_series(r, key)[0] for r in runs]
    steps = sorted(set().union(*per)) if per else []
    mean, std = [], []
    for s in steps:
        m, sd = _mean_std([p[s] for p in per if s in p])
        mean.append(m)
        std.append(sd)
    return steps, mean, std


# --------------------------------------------------------------------------------------------- plots
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve_figure(groups: list[dict[str, Any]], curves: list[tuple[str, str]], title: str, out: Path) -> Path | None:
    plt = _plt()
    keys = [(k, t) for k, t in curves
            if any(k in r for g in groups for run in g["runs"] for s in run["stages"] for r in s["rows"])]
    if not keys:
        return None
    nrow = (len(keys) + 1) // 2
    fig, axes = plt.subplots(nrow, 2, figsize=(11, 3.0 * nrow), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bounds = _series(groups[0]["runs"][0], keys[0][0])[1]
    for ax, (k, t) in zip(axes.flat, keys, strict=False):
        for gi, g in enumerate(groups):
            steps, mean, std = _aggregate(g["runs"], k)
            if not steps:
                continue
            c = colors[gi % len(colors)]
            n = len(g["runs"])
            label = g["label"] + (f" (mean of {n} seeds ± 1 sd)" if n > 1 else "")
            ax.plot(steps, mean, color=c, lw=1.4, marker="o" if len(steps) <= 30 else None, ms=3, label=label)
            if n > 1:
                lo = [m - (s if not math.isnan(s) else 0.0) for m, s in zip(mean, std, strict=True)]
                hi = [m + (s if not math.isnan(s) else 0.0) for m, s in zip(mean, std, strict=True)]
                ax.fill_between(steps, lo, hi, color=c, alpha=0.2, lw=0)
            elif len(mean) >= 5:
                w = max(2, len(mean) // 8)
                sm = [sum(mean[max(0, i - w + 1): i + 1]) / len(mean[max(0, i - w + 1): i + 1])
                      for i in range(len(mean))]
                ax.plot(steps, sm, color=c, lw=2.4, alpha=0.5)
        for x, _name in bounds[1:-1]:
            ax.axvline(x - 0.5, color="gray", ls="--", lw=1)
        for (x, name), (x2, _) in zip(bounds[:-1], bounds[1:], strict=False):
            ax.text((x + x2 - 1) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=7, color="gray")
        ax.set_xlim(-0.5, bounds[-1][0] - 0.5)
        ax.set_title(t, pad=12)
        ax.set_xlabel("RL step (all stages)")
        if k == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _sft_figure(groups: list[dict[str, Any]], out: Path) -> Path | None:
    if not any(run["sft"] for g in groups for run in g["runs"]):
        return None
    plt = _plt()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax, key, t in ((axes[0], "loss", "SFT loss"), (axes[1], "grad_norm", "SFT gradient norm")):
        for gi, g in enumerate(groups):
            per = [{int(r["step"]): float(r[key]) for r in run["sft"] if key in r} for run in g["runs"]]
            steps = sorted(set().union(*per))
            if not steps:
                continue
            ms = [_mean_std([p[s] for p in per if s in p]) for s in steps]
            c = colors[gi % len(colors)]
            ax.plot(steps, [m for m, _ in ms], color=c, label=g["label"], marker="o" if len(steps) <= 30 else None,
                    ms=3)
            if len(g["runs"]) > 1:
                ax.fill_between(steps, [m - (0 if math.isnan(s) else s) for m, s in ms],
                                [m + (0 if math.isnan(s) else s) for m, s in ms], color=c, alpha=0.2, lw=0)
        ax.set_title(t)
        ax.set_xlabel("step")
        if key == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _funnel_figure(groups: list[dict[str, Any]], out: Path) -> Path | None:
    data = groups[0]["runs"][0]
    if not data["funnel"]:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [f for f, _ in data["funnel"]]
    vals = [v for _, v in data["funnel"]]
    ax.bar(labels, vals, color="#4c72b0")
    for i, v in enumerate(vals):
        ax.text(i, v, str(v), ha="center", va="bottom")
    ax.set_ylim(0, max(vals) * 1.15 if vals and max(vals) > 0 else 1)
    ax.set_title(f"data funnel (prompts) — {groups[0]['label']}")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _eval_figure(rows: list[dict[str, Any]], out: Path) -> Path | None:
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(rows) + 2), 3.6))
    x = list(range(len(rows)))
    labels = [f"{r['model']}\n{r['benchmark']}" + (f"\n{r['group']}" if r["multi"] else "") for r in rows]
    metric = rows[0]["headline"]
    g = [r["metrics"].get("greedy_acc", (float("nan"), float("nan"))) for r in rows]
    a = [r["metrics"].get(metric, (float("nan"), float("nan"))) if metric else (float("nan"), float("nan"))
         for r in rows]
    bars = [ax.bar([i - 0.2 for i in x], [m for m, _ in g], width=0.4, label="greedy acc",
                   yerr=[0 if math.isnan(s) else s for _, s in g], capsize=3)]
    if metric:
        bars.append(ax.bar([i + 0.2 for i in x], [m for m, _ in a], width=0.4, label=metric,
                           yerr=[0 if math.isnan(s) else s for _, s in a], capsize=3))
    for b in bars:
        ax.bar_label(b, fmt="%.1f", fontsize=7, padding=1)
    pub = [(i, r["published"]) for i, r in enumerate(rows) if isinstance(r["published"], int | float)]
    if pub:
        ax.scatter([i for i, _ in pub], [v for _, v in pub], marker="_", s=600, color="black", zorder=3,
                   label="published")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 108)
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    ax.set_title("evaluation (%; error bars ± 1 sd over seeds)" if any(r["n"] > 1 for r in rows) else
                 "evaluation (%)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------- tables
def _pub_lookup(published: dict[str, Any], bench: str) -> Any:
    norm = bench.lower().replace("-", "").replace("_", "")
    for k, v in published.items():
        if k.lower().replace("-", "").replace("_", "") == norm:
            return v
    return None


def _metric_keys(evals: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for e in evals:
        for k in e:
            if (k.startswith(("avg@", "pass@", "maj@")) or k == "greedy_acc") and k not in keys and k != "pass@1":
                keys.append(k)
    return keys


def eval_rows(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (group, model, benchmark): each metric as (mean, sd) in percent over the group's seeds."""
    multi = len(groups) > 1
    out = []
    for g in groups:
        published = g["runs"][0]["cfg"].get("published") or {}
        cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in g["runs"]:
            for e in run["evals"]:
                cells.setdefault((str(e.get("model")), str(e.get("benchmark"))), []).append(e)
        for (model, bench), es in cells.items():
            keys = _metric_keys(es)
            metrics = {k: tuple(100 * v for v in _mean_std([e.get(k) for e in es])) for k in keys}
            metrics["truncation_rate"] = tuple(100 * v for v in _mean_std([e.get("truncation_rate") for e in es]))
            ln = _mean_std([e.get("response_len_mean") for e in es])
            pub = es[0].get("published")
            if pub is None:
                pub = published.get(bench) if bench in published else _pub_lookup(published, bench)
            out.append({
                "group": g["label"], "model": model, "benchmark": bench, "n": len(es), "multi": multi,
                "n_problems": es[0].get("n_problems"), "metrics": metrics, "len": ln, "published": pub,
                "headline": next((k for k in keys if k.startswith("avg@")), None), "spec": es[0].get("spec") or {},
                "dirs": [e.get("_dir") for e in es],
            })
    return out


def _fmt_ms(ms: tuple[float, float], digits: int = 1) -> str:
    m, s = ms
    if math.isnan(m):
        return ""
    return f"{m:.{digits}f}" if math.isnan(s) else f"{m:.{digits}f} ± {s:.{digits}f}"


def _eval_table(evals: list[dict[str, Any]], published: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One run's eval table as text cells: accuracies in percent, published (percent) beside them."""
    keys = _metric_keys(evals)
    header = ["model", "benchmark", *[f"{k} %" for k in keys], "len mean", "trunc %", "published %"]
    rows = []
    for e in evals:
        pub = e.get("published")
        if pub is None:
            pub = published.get(e.get("benchmark")) or _pub_lookup(published, str(e.get("benchmark")))
        rows.append(
            [str(e.get("model")), str(e.get("benchmark"))]
            + [f"{100 * e[k]:.1f}" if isinstance(e.get(k), int | float) else "" for k in keys]
            + [
                f"{e.get('response_len_mean', float('nan')):.1f}",
                f"{100 * e.get('truncation_rate', 0):.1f}",
                "" if pub is None else str(pub),
            ]
        )
    return header, rows


def _get(cfg: dict[str, Any], path: str) -> Any:
    node: Any = cfg
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _show(v: Any) -> str:
    if isinstance(v, list) and v and all(isinstance(x, dict) and "name" in x for x in v):
        parts = []
        for x in v:
            if "steps" in x:
                parts.append(f"{x['name']}: {x['steps']} steps × n={x.get('n')} @ {x.get('max_response')} tok")
            else:
                parts.append(f"{x['name']}{json.dumps(x.get('params') or {}) if x.get('params') else ''}")
        return "; ".join(parts) or "—"
    if v is None:
        return "—"
    return json.dumps(v) if isinstance(v, list | dict) else str(v)


def _flat(cfg: dict[str, Any]) -> dict[str, str]:
    """Dotted keys -> displayed values (the trackers' flattening: one spelling of a config everywhere)."""
    from r1cli.utils.tracking import flatten

    return flatten(cfg)


def _hyper_html(groups: list[dict[str, Any]]) -> str:
    cols = [(g["label"] + (f" (seeds {', '.join(map(str, g['seeds']))})" if len(g["runs"]) > 1 else ""),
             g["runs"][0]["cfg"], g) for g in groups]
    flats = [_flat({k: v for k, v in c.items() if k != "seed"}) for _, c, _ in cols]
    differ = sorted({k for f in flats for k in f if len({fl.get(k) for fl in flats}) > 1})
    keys = list(dict.fromkeys([*HYPERPARAMS, *differ]))
    h = ["<table class='hp'><tr><th>key</th>" + "".join(f"<th>{html.escape(c)}</th>" for c, _, _ in cols)
         + "</tr>"]
    for k in keys:
        vals = []
        for _, c, g in cols:
            if k == "seed":
                vals.append(", ".join(str(s) for s in g["seeds"]))
            else:
                vals.append(_show(_get(c, k)))
        if all(v == "—" for v in vals):
            continue
        cls = " class='diff'" if k in differ else ""
        h.append(f"<tr{cls}><td class='k'>{html.escape(k)}</td>"
                 + "".join(f"<td class='v'>{html.escape(v)}</td>" for v in vals) + "</tr>")
    h.append("</table>")
    if len(groups) > 1:
        h.append("<p class='note'>highlighted rows differ between the groups</p>")
    for label, c, _ in cols:
        h.append(f"<details><summary>resolved config — {html.escape(label)}</summary><pre>"
                 f"{html.escape(yaml.safe_dump(c, sort_keys=False, allow_unicode=True))}</pre></details>")
    return "\n".join(h)


def _samples_html(groups: list[dict[str, Any]]) -> str:
    """A few completions, correct and wrong, of every evaluated model (the first run of each group); the RL
    stages' own samples when their trajectories carry them (``samples`` rows)."""
    parts = []
    for g in groups:
        run = g["runs"][0]
        prompts = _test_prompts(run["run"])
        seen_models: set[str] = set()
        for e in sorted(run["evals"], key=lambda e: (str(e.get("model")), str(e.get("benchmark")))):
            key = f"{e.get('model')}/{e.get('benchmark')}"
            if key in seen_models or not e.get("_dir"):
                continue
            seen_models.add(key)
            d = Path(e["_dir"])
            if not (d / "samples.jsonl").exists():
                continue
            golds = {}
            if (d / "problems.jsonl").exists():
                golds = {p["id"]: p.get("gold") for p in read_jsonl(d / "problems.jsonl")}
            rows = [r for r in read_jsonl(d / "samples.jsonl") if "response" in r]
            picked = ([r for r in rows if r.get("correct")][:SAMPLES_PER_KIND]
                      + [r for r in rows if not r.get("correct")][:SAMPLES_PER_KIND])
            if not picked:
                continue
            title = f"{g['label']} · model {e.get('model')} · {e.get('benchmark')}" if len(groups) > 1 else \
                f"model {e.get('model')} · {e.get('benchmark')}"
            parts.append(f"<h3>{html.escape(title)}</h3>")
            bench_prompts = prompts if str(e.get("benchmark", "")).split("@")[0] == "test" else {}
            parts.append(_sample_cards(picked, golds, bench_prompts))
        for s in run["stages"]:
            p = s["dir"] / "trajectories.jsonl"
            if not p.exists():
                continue
            smp = [x for t in read_jsonl(p) for x in (t.get("samples") or []) if "response" in x]
            picked = ([x for x in smp if x.get("correct")][-SAMPLES_PER_KIND:]
                      + [x for x in smp if not x.get("correct")][-SAMPLES_PER_KIND:])
            if picked:
                parts.append(f"<h3>{html.escape(g['label'])} · RL stage {html.escape(s['name'])} rollouts</h3>")
                parts.append(_sample_cards(picked, {}, {}))
    return "\n".join(parts) if parts else "<p>no samples yet (evaluations write them)</p>"


def _test_prompts(run: Path) -> dict[str, str]:
    """id -> the prompt text of the run's prepared test split (the last user message, else ``prompt`` /
    ``problem``), for the sample completions of the ``test`` benchmark."""
    p = run / "data" / "test.parquet"
    if not p.exists():
        return {}
    try:
        from r1cli.utils.io import read_parquet

        rows = read_parquet(p)
    except Exception:  # noqa: BLE001 - prompts are a nicety; the samples show without them
        return {}
    out = {}
    for r in rows:
        users = [m.get("content") for m in (r.get("messages") or []) if m.get("role") == "user"]
        text = users[-1] if users else (r.get("prompt") or r.get("problem"))
        if text:
            out[str(r.get("id"))] = str(text)
    return out


def _sample_cards(rows: list[dict[str, Any]], golds: dict[str, Any], prompts: dict[str, str]) -> str:
    out = ["<div class='samples'>"]
    for r in rows:
        ok = bool(r.get("correct"))
        gold = golds.get(r.get("id"), r.get("gold"))
        head = (f"<b class='{'ok' if ok else 'bad'}'>{'correct' if ok else 'wrong'}</b> · id "
                f"{html.escape(str(r.get('id')))} · gold {html.escape(str(gold))} · extracted "
                f"{html.escape(str(r.get('extracted')))} · {html.escape(str(r.get('reason', '')))}"
                + (f" · {r['n_tokens']} tokens" if isinstance(r.get("n_tokens"), int) else ""))
        prompt = prompts.get(str(r.get("id")))
        out.append("<div class='sample'>" + head
                   + (f"<pre class='prompt'>{html.escape(str(prompt))}</pre>" if prompt else "")
                   + f"<pre>{html.escape(str(r.get('response')))}</pre></div>")
    out.append("</div>")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------- page
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#eee}td.k,td.v{text-align:left;font-family:monospace;font-size:12px}"
    "tr.diff td{background:#fff4cc}.note{color:#666;font-size:12px}"
    "img{max-width:100%;display:block;margin:0.5em 0}pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;"
    "margin:4px 0;font-size:12px}pre.prompt{background:#eef3fb}.sample{border:1px solid #ddd;padding:6px;"
    "margin:6px 0}.ok{color:#1a7f37}.bad{color:#c62828}details{margin:0.5em 0}"
)


def _img(p: Path) -> str:
    b64 = base64.b64encode(p.read_bytes()).decode()
    return f"<img src='data:image/png;base64,{b64}' alt='{html.escape(p.stem.replace('_', ' '))}'>"


def build_report(runs: Path | list[Path], out: Path | None = None) -> Path:
    """Write ``out/index.html`` (default ``RUN/report`` for one run) with the PNGs beside it and
    ``summary.json`` (fractions); returns the HTML path."""
    run_list = [Path(runs)] if isinstance(runs, str | Path) else [Path(r) for r in runs]
    if not run_list:
        raise ValueError("build_report needs at least one run directory")
    out = Path(out) if out is not None else run_list[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    datas = [load_run(r) for r in run_list]
    groups = group_runs(datas)
    rows = eval_rows(groups)
    pngs = [p for p in (
        _curve_figure(groups, CURVES, "RL curves across stages (dashed = stage boundary)", out / "rl_curves.png"),
        _curve_figure(groups, TRAINING_CURVES, "optimisation and throughput", out / "rl_training.png"),
        _sft_figure(groups, out / "sft_loss.png"),
        _funnel_figure(groups, out / "data_funnel.png"),
        _eval_figure(rows, out / "eval.png"),
    ) if p is not None]
    summary = {
        "runs": [str(r) for r in run_list],
        "groups": [{"label": g["label"], "key": g["key"], "seeds": g["seeds"],
                    "runs": [str(r["run"]) for r in g["runs"]]} for g in groups],
        "recipe": datas[0]["cfg"]["name"],
        "evals": [{k: v for k, v in e.items() if k != "_dir"} for d in datas for e in d["evals"]],
        "funnel": dict(datas[0]["funnel"]),
        "stages": [
            {"run": str(d["run"]), "name": s["name"], "steps": len(s["rows"]),
             "final_reward": s["rows"][-1].get("reward_mean") if s["rows"] else None}
            for d in datas for s in d["stages"]
        ],
    }
    atomic_write_json(out / "summary.json", summary)
    title = " vs ".join(g["label"] for g in groups)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<link rel='icon' href='data:,'>"  # no favicon request (a 404 in the browser console otherwise)
        f"<title>r1 report: {html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>r1 report — {html.escape(title)}</h1>",
    ]
    for g in groups:
        cfg = g["runs"][0]["cfg"]
        runs_txt = ", ".join(html.escape(str(r["run"].resolve())) for r in g["runs"])
        parts.append(f"<p><b>{html.escape(g['label'])}</b>: {html.escape(str(cfg.get('description', '')))}"
                     f"<br><span class='note'>paper: {html.escape(str(cfg.get('paper', '')))} · runs: {runs_txt}"
                     f" · seeds {', '.join(map(str, g['seeds']))}</span></p>")
    parts.append("<h2>Evaluation</h2>")
    if rows:
        keys: list[str] = []
        for r in rows:
            keys.extend(k for k in r["metrics"] if k != "truncation_rate" and k not in keys)
        multi = len(groups) > 1
        seeds = any(r["n"] > 1 for r in rows)
        head = [*(["group"] if multi else []), "model", "benchmark", "N", *(["seeds"] if seeds else []),
                *[f"{k} %" for k in keys], "len (tokens)", "trunc %", "published %", "sampling"]
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        for r in rows:
            sp = r["spec"]
            sampling = (f"n={sp.get('n')} T={sp.get('temperature')} top_p={sp.get('top_p')} "
                        f"max={sp.get('max_tokens')} · {sp.get('spec_hash', '')}")
            cells = [*([r["group"]] if multi else []), r["model"], r["benchmark"], str(r["n_problems"]),
                     *([str(r["n"])] if seeds else []),
                     *[_fmt_ms(r["metrics"].get(k, (float("nan"), float("nan")))) for k in keys],
                     _fmt_ms(r["len"], 0), _fmt_ms(r["metrics"]["truncation_rate"]),
                     "" if r["published"] is None else str(r["published"]), sampling]
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table><p class='note'>percent; mean ± 1 sd over seeds where a recipe has several; "
                     "published = the paper's number (percent)</p>")
    else:
        parts.append("<p>no evaluation results yet</p>")
    for p in pngs:
        parts.append(f"<h2>{html.escape(p.stem.replace('_', ' '))}</h2>{_img(p)}")
    parts.append("<h2>Sample completions</h2>")
    parts.append(_samples_html(groups))
    parts.append("<h2>Hyperparameters</h2>")
    parts.append(_hyper_html(groups))
    parts.append("</body></html>")
    atomic_write_text(out / "index.html", "\n".join(parts))
    return out / "index.html"
