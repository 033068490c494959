"""Model cards: the README.md of every exported model folder (SFT, each RL stage, long2short; the last RL stage
is the run's ``final`` model), in the Hugging Face Hub's format -- YAML front matter (``base_model``,
``library_name``, ``tags``, ``datasets``, ``pipeline_tag``) then the recipe and resolved-config summary, the
data, the eval table with its sampling spec, and how to load the model.

No torch, no pipeline import: the caller (``r1 train``, ``r1 long2short``, ``r1 push``) says which model names
share the folder (``final`` and the last stage's name) so their evals are found under ``RUN/eval/<name>/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from r1cli.utils.io import atomic_write_text

#: accuracy-like eval metrics shown as percentages (stored as fractions everywhere)
_PCT_PREFIXES = ("avg@", "pass@", "maj@", "greedy_acc", "truncation_rate", "greedy_truncation_rate")


def _hub_id(source: str) -> str | None:
    """``org/name`` for a Hub id; None for local files, ``synth:`` sources and the embedded model."""
    if not source or ":" in source or source.startswith((".", "/", "~")):
        return None
    if Path(source).suffix in (".jsonl", ".json", ".parquet", ".csv") or Path(source).exists():
        return None
    return source if source.count("/") == 1 else None


def _stage_kind(name: str, cfg: dict[str, Any]) -> str:
    if name == "sft":
        return "sft"
    if name == "long2short":
        return "long2short"
    return "rl"


def _evals(run_dir: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for n in dict.fromkeys(names):
        for p in sorted((run_dir / "eval" / n).glob("*/*/metrics.json")):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue
    return out


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}" if isinstance(v, int | float) and not isinstance(v, bool) else ""


def eval_table(evals: list[dict[str, Any]], published: dict[str, Any] | None = None) -> str:
    """Markdown: one row per (model, benchmark), accuracies in percent, lengths in tokens, the recipe's
    published number (percent) beside them, and each row's sampling spec."""
    if not evals:
        return "_No evaluation of this model yet (`r1 pipeline` runs the recipe's evals; `r1 push` rebuilds the " \
               "card with them)._\n"
    keys: list[str] = []
    for e in evals:
        keys.extend(k for k in e if k.startswith(("avg@", "pass@", "maj@")) and k not in keys and k != "pass@1")
    if any("greedy_acc" in e for e in evals):
        keys.insert(0, "greedy_acc")
    head = ["benchmark", "N", *[f"{k} %" for k in keys], "len (tokens)", "trunc %", "published %", "sampling"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in evals:
        sp = e.get("spec") or {}
        pub = e.get("published")
        if pub is None and published:
            pub = published.get(str(e.get("benchmark")))
        sampling = (f"n={sp.get('n')} T={sp.get('temperature')} top_p={sp.get('top_p')} "
                    f"max_tokens={sp.get('max_tokens')} template={sp.get('template')} seed={sp.get('seed')} "
                    f"spec {sp.get('spec_hash', '')}")
        lines.append("| " + " | ".join([
            str(e.get("benchmark")), str(e.get("n_problems", "")), *[_pct(e.get(k)) for k in keys],
            f"{e['response_len_mean']:.0f}" if isinstance(e.get("response_len_mean"), int | float) else "",
            _pct(e.get("truncation_rate")), "" if pub is None else str(pub), sampling,
        ]) + " |")
    return "\n".join(lines) + "\n"


def _recipe_lines(cfg: dict[str, Any], name: str) -> list[str]:
    rl, alg = cfg.get("rl", {}), cfg.get("rl", {}).get("algorithm", {})
    sft, l2s = cfg.get("warmups", {}).get("sft", {}), cfg.get("long2short", {})
    stages = [s["name"] for s in rl.get("stages", [])] if rl.get("enabled", True) else []
    chain = ["base"] + (["sft"] if sft.get("enabled") else [])
    if name == "sft":
        upto = chain
    else:
        upto = chain + [f"rl:{s}" for s in (stages if name not in stages else stages[: stages.index(name) + 1])]
        if name == "long2short":
            upto.append(f"long2short ({l2s.get('method')})")
    lines = [f"- **Pipeline up to this model:** {' → '.join(upto)}"]
    if sft.get("enabled"):
        lines.append(f"- **SFT cold start:** {sft.get('steps')} steps, batch {sft.get('batch_size')}, "
                     f"lr {sft.get('lr')}, max length {sft.get('max_len')}")
    if name not in ("sft",) and stages:
        rc = rl.get("reward", {})
        shaping = ", ".join(t["name"] for t in rc.get("shaping", [])) or "none"
        kl = alg.get("kl", {})
        lines += [
            f"- **RL algorithm:** advantage `{alg.get('advantage')}`, policy loss `{alg.get('policy_loss')}`, "
            f"aggregation `{alg.get('loss_agg')}`, clip ε {alg.get('clip_low')}/"
            f"{alg.get('clip_high') or alg.get('clip_low')}, KL {kl.get('type')} × {kl.get('coef')} ({kl.get('use')})",
            f"- **Reward:** `{rc.get('name')}` {json.dumps(rc.get('params') or {})}; shaping: {shaping}",
            f"- **Rollouts:** {rl.get('rollout', {}).get('prompts_per_step')} prompts/step, temperature "
            f"{rl.get('rollout', {}).get('temperature')}, top_p {rl.get('rollout', {}).get('top_p')}; "
            f"optimizer lr {rl.get('train', {}).get('lr')} ({rl.get('train', {}).get('schedule')})",
        ]
        for s in rl.get("stages", []):
            if f"rl:{s['name']}" in upto:
                lines.append(f"  - stage `{s['name']}`: {s['steps']} steps, {s.get('n')} samples/prompt, max "
                             f"response {s['max_response']} tokens, data `{s.get('data', 'train')}`")
    if name == "long2short":
        lines.append(f"- **long2short:** method `{l2s.get('method')}`, {l2s.get('steps')} steps, "
                     f"lr {l2s.get('lr')}")
    return lines


def _data_lines(cfg: dict[str, Any], run_dir: Path) -> list[str]:
    d = cfg.get("data", {})
    lines = []
    for split in ("train", "test"):
        src = d.get(split)
        if src:
            extra = ", ".join(f"{k} {src[k]}" for k in ("split", "task", "limit", "size") if src.get(k) is not None)
            lines.append(f"- **{split}:** `{src.get('source')}` ({extra})")
    cur = cfg.get("curation", {})
    steps = [k for k in ("dedup", "decontaminate", "filter", "limr", "mine_hard") if cur.get(k, {}).get("enabled")]
    if steps:
        f = cur.get("filter", {})
        band = f" (pass-rate band {f.get('acc')} measured with {f.get('n')} samples by `{f.get('model')}`)" \
            if f.get("enabled") else ""
        lines.append(f"- **Curation:** {', '.join(steps)}{band}")
    counts = []
    for label, rel in (("prepared", "data/prepared.parquet"), ("clean", "data/clean.parquet"),
                       ("filtered", "data/filtered.parquet")):
        p = run_dir / rel
        if p.exists():
            import pyarrow.parquet as pq

            counts.append(f"{label} {pq.ParquetFile(p).metadata.num_rows}")
    if counts:
        lines.append(f"- **Rows:** {' → '.join(counts)}")
    return lines


def model_card(
    cfg: dict[str, Any],
    run_dir: Path,
    *,
    model_name: str,
    aliases: Sequence[str] = (),
    repo_id: str | None = None,
    model_path: str | None = None,
) -> str:
    """The README.md text of the model ``model_name`` of a run (``cfg``: the resolved recipe as a dict).
    ``aliases``: other names of the same folder (``final``); ``repo_id``/``model_path`` go into the loading
    snippet (default: the folder)."""
    run_dir = Path(run_dir)
    names = [model_name, *aliases]
    kind = _stage_kind(model_name, cfg)
    base = cfg.get("model", {}).get("path", "")
    front: dict[str, Any] = {}
    if _hub_id(base):
        front["base_model"] = base
    front["library_name"] = "transformers"
    front["pipeline_tag"] = "text-generation"
    tags = ["r1", "reasoning", f"recipe:{cfg.get('name')}", kind]
    if kind == "rl":
        tags += ["reinforcement-learning", str(cfg.get("rl", {}).get("algorithm", {}).get("advantage"))]
    if "final" in names:
        tags.append("final")
    front["tags"] = tags
    ds = [h for h in (_hub_id(str((cfg.get("data", {}).get(s) or {}).get("source", ""))) for s in ("train", "test"))
          if h]
    if ds:
        front["datasets"] = list(dict.fromkeys(ds))
    shown = " / ".join(dict.fromkeys(names))
    where = repo_id or model_path or "PATH_TO_THIS_FOLDER"
    resolved = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    evals = _evals(run_dir, names)
    parts = [
        "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n",
        f"# {cfg.get('name')} — {shown}\n",
        f"{cfg.get('description', '')}\n".lstrip() if cfg.get("description") else "",
        f"Trained with r1 (`r1 pipeline`) recipe **`{cfg.get('name')}`**"
        + (f" ({cfg.get('paper')})" if cfg.get("paper") else "")
        + f", scale `{cfg.get('scale', 'full')}`, seed {cfg.get('seed')}, from base model `{base}`.\n",
        "## Recipe\n",
        "\n".join(_recipe_lines(cfg, model_name)) + "\n",
        "## Data\n",
        ("\n".join(_data_lines(cfg, run_dir)) or "- (none recorded)") + "\n",
        "## Evaluation\n",
        "Accuracies in percent (r1 stores fractions); `published` is the paper's number for the recipe.\n",
        eval_table(evals, cfg.get("published") or {}),
        "## How to load\n",
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'tok = AutoTokenizer.from_pretrained("{where}")\n'
        f'model = AutoModelForCausalLM.from_pretrained("{where}", torch_dtype="auto")\n'
        "```\n",
        f"Prompts use the `{cfg.get('template')}` template"
        + (f" with system prompt {json.dumps(cfg['system_prompt'])}" if cfg.get("system_prompt") else "")
        + f"; evaluate like the run did with `r1 eval --model {where} --benchmarks ...`.\n",
        "## Resolved config\n",
        f"<details><summary>the full resolved recipe (config.yaml of the run)</summary>\n\n```yaml\n{resolved}```\n"
        "</details>\n",
    ]
    return "\n".join(p for p in parts if p)


def write_card(
    cfg: dict[str, Any], run_dir: Path, model_dir: Path, *, model_name: str, aliases: Sequence[str] = ()
) -> Path:
    """Write ``model_dir/README.md`` (atomically) and return its path."""
    text = model_card(cfg, run_dir, model_name=model_name, aliases=aliases)
    path = Path(model_dir) / "README.md"
    atomic_write_text(path, text)
    return path
