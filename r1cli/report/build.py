"""``r1 report RUN`` → report/index.html + PNGs (reward, accuracy, length, entropy across all RL stages on one
step axis with stage boundaries; SFT loss; data funnel; eval table beside the recipe's published numbers)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import yaml

from r1cli.utils.io import atomic_write_json, atomic_write_text, read_jsonl

CURVES = [
    ("reward_mean", "reward (mean)"),
    ("acc", "training accuracy"),
    ("response_len_mean", "response length"),
    ("entropy", "entropy"),
    ("kl", "KL"),
    ("clipfrac", "clip fraction"),
    ("truncation_rate", "truncation rate"),
    ("t_step", "seconds per step"),
]


def load_run(run: Path) -> dict[str, Any]:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    stages = []
    for st in cfg.get("rl", {}).get("stages", []):
        p = run / "rl" / st["name"] / "metrics.jsonl"
        rows = read_jsonl(p) if p.exists() else []
        stages.append({"name": st["name"], "max_response": st["max_response"], "rows": rows})
    sft_p = run / "warmup" / "sft" / "metrics.jsonl"
    evals = []
    for m in sorted(run.glob("eval/*/*/*/metrics.json")):
        try:
            evals.append(json.loads(m.read_text()))
        except json.JSONDecodeError:
            continue
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
        "cfg": cfg,
        "stages": stages,
        "sft": read_jsonl(sft_p) if sft_p.exists() else [],
        "evals": evals,
        "funnel": funnel,
    }


def _plot_curves(data: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    stages = [s for s in data["stages"] if s["rows"]]
    if stages:
        keys = [(k, t) for k, t in CURVES if any(k in r for s in stages for r in s["rows"])]
        ncol = 2
        nrow = (len(keys) + 1) // 2
        fig, axes = plt.subplots(nrow, ncol, figsize=(11, 3.0 * nrow), squeeze=False)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, (k, title) in zip(axes.flat, keys, strict=False):
            offset = 0
            for si, s in enumerate(stages):
                xs = [offset + r["step"] for r in s["rows"] if k in r]
                ys = [r[k] for r in s["rows"] if k in r]
                ax.plot(
                    xs,
                    ys,
                    color=colors[si % len(colors)],
                    lw=1.2,
                    marker="o" if len(ys) <= 30 else None,  # sparse metrics (e.g. steps with an update) stay visible
                    ms=3,
                    label=f"{s['name']} (L={s['max_response']})",
                )
                if len(ys) >= 5:
                    w = max(2, len(ys) // 8)
                    sm = [
                        sum(ys[max(0, i - w + 1) : i + 1]) / len(ys[max(0, i - w + 1) : i + 1])
                        for i in range(len(ys))
                    ]
                    ax.plot(xs, sm, color=colors[si % len(colors)], lw=2.4, alpha=0.5)
                offset += max(r["step"] for r in s["rows"]) + 1
                if si < len(stages) - 1:
                    ax.axvline(offset - 0.5, color="gray", ls="--", lw=1)
            ax.set_xlim(-0.5, offset - 0.5)  # every panel spans all stages, boundaries aligned
            ax.set_title(title)
            ax.set_xlabel("RL step (all stages)")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(keys) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        fig.suptitle(f"{data['cfg']['name']}: RL curves across stages (dashed = stage boundary)")
        fig.tight_layout()
        p = out / "rl_curves.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    if data["sft"]:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot([r["step"] for r in data["sft"]], [r["loss"] for r in data["sft"]])
        ax.set_title("SFT warm-up loss")
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        p = out / "sft_loss.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    if data["funnel"]:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        labels = [f for f, _ in data["funnel"]]
        vals = [v for _, v in data["funnel"]]
        ax.bar(labels, vals, color="#4c72b0")
        for i, v in enumerate(vals):
            ax.text(i, v, str(v), ha="center", va="bottom")
        ax.set_ylim(0, max(vals) * 1.15 if vals and max(vals) > 0 else 1)
        ax.set_title("data funnel (prompts)")
        fig.tight_layout()
        p = out / "data_funnel.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    if data["evals"]:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        rows = data["evals"]
        labels = [f"{e.get('model')}\n{e.get('benchmark')}" for e in rows]
        g = [e.get("greedy_acc", float("nan")) for e in rows]
        avg_key = next((k for k in rows[0] if k.startswith("avg@")), None)
        x = range(len(rows))
        bars = [ax.bar([i - 0.2 for i in x], g, width=0.4, label="greedy acc")]
        if avg_key:
            bars.append(
                ax.bar(
                    [i + 0.2 for i in x], [e.get(avg_key, float("nan")) for e in rows], width=0.4, label=avg_key
                )
            )
        for b in bars:  # values on the bars: a 0.000 bar is otherwise invisible
            ax.bar_label(b, fmt="%.3f", fontsize=7, padding=1)
        published = (data["cfg"].get("published") or {}) if isinstance(data.get("cfg"), dict) else {}
        pub = [(i, published.get(e.get("benchmark"))) for i, e in enumerate(rows)]
        pub = [(i, float(v) / 100.0) for i, v in pub if isinstance(v, (int, float))]
        if pub:
            ax.scatter([i for i, _ in pub], [v for _, v in pub], marker="_", s=600, color="black", zorder=3,
                       label="published")
        ax.set_xticks(list(x), labels, fontsize=8)
        ax.set_ylim(0, 1.08)
        ax.legend()
        ax.set_title("evaluation")
        fig.tight_layout()
        p = out / "eval.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    return made


def _eval_table(evals: list[dict[str, Any]], published: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    keys: list[str] = []
    for e in evals:
        for k in e:
            if (k.startswith(("avg@", "pass@", "maj@")) or k == "greedy_acc") and k not in keys:
                keys.append(k)
    header = ["model", "benchmark", *keys, "len mean", "trunc", "published"]
    rows = []
    for e in evals:
        pub = published.get(e.get("benchmark")) or _pub_lookup(published, str(e.get("benchmark")))
        rows.append(
            [str(e.get("model")), str(e.get("benchmark"))]
            + [f"{e[k]:.3f}" if isinstance(e.get(k), int | float) else "" for k in keys]
            + [
                f"{e.get('response_len_mean', float('nan')):.1f}",
                f"{e.get('truncation_rate', 0):.3f}",
                "" if pub is None else str(pub),
            ]
        )
    return header, rows


def _pub_lookup(published: dict[str, Any], bench: str) -> Any:
    norm = bench.lower().replace("-", "").replace("_", "")
    for k, v in published.items():
        if k.lower().replace("-", "").replace("_", "") == norm:
            return v
    return None


def build_report(run: Path) -> Path:
    run = Path(run)
    out = run / "report"
    out.mkdir(parents=True, exist_ok=True)
    data = load_run(run)
    pngs = _plot_curves(data, out)
    header, rows = _eval_table(data["evals"], data["cfg"].get("published") or {})
    summary = {
        "recipe": data["cfg"]["name"],
        "evals": data["evals"],
        "funnel": dict(data["funnel"]),
        "stages": [
            {
                "name": s["name"],
                "steps": len(s["rows"]),
                "final_reward": s["rows"][-1].get("reward_mean") if s["rows"] else None,
            }
            for s in data["stages"]
        ],
    }
    atomic_write_json(out / "summary.json", summary)
    parts = [
        f"<html><head><meta charset='utf-8'><title>r1 report: {html.escape(data['cfg']['name'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}</style></head><body>",
        f"<h1>r1 report — {html.escape(data['cfg']['name'])}</h1>",
        f"<p>{html.escape(str(data['cfg'].get('description', '')))}</p>",
        "<h2>Evaluation</h2>",
    ]
    if rows:
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        parts.append("</table>")
    else:
        parts.append("<p>no evaluation results yet</p>")
    for p in pngs:
        b64 = base64.b64encode(p.read_bytes()).decode()
        parts.append(
            f"<h2>{html.escape(p.stem.replace('_', ' '))}</h2><img src='data:image/png;base64,{b64}' "
            f"alt='{p.name}' style='max-width:100%'>"
        )
    parts.append("</body></html>")
    atomic_write_text(out / "index.html", "\n".join(parts))
    return out / "index.html"
