"""The long2short stage (``r1 long2short --run RUN``): make a long-CoT model answer with fewer tokens.
Kimi k1.5 (arXiv 2501.12599, §2.4) methods, plus L1's length targets (arXiv 2503.04697) for the RL one:

* ``shortest`` — sample every training prompt ``long2short.n`` times from the long model, keep the shortest
  correct response (r1cli.long2short.select.shortest_correct), SFT the long model on them.
* ``dpo`` — same samples; pairs (shortest correct, wrong-and-longer or correct-and-≥1.5×-longer)
  (select.dpo_pairs); DPO (r1cli.algos.dpo_loss, β = ``long2short.beta``) from the long model, with the long
  model as the frozen reference.
* ``merge`` — weight average (r1cli.long2short.merge) of the long model and a short model. The short model is
  ``short_model`` when given (CLI ``--short-model``); otherwise it is derived in-stage by the ``shortest``
  method (for the tiny pipeline variant, where no separately trained short-CoT model exists).
* ``length-rl`` — one RL stage of ``long2short.steps`` steps at the recipe's RL lr ``rl.train.lr``
  (r1cli.train.rl.RLStageRunner) from the long model on a copy of the recipe whose reward adds a length
  term: Kimi's group length penalty (default, weight
  ``penalty_weight``) or L1's ``l1_exact`` / ``l1_max`` with a target length (default: half the long model's
  mean length). The DAPO all-correct/all-wrong group filter is switched off for it (all-correct groups carry
  the length signal).

Held-out measurement: a seeded ``measure_rows`` subset of the training rows (default min(256, ¼ of the rows))
is kept out of sampling and training; greedy accuracy and mean response length (tokens) on it are measured
for the long model and for the result. Other settings: response budget = the last RL stage's
``max_response`` (``eval.max_tokens`` when RL is disabled); sampling temperature = the last RL stage's (else
``rl.rollout.temperature``); SFT/DPO batch = ``warmups.sft.batch_size`` rows/pairs, ``long2short.steps`` steps at
``long2short.lr`` (constant); DPO at ``long2short.dpo_lr`` when set (it needs a much lower lr than SFT: at the
SFT lr both log-probs collapse).

Outputs: ``long2short/report.json`` (method, before/after accuracy and length, relative length reduction,
accuracy change, training summary) and ``long2short/model`` (atomic). Intermediate results in
``long2short/work/`` (measure of the long model, samples, derived short model) and RL checkpoints in
``long2short/rl/`` make a rerun resume.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1cli.config import Recipe
from r1cli.long2short.select import Candidate, dpo_pairs, shortest_correct
from r1cli.utils.progress import Progress, log

METHODS = ("merge", "shortest", "dpo", "length-rl")
SHAPINGS = ("kimi", "l1_exact", "l1_max")


@dataclass
class Long2ShortOptions:
    method: str
    short_model: str | None = None
    shaping: str = "kimi"
    penalty_weight: float = 1.0
    target_len: int | None = None
    alpha: float | None = None  # L1 slope; None = the shaping term's default
    measure_rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- helpers


def budget(cfg: Recipe) -> int:
    if cfg.rl.enabled and cfg.rl.stages:
        return int(cfg.rl.stages[-1].max_response)
    return int(cfg.eval.max_tokens)


def sampling_temperature(cfg: Recipe) -> float:
    if cfg.rl.enabled and cfg.rl.stages and cfg.rl.stages[-1].temperature is not None:
        return float(cfg.rl.stages[-1].temperature)
    return float(cfg.rl.rollout.temperature)


def split_rows(n: int, seed: int, measure: int | None = None) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices): a seeded shuffle; the last ``measure`` rows are held out."""
    if n < 2:
        raise ValueError(f"long2short needs at least 2 training rows, got {n}")
    k = measure if measure is not None else min(256, max(1, n // 4))
    k = max(1, min(k, n - 1))
    order = list(range(n))
    random.Random(seed * 1_000_003 + 17).shuffle(order)
    return sorted(order[: n - k]), sorted(order[n - k :])


@dataclass
class Prompts:
    ids: list[list[int]]
    golds: list[dict[str, Any]]


def load_prompts(rows: list[dict[str, Any]], tok: Any, max_prompt: int) -> Prompts:
    from r1cli.data.prepare import gold_of
    from r1cli.data.templates import render_prompt

    return Prompts([render_prompt(tok, r)[-max_prompt:] for r in rows], [gold_of(r) for r in rows])


def _correct(cfg: Recipe, texts: list[str], golds: list[dict[str, Any]], finished: list[bool]) -> list[bool]:
    from r1cli.rewards import score_batch
    from r1cli.rewards.pool import grading_pool

    rc = cfg.rl.reward
    with grading_pool(names={rc.name}, workers=rc.workers, deadline_s=rc.deadline_s) as pool:
        res = score_batch(rc.name, texts, golds, params=dict(rc.params), finished=finished, pool=pool)
    return [bool(r.correct) for r in res]


def _one(dist: Any | None) -> Any:
    """``dist`` or a one-rank Dist (every collective the identity)."""
    from r1cli.engines.dist import Dist

    return dist if dist is not None else Dist()


def _gather_by_index(dist: Any, mine: dict[int, Any], n: int) -> list[Any]:
    """Every rank's ``{index: value}`` shard merged into one list of ``n`` values, on every rank."""
    out: list[Any] = [None] * n
    for part in dist.gather(mine):
        for i, v in part.items():
            out[i] = v
    return out


def measure(
    cfg: Recipe, model: Any, tok: Any, prompts: Prompts, max_tokens: int, dist: Any | None = None
) -> dict[str, float]:
    """Greedy accuracy, mean response length (tokens) and truncation rate on ``prompts``, sampled with the RL
    stages' stop strings (``rl.rollout.stop``). Data-parallel (``dist``): prompt i is decoded by rank i mod world; the
    sums are taken over ranks (same result on all)."""
    from r1cli.engines.hf_rollout import HFRollout
    from r1cli.engines.rollout import SamplingSpec

    d = _one(dist)
    mine = list(range(d.rank, len(prompts.ids), d.world))
    ro = HFRollout(model, tok, max_batch=256, device=_device_of(model))
    spec = SamplingSpec(n=1, temperature=0.0, max_tokens=max_tokens, seed=0, stop=tuple(cfg.rl.rollout.stop))
    samples = [g[0] for g in ro.generate([prompts.ids[i] for i in mine], spec)] if mine else []
    correct = _correct(cfg, [s.text for s in samples], [prompts.golds[i] for i in mine],
                       [s.finished for s in samples]) if mine else []
    acc, length, trunc = d.sum([float(sum(correct)), float(sum(len(s.response_ids) for s in samples)),
                                float(sum(not s.finished for s in samples))])
    n = len(prompts.ids)
    return {"acc": acc / n, "len_mean": length / n, "truncation_rate": trunc / n, "n": float(n)}


def sample_groups(
    cfg: Recipe, model: Any, tok: Any, prompts: Prompts, *, n: int, temperature: float, max_tokens: int,
    dist: Any | None = None,
) -> list[list[Candidate]]:
    """``n`` samples of every prompt (with the RL stages' ``rl.rollout.stop``), scored with ``rl.reward``
    (correctness only). Prompt i is sampled with its own seed (``step_seed(seed, "long2short", i)``), so its
    samples do not depend on the batch it is in nor on the rank count: data-parallel (``dist``), prompt i is
    sampled by rank i mod world and every rank gets all groups."""
    from r1cli.engines.hf_rollout import HFRollout
    from r1cli.engines.rollout import SamplingSpec
    from r1cli.train.rl import step_seed

    d = _one(dist)
    ro = HFRollout(model, tok, max_batch=512, device=_device_of(model))
    mine = list(range(d.rank, len(prompts.ids), d.world))
    got: dict[int, list[Candidate]] = {}
    chunk = max(1, 512 // n)
    spec = SamplingSpec(n=n, temperature=temperature, top_p=cfg.rl.rollout.top_p, top_k=cfg.rl.rollout.top_k,
                        max_tokens=max_tokens, seed=step_seed(cfg.seed, "long2short"), stop=tuple(cfg.rl.rollout.stop))
    with Progress(len(mine), "long2short sampling") as prog:
        for start in range(0, len(mine), chunk):
            ids = mine[start : start + chunk]
            groups = ro.generate([prompts.ids[i] for i in ids], spec,
                                 [step_seed(cfg.seed, "long2short", i) for i in ids])
            flat = [(i, s) for i, g in zip(ids, groups, strict=True) for s in g]
            correct = _correct(
                cfg, [s.text for _, s in flat], [prompts.golds[i] for i, _ in flat], [s.finished for _, s in flat]
            )
            for i in ids:
                got[i] = []
            for (i, s), c in zip(flat, correct, strict=True):
                got[i].append(Candidate(i, tuple(s.response_ids), c, s.finished))
            prog.update(len(ids))
    return _gather_by_index(d, got, len(prompts.ids))


def save_groups(path: Path, groups: list[list[Candidate]]) -> None:
    from r1cli.utils.io import atomic_write_jsonl

    atomic_write_jsonl(
        path,
        (
            {"prompt": c.prompt, "response_ids": list(c.response_ids), "correct": c.correct, "finished": c.finished}
            for g in groups
            for c in g
        ),
    )


def load_groups(path: Path, n_prompts: int) -> list[list[Candidate]]:
    from r1cli.utils.io import read_jsonl

    out: list[list[Candidate]] = [[] for _ in range(n_prompts)]
    for r in read_jsonl(path):
        c = Candidate(int(r["prompt"]), tuple(r["response_ids"]), bool(r["correct"]), bool(r["finished"]))
        out[c.prompt].append(c)
    return out


def _trainer(model: Any, lr: float, steps: int, dist: Any | None = None) -> Any:
    from r1cli.engines.torch_train import TorchTrainer

    return TorchTrainer(model, lr=lr, betas=(0.9, 0.99), grad_clip=1.0, schedule="constant",
                        total_steps=max(1, steps), dist=dist, device=_device_of(model))


def _device_of(model: Any) -> str:
    return str(next(model.parameters()).device)


def _next_batch(order: list[int], n: int, batch_size: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """The next ``batch_size`` indices of an epoch-shuffled stream over ``n`` items: (batch, rest of the stream)."""
    if len(order) < batch_size:
        extra = list(range(n))
        rng.shuffle(extra)
        order = order + extra
    return order[:batch_size], order[batch_size:]


def sft(
    model: Any, examples: list[tuple[list[int], list[int]]], *, pad_id: int, steps: int, lr: float,
    batch_size: int, seed: int, on_step: Callable[[int, dict[str, float]], None] | None = None,
    dist: Any | None = None,
) -> dict[str, float]:
    """NLL on the response tokens of (prompt ids, response ids incl. EOS) examples; epoch-shuffled batches.
    ``on_step(step, metrics)`` gets each step's loss, grad norm and lr (the stage's tracker).

    Data-parallel (``dist``): every rank draws the same batch and trains its rows ``rank::world``; the loss is
    the batch's token mean (token count summed over ranks) and gradients are summed in the trainer's step, so N
    ranks train exactly as one."""
    from r1cli.engines.batch import build_batch

    if not examples:
        raise ValueError("long2short SFT: no examples (no prompt had a correct sample)")
    d = _one(dist)
    tr = _trainer(model, lr, steps, d)
    rng = random.Random(seed)
    order: list[int] = []
    first = last = float("nan")
    with Progress(steps, "long2short sft") as prog:
        for step in range(steps):
            idx, order = _next_batch(order, len(examples), batch_size, rng)
            mine = idx[d.rank :: d.world]
            rows = mine or idx[:1]  # a rank without rows joins the step with a zero-weight row
            b = build_batch([examples[i][0] for i in rows], [examples[i][1] for i in rows], pad_id)
            logp, _ = tr.response_logprobs(b)
            m = b.response_mask * (1.0 if mine else 0.0)
            total = d.sum([float(m.sum())])[0]
            loss = -(logp * m).sum() / max(total, 1.0)
            loss.backward()
            gn = tr.step()
            last = d.sum([float(loss.detach())])[0]
            if step == 0:
                first = last
            if on_step is not None:
                on_step(step, {"sft_loss": last, "grad_norm": float(gn), "lr": float(tr.lr)})
            prog.update(1, info=f"loss {last:.3f}")
    model.eval()
    return {"examples": float(len(examples)), "loss_first": first, "loss_last": last}


def _seq_logps(tr: Any, batch: Any, model: Any | None = None) -> torch.Tensor:
    logp, _ = tr.response_logprobs(batch, model=model)
    return (logp * batch.response_mask).sum(-1)


def dpo(  # noqa: PLR0913 - the DPO settings of one call (keyword-only), plus the ranks
    model: Any, ref: Any, prompts: list[list[int]], pairs: list[tuple[Candidate, Candidate]], *, eos: int,
    pad_id: int, steps: int, lr: float, beta: float, batch_size: int, seed: int,
    on_step: Callable[[int, dict[str, float]], None] | None = None, dist: Any | None = None,
) -> dict[str, float]:
    """DPO (r1cli.algos.dpo_loss) on (chosen, rejected) pairs; responses get EOS appended when they stopped.
    ``on_step(step, metrics)`` gets each step's DPO metrics, grad norm and lr.

    Data-parallel (``dist``): every rank draws the same batch of pairs and trains its pairs ``rank::world``; its
    loss and metrics are weighted by its share of the batch's pairs (summed over ranks: the batch means) and
    gradients are summed in the trainer's step, so N ranks train exactly as one."""
    from r1cli.algos import dpo_loss
    from r1cli.engines.batch import build_batch

    if not pairs:
        raise ValueError("long2short DPO: no preference pairs (no group had a correct and a longer response)")

    def resp(c: Candidate) -> list[int]:
        r = list(c.response_ids)
        return r if (not c.finished or (r and r[-1] == eos)) else [*r, eos]

    d = _one(dist)
    tr = _trainer(model, lr, steps, d)
    ref = ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    rng = random.Random(seed)
    order: list[int] = []
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    with Progress(steps, "long2short dpo") as prog:
        for step in range(steps):
            idx, order = _next_batch(order, len(pairs), batch_size, rng)
            mine = idx[d.rank :: d.world]
            rows = mine or idx[:1]  # a rank without pairs joins the step with a zero-weight pair
            share = len(mine) / len(idx)
            ps = [prompts[pairs[i][0].prompt] for i in rows]
            b = build_batch(ps + ps, [resp(pairs[i][0]) for i in rows] + [resp(pairs[i][1]) for i in rows], pad_id)
            k = len(rows)
            with torch.no_grad():
                ref_lp = _seq_logps(tr, b, model=ref)
            lp = _seq_logps(tr, b)
            loss, m = dpo_loss(
                policy_chosen_logp=lp[:k],
                policy_rejected_logp=lp[k:],
                ref_chosen_logp=ref_lp[:k],
                ref_rejected_logp=ref_lp[k:],
                beta=beta,
            )
            (loss * share).backward()
            gn = tr.step()
            keys = ["loss", *m]
            last = dict(zip(keys, d.sum([share * float(loss.detach()), *(share * m[x] for x in m)]), strict=True))
            if step == 0:
                first = dict(last)
            if on_step is not None:
                on_step(step, {f"dpo_{k}": float(v) for k, v in last.items()} | {"grad_norm": float(gn),
                                                                                 "lr": float(tr.lr)})
            prog.update(1, info=f"loss {last['loss']:.3f} acc {last['reward_accuracy']:.2f}")
    model.eval()
    return {"pairs": float(len(pairs)), **{f"{k}_first": v for k, v in first.items()},
            **{f"{k}_last": v for k, v in last.items()}}


def length_rl_recipe(
    cfg: Recipe, opts: Long2ShortOptions, *, max_tokens: int, temperature: float, before_len: float
) -> Recipe:
    """A copy of the recipe with one RL stage ``long2short`` and the length term added to the reward."""
    from r1cli.config.load import to_dict, validate

    l2s = cfg.long2short
    d = to_dict(cfg)
    if opts.shaping == "kimi":
        term: dict[str, Any] = {"name": "kimi_length", "params": {"weight": opts.penalty_weight}}
    elif opts.shaping in ("l1_exact", "l1_max"):
        target = opts.target_len if opts.target_len is not None else max(1, round(0.5 * before_len))
        params: dict[str, Any] = {"target_len": int(target)}
        if opts.alpha is not None:
            params["alpha"] = opts.alpha
        term = {"name": opts.shaping, "params": params}
    else:
        raise ValueError(f"unknown length shaping {opts.shaping!r} (known: {', '.join(SHAPINGS)})")
    d["rl"]["enabled"] = True
    d["rl"]["reward"]["shaping"] = [*d["rl"]["reward"]["shaping"], term]
    d["rl"]["rollout"]["dynamic_sampling"]["filter"] = None
    d["rl"]["stages"] = [
        {
            "name": "long2short",
            "steps": l2s.steps,
            "max_response": max_tokens,
            "n": l2s.n,
            "lr": cfg.rl.train.lr,
            "temperature": temperature,
        }
    ]
    d["warmups"]["value"]["enabled"] = False
    return validate(d, source="long2short length-rl recipe")


# --------------------------------------------------------------------------------------------- the stage


def run_long2short(
    cfg: Recipe, *, long_model: str, data_path: Path, out_dir: Path, opts: Long2ShortOptions,
    dist: Any | None = None,
) -> dict[str, Any]:
    """Run one long2short method; writes ``<out_dir>/report.json`` then ``<out_dir>/model``. Returns the report.

    Data-parallel over the launcher's ranks (``dist``, default from the environment): sampling and the greedy
    measures are sharded by prompt (per-prompt seeds: the same samples on any number of ranks), the SFT / DPO /
    length-RL updates split each batch over the ranks with global denominators, so N ranks give one rank's
    result. Rank 0 writes every file; the others wait for it where they read what it wrote."""
    from r1cli.engines.dist import Dist
    from r1cli.utils.tracking import StageLogger

    if opts.method not in METHODS:
        raise ValueError(f"unknown long2short method {opts.method!r} (known: {', '.join(METHODS)})")
    dist = dist if dist is not None else Dist.from_env()
    # per-step SFT/DPO metrics and the before/after table (length-rl's RL steps log as RUN/long2short/rl)
    with StageLogger.for_recipe(cfg, metrics_path=out_dir / "metrics.jsonl", resume_step=0,
                                enabled=dist.is_main) as tracker:
        return _run_long2short(cfg, long_model=long_model, data_path=data_path, out_dir=out_dir, opts=opts,
                               tracker=tracker, dist=dist)


class _Long2Short:
    """One long2short run's shared state (tokenizer, data split, budgets, the long model's "before" numbers)
    and one method per technique (:data:`METHODS`), each writing the short model into ``result_dir`` and
    returning its training summary."""

    def __init__(self, cfg: Recipe, *, long_model: str, data_path: Path, out_dir: Path, opts: Long2ShortOptions,
                 tracker: Any, dist: Any) -> None:
        from r1cli.engines.hf_rollout import load_tokenizer
        from r1cli.utils.io import atomic_write_json, read_parquet

        self.cfg, self.long_model, self.out_dir, self.opts, self.tracker = cfg, long_model, out_dir, opts, tracker
        self.dist = dist
        self.device = dist.device  # the rank's GPU when there are GPUs, else the CPU
        self.l2s = cfg.long2short
        torch.manual_seed(cfg.seed)
        self.work = out_dir / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.tok = load_tokenizer(long_model)
        self.rows = read_parquet(data_path)
        if not self.rows:
            raise ValueError(f"{data_path}: no training rows")
        self.train_idx, self.held_idx = split_rows(len(self.rows), cfg.seed, opts.measure_rows)
        max_prompt = cfg.rl.rollout.max_prompt
        self.held = load_prompts([self.rows[i] for i in self.held_idx], self.tok, max_prompt)
        self.train = load_prompts([self.rows[i] for i in self.train_idx], self.tok, max_prompt)
        self.max_tokens = budget(cfg)
        self.temperature = sampling_temperature(cfg)
        key = {"method": opts.method, "model": str(long_model), "max_tokens": self.max_tokens,
               "held": len(self.held_idx)}
        before_path = self.work / "before.json"
        before: dict[str, Any] | None = None
        if before_path.exists() and dist.is_main:
            saved = json.loads(before_path.read_text())
            if saved.get("key", {}).get("model") == key["model"] and saved["key"].get("max_tokens") == self.max_tokens:
                before = saved["metrics"]
        before = dist.broadcast(before)  # rank 0 decides: every rank measures, or none
        if before is None:
            before = measure(cfg, self.load(long_model).eval(), self.tok, self.held,
                             self.max_tokens, dist)
            if dist.is_main:
                atomic_write_json(before_path, {"key": key, "metrics": before})
        self.before = before
        log(f"long2short: long model acc {100 * before['acc']:.1f} %, mean length {before['len_mean']:.1f} tokens")
        self.sample_key = {"model": str(long_model), "n": self.l2s.n, "temperature": self.temperature,
                           "max_tokens": self.max_tokens, "train_rows": len(self.train_idx), "seed": cfg.seed,
                           "seeds": "per-prompt"}

    def load(self, path: str) -> Any:
        """A model (float32) on this rank's device."""
        from r1cli.engines.hf_rollout import load_model

        return load_model(path, dtype="float32", device=self.device)

    def run(self, result_dir: Path) -> dict[str, Any]:
        methods = {"shortest": self.shortest, "merge": self.merge, "dpo": self.dpo, "length-rl": self.length_rl}
        return methods[self.opts.method](result_dir)

    def samples(self) -> list[list[Candidate]]:
        """The long model's sampled groups on the training prompts (cached in the work dir by their settings)."""
        from r1cli.utils.io import atomic_write_json

        path, meta = self.work / "samples.jsonl", self.work / "samples.json"
        d = self.dist
        cached = d.is_main and path.exists() and meta.exists() and json.loads(meta.read_text()) == self.sample_key
        if d.broadcast(cached):  # rank 0 decides; its file is complete (written atomically before samples.json)
            return load_groups(path, len(self.train.ids))
        g = sample_groups(self.cfg, self.load(self.long_model), self.tok, self.train,
                          n=self.l2s.n, temperature=self.temperature, max_tokens=self.max_tokens, dist=d)
        if d.is_main:
            save_groups(path, g)
            atomic_write_json(meta, self.sample_key)
        d.barrier()
        return g

    def _save(self, model: Any, out: Path) -> None:
        from r1cli.utils.io import atomic_dir

        if self.dist.is_main:
            with atomic_dir(out) as tmp:
                model.save_pretrained(tmp)
                self.tok.save_pretrained(tmp)
        self.dist.barrier()

    def shortest(self, out: Path) -> dict[str, Any]:
        """Shortest-correct rejection sampling + SFT."""

        groups = self.samples()
        picks = [c for c in (shortest_correct(g) for g in groups) if c is not None]
        eos = self.tok.eos_token_id
        examples = [
            (self.train.ids[c.prompt],
             list(c.response_ids) if c.response_ids[-1:] == (eos,) else [*c.response_ids, eos])
            for c in picks
        ]
        model = self.load(self.long_model)
        info = sft(model, examples, pad_id=self.tok.pad_token_id, steps=self.l2s.steps, lr=self.l2s.lr,
                   batch_size=self.cfg.warmups.sft.batch_size, seed=self.cfg.seed, on_step=self.tracker.log,
                   dist=self.dist)
        info["selected_len_mean"] = sum(c.length for c in picks) / max(1, len(picks))
        info["sampled_len_mean"] = sum(c.length for g in groups for c in g) / max(1, sum(len(g) for g in groups))
        info["prompts_with_correct"] = float(len(picks))
        self._save(model, out)
        return info

    def merge(self, out: Path) -> dict[str, Any]:
        """Weight merging of the long model with a short one (given, or derived by shortest-correct SFT)."""
        from r1cli.long2short.merge import merge_models
        from r1cli.utils.io import atomic_write_json

        training: dict[str, Any] = {}
        short = self.opts.short_model
        if short is None:
            short_dir, short_meta = self.work / "short-model", self.work / "short-model.json"
            short_key = {**self.sample_key, "steps": self.l2s.steps, "lr": self.l2s.lr}
            fresh = short_meta.exists() and json.loads(short_meta.read_text()).get("key") == short_key
            if self.dist.broadcast((short_dir / "config.json").exists() and fresh):  # rank 0 decides
                training["short_model_sft"] = json.loads(short_meta.read_text())["info"]
            else:
                training["short_model_sft"] = self.shortest(short_dir)
                if self.dist.is_main:
                    atomic_write_json(short_meta, {"key": short_key, "info": training["short_model_sft"]})
            short = str(short_dir)
            training["short_model"] = "derived: shortest-correct rejection-sampling SFT of the long model"
        else:
            training["short_model"] = short
        training["short_model_measure"] = measure(
            self.cfg, self.load(short).eval(), self.tok, self.held, self.max_tokens, self.dist
        )
        if self.dist.is_main:
            merge_models(self.long_model, short, out, alpha=self.l2s.merge_alpha)
        self.dist.barrier()
        training["merge_alpha"] = self.l2s.merge_alpha
        return training

    def dpo(self, out: Path) -> dict[str, Any]:
        """DPO with the shortest correct sample as chosen and a longer one as rejected."""

        l2s = self.l2s
        pairs = [p for g in self.samples() for p in dpo_pairs(g)]
        model = self.load(self.long_model)
        ref = self.load(self.long_model)
        training = dpo(model, ref, self.train.ids, pairs, eos=self.tok.eos_token_id, pad_id=self.tok.pad_token_id,
                       steps=l2s.steps, lr=l2s.dpo_lr if l2s.dpo_lr is not None else l2s.lr, beta=l2s.beta,
                       batch_size=self.cfg.warmups.sft.batch_size, seed=self.cfg.seed, on_step=self.tracker.log,
                       dist=self.dist)
        self._save(model, out)
        return training

    def length_rl(self, out: Path) -> dict[str, Any]:
        """RL with a length penalty (Kimi k1.5 / L1), through the RL stage itself."""
        from r1cli.train.rl import RLStageRunner
        from r1cli.utils.io import atomic_write_json, write_parquet

        rcfg = length_rl_recipe(self.cfg, self.opts, max_tokens=self.max_tokens, temperature=self.temperature,
                                before_len=self.before["len_mean"])
        train_path = self.work / "train.parquet"
        stage_dir = self.out_dir / "rl"
        rl_key = {"model": str(self.long_model), "stage": rcfg.rl.stages[0].model_dump(),
                  "reward": rcfg.rl.reward.model_dump(), "train_rows": len(self.train_idx)}
        key_path = stage_dir / "key.json"
        if self.dist.is_main:
            write_parquet(train_path, [self.rows[i] for i in self.train_idx])
            if stage_dir.exists() and (not key_path.exists() or json.loads(key_path.read_text()) != rl_key):
                import shutil

                log(f"long2short: settings changed, discarding the old RL checkpoints in {stage_dir}")
                shutil.rmtree(stage_dir)
            atomic_write_json(key_path, rl_key)
        self.dist.barrier()
        runner = RLStageRunner(rcfg, rcfg.rl.stages[0], data_path=train_path, init_model=self.long_model,
                               stage_dir=stage_dir, dist=self.dist)
        last = runner.run()
        runner.trainer.export(out, runner.tok)
        return {"shaping": rcfg.rl.reward.shaping[-1].model_dump(), "steps": rcfg.rl.stages[0].steps,
                "last": {k: v for k, v in last.items() if isinstance(v, int | float)}}


def _run_long2short(
    cfg: Recipe, *, long_model: str, data_path: Path, out_dir: Path, opts: Long2ShortOptions, tracker: Any,
    dist: Any,
) -> dict[str, Any]:
    from r1cli.utils.io import atomic_dir, atomic_write_json

    job = _Long2Short(cfg, long_model=long_model, data_path=data_path, out_dir=out_dir, opts=opts, tracker=tracker,
                      dist=dist)
    l2s, tok, held, max_tokens, before = job.l2s, job.tok, job.held, job.max_tokens, job.before
    held_idx, train_idx = job.held_idx, job.train_idx
    result_dir = job.work / "result"
    training = job.run(result_dir)

    after = measure(cfg, job.load(str(result_dir)).eval(), tok, held, max_tokens, dist)
    report = {
        "method": opts.method,
        "long_model": str(long_model),
        "held_out_rows": len(held_idx),
        "train_rows": len(train_idx),
        "max_tokens": max_tokens,
        "before": before,
        "after": after,
        "length_reduction": 1.0 - after["len_mean"] / before["len_mean"] if before["len_mean"] else 0.0,
        "acc_change": after["acc"] - before["acc"],
        "training": training,
    }
    if dist.is_main:
        atomic_write_json(out_dir / "report.json", report)
        tracker.log_table("long2short", [{"model": "long (before)", **before},
                                         {"model": f"{opts.method} (after)", **after}])
        tracker.log(max(0, l2s.steps), {"before_acc": before["acc"], "after_acc": after["acc"],
                                        "before_len_mean": before["len_mean"], "after_len_mean": after["len_mean"],
                                        "length_reduction": report["length_reduction"]})
        with atomic_dir(out_dir / "model") as tmp:
            for p in result_dir.iterdir():
                if p.is_file():
                    (tmp / p.name).write_bytes(p.read_bytes())
    dist.barrier()
    log(
        f"long2short {opts.method}: acc {100 * before['acc']:.1f} % → {100 * after['acc']:.1f} %, mean length "
        f"{before['len_mean']:.1f} → {after['len_mean']:.1f} ({100 * report['length_reduction']:.1f} % shorter)"
    )
    return report
