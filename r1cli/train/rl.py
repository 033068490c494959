"""One RL stage (``r1 train rl --stage K``), SPMD over the ranks of its job; the step reads like the paper:

prompts  = loader.next(P)                            # the same global draw on every rank
groups   = sampler.generate(my shard, n, seeds)      # a prompt's group stays on one rank, seeded by its position
scores   = rewards.score(groups)                     # grading pool, hard per-item deadline
groups   = filters.apply(groups, scores)             # DAPO / PRIME band / OREAL pairs; refill until P groups kept
                                                     #   over all ranks (kept-group lists all-gathered)
old, ref = trainer.logprobs(batch)                   # policy before the update, frozen reference
adv      = ADVANTAGES[name](global batch)            # batch statistics over all ranks (inputs all-gathered)
for epoch x mini-batch (global groups) x micro-batch (equal count on every rank):
    loss = aggregate(policy_loss + KL - entropy, global denominators) ; backward
    trainer.step()                                   # gradients summed over ranks (DDP-style / DeepSpeed ZeRO)
trainer.schedule_step()                              # lr schedule once per RL step
sampler.sync(trainer)                                # vLLM: weights streamed in, prefix cache reset
log global metrics; checkpoint atomically every k steps (rank 0 writes, every rank's RNG included)

N ranks with a global batch of P prompts give the same metrics and weights as one rank with P prompts
(tests/train/test_rl_dp.py).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1cli.config import Recipe
from r1cli.config.rundir import RunDir
from r1cli.config.schema import RLStage
from r1cli.engines.batch import TokenBatch
from r1cli.train.prompts import PrioritizedLoader, PromptLoader, step_seed
from r1cli.train.scoring import RunningMoments, normalize_rewards, score, shaping_token_rewards
from r1cli.utils.progress import Progress, log

__all__ = [
    "Experience",
    "PrioritizedLoader",
    "PromptLoader",
    "RLStageRunner",
    "RunningMoments",
    "normalize_rewards",
    "run_rl_stage",
    "shaping_token_rewards",
    "step_seed",
]

GroupId = tuple[int, int, int]  # (step, refill round, position of the prompt in the round's global draw)


@dataclass
class Experience:
    """One RL step's kept rollouts held by this rank (one entry per sample, rows in global order).

    ``order[i]`` is row i's index in the step's global batch (all ranks, ``global_rows`` rows: the batch one
    rank would hold); ``group_order`` lists every kept group of the step in global order (mini-batches are
    slices of it). ``pre_adv``: per-sample advantages fixed before the filter (OREAL), else None."""

    rows: list[int] = field(default_factory=list)  # dataset row of each sample
    group: list[GroupId] = field(default_factory=list)
    prompt_ids: list[list[int]] = field(default_factory=list)
    response_ids: list[list[int]] = field(default_factory=list)
    sampler_logprobs: list[list[float]] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    pre_adv: list[float] | None = None
    order: list[int] = field(default_factory=list)
    global_rows: int = 0
    group_order: list[GroupId] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)



@dataclass
class StepBatch:
    """The padded tensors of an Experience. Shapes: B local rows (at least 1: a rank with no rollouts holds one
    all-masked placeholder row, so it still joins every collective), R response width."""

    batch: TokenBatch
    mask: torch.Tensor  # (B, R) 1 on response tokens
    rewards: torch.Tensor  # (B,)
    sampler_lp: torch.Tensor  # (B, R) sampler's log-probs of the sampled tokens
    row_len: list[int]  # real tokens per row (prompt + response)
    real: int  # rows that are rollouts (the rest is the placeholder)

    @property
    def width(self) -> int:
        return int(self.mask.size(1))


@dataclass
class LogProbs:
    """No-grad log-probs (B, R) of the step's tokens: ``old`` (policy before the update; None when the first
    mini-batch's own forward is the old policy) and ``ref`` (frozen reference; None without KL)."""

    old: torch.Tensor | None
    ref: torch.Tensor | None


class MetricSums:
    """Token-weighted metric sums of the micro-batches of a step; :meth:`means` sums them over ranks, so a
    metric is its mean over the global batch's tokens however the batch was split."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, key: str, value: float, weight: float) -> None:
        s = self.sums.setdefault(key, [0.0, 0.0])
        s[0] += value * weight
        s[1] += weight

    def means(self, dist: Any) -> dict[str, float]:
        keys = sorted(set().union(*dist.gather(sorted(self.sums))))
        flat = [x for k in keys for x in self.sums.get(k, [0.0, 0.0])]
        tot = dist.sum(flat)
        return {k: tot[2 * i] / tot[2 * i + 1] for i, k in enumerate(keys) if tot[2 * i + 1] > 0}


class RLStageRunner:
    def __init__(
        self, cfg: Recipe, stage: RLStage, *, data_path: Path, init_model: str, stage_dir: Path,
        dist: Any | None = None,
    ) -> None:
        from r1cli.algos import ADVANTAGE_TRAITS
        from r1cli.engines.dist import Dist
        from r1cli.engines.factory import make_sampler, make_trainer
        from r1cli.engines.hf_rollout import load_model, load_tokenizer

        self.cfg, self.stage, self.stage_dir = cfg, stage, stage_dir
        self.dist = dist if dist is not None else Dist()
        #: what the stage's checkpoints were made from (their fingerprint: a changed input starts the stage fresh)
        self.inputs: list[str | Path] = [data_path, init_model]
        if cfg.warmups.value.enabled and cfg.rl.stages and stage.name == cfg.rl.stages[0].name:
            self.inputs.append(RunDir(stage_dir.parents[1]).warmup("value") / "model")
        rl = cfg.rl
        alg = rl.algorithm
        torch.manual_seed(cfg.seed)
        self.tok = load_tokenizer(init_model)
        model = load_model(init_model, dtype="float32" if rl.train.dtype == "float32" else "bfloat16")
        self.P = stage.prompts_per_step or rl.rollout.prompts_per_step
        # the frozen KL reference is copied before the trainer exists (ZeRO-3 partitions the model in place)
        ref_copy = copy.deepcopy(model) if alg.kl.coef > 0 else None
        zero3 = rl.train.backend == "deepspeed" and rl.train.zero_stage == 3
        sampler_copy = copy.deepcopy(model) if zero3 and rl.rollout.backend == "hf" else None
        self.trainer = make_trainer(rl.train, model, lr=stage.lr or rl.train.lr, total_steps=stage.steps,
                                    end_lr=stage.lr_end, dist=self.dist)
        self.ref = self.trainer.make_reference(ref_copy) if ref_copy is not None else None
        self.sampler = make_sampler(rl.rollout, self.trainer, self.tok, model_path=init_model,
                                    max_model_len=min(rl.rollout.max_prompt + stage.max_response, getattr(
                                        model.config, "max_position_embeddings", None) or 1 << 30),
                                    seed=step_seed(cfg.seed, stage.name, "sampler"), world=self.dist.world,
                                    dtype=rl.train.dtype, model_copy=sampler_copy)
        self.rollout = self.sampler.engine
        traits = ADVANTAGE_TRAITS[alg.advantage]
        self.critic = None
        if traits.critic:  # PPO critic (gae / vapo_gae)
            from r1cli.train.critic import make_critic

            self.critic = make_critic(cfg, init_model=init_model, stage=stage, stage_dir=stage_dir, dist=self.dist)
        self.prm = None
        if traits.prm or cfg.warmups.prm.enabled:  # PRIME's implicit PRM / OREAL's token-level RM
            if self.dist.world > 1:
                raise ValueError(
                    f"{'rl.algorithm.advantage=prime' if traits.prm else 'warmups.prm.enabled'}: the process "
                    f"reward model is not data-parallel yet; run this stage on one rank (this job has "
                    f"{self.dist.world}: set the stage's resources.gpus / procs to 1)"
                )
            from r1cli.train.prm import make_prm

            self.prm = make_prm(cfg, init_model=init_model, stage=stage, stage_dir=stage_dir)
        self._load_data(data_path)
        self.reward_moments = RunningMoments() if rl.reward.normalize == "running" else None
        self.temperature = stage.temperature if stage.temperature is not None else rl.rollout.temperature
        self.entropy_ctl = None
        if alg.adaptive_entropy.enabled:
            from r1cli.algos import AdaptiveEntropyCoef

            ae = alg.adaptive_entropy
            self.entropy_ctl = AdaptiveEntropyCoef(init=ae.init, target=ae.target, delta=ae.delta, max=ae.max)
        self.pool = None
        self.mrt = None
        self.adv_params = dict(alg.advantage_params)
        if traits.progress:  # MRT's meta-prover
            from r1cli.train.mrt import MRTProgress

            seg, self.adv_params = MRTProgress.split_params(dict(alg.advantage_params))
            self.mrt = MRTProgress(
                self.tok, self.rollout, self._correct_of, seg, self.temperature, step_seed(cfg.seed, stage.name, "mrt")
            )
        #: skip the forward/backward of samples whose advantage is 0 everywhere where that is exact (update())
        self.skip_zero_adv = True
        self.metrics_path = stage_dir / "metrics.jsonl"
        self.traj_path = stage_dir / "trajectories.jsonl"

    def _load_data(self, data_path: Path) -> None:
        from r1cli.data.prepare import gold_of
        from r1cli.data.templates import render_prompt
        from r1cli.utils.io import read_parquet

        rl, st = self.cfg.rl, self.stage
        rows = read_parquet(data_path)
        if not rows:
            raise ValueError(f"{data_path}: no training rows")
        self.rows = rows
        self.prompt_ids = [render_prompt(self.tok, r) for r in rows]
        self.golds = [gold_of(r) for r in rows]
        too_long = sum(len(p) > rl.rollout.max_prompt for p in self.prompt_ids)
        if too_long:
            log(f"warning: {too_long} prompts exceed rollout.max_prompt={rl.rollout.max_prompt} and are "
                "truncated from the left")
            self.prompt_ids = [p[-rl.rollout.max_prompt :] for p in self.prompt_ids]
        pri = rl.rollout.prioritized
        self.loader: PromptLoader | PrioritizedLoader
        if pri.enabled:
            self.loader = PrioritizedLoader(len(rows), step_seed(self.cfg.seed, st.name), [
                _pass_rate_prior(g, pri.prior) for g in self.golds], floor=pri.floor)
        else:
            self.loader = PromptLoader(len(rows), step_seed(self.cfg.seed, st.name))

    def _correct_of(self, texts: list[str], rows: list[int], finished: list[bool]) -> list[bool]:
        """Grade extra texts (MRT's forced answers) with the recipe's reward; correctness flags."""
        golds = [self.golds[r] for r in rows]
        lens = [len(t) for t in texts]
        _, correct = score(self.cfg, texts, golds, finished, lens, list(range(len(texts))), self.pool)
        return correct

    def reset_reference(self) -> None:
        """Copy the current policy into the frozen KL reference (DeepSeek-R1-Zero, Guo et al. 2025, Methods:
        the reference is replaced by the latest policy every 400 policy updates)."""
        from r1cli.engines.weights import copy_weights_into

        if self.ref is not None:
            copy_weights_into(self.ref, self.trainer.named_weights())

    def reference_state(self) -> dict[str, torch.Tensor]:
        """The reference weights (checkpointed when the reference is reset during a stage)."""
        from r1cli.engines.weights import gathered_state_dict

        assert self.ref is not None
        return gathered_state_dict(self.ref)

    def load_reference_state(self, state: dict[str, torch.Tensor]) -> None:
        from r1cli.engines.weights import copy_weights_into

        assert self.ref is not None
        copy_weights_into(self.ref, state.items(), strict=False)

    # --- rollout + reward + dynamic sampling -------------------------------------------------------------------
    def collect(self, step: int) -> tuple[Experience, dict[str, float]]:
        """Sample, grade and filter until ``P`` groups are kept over all ranks (module docstring)."""
        from r1cli.engines.rollout import SamplingSpec

        rl, st, d = self.cfg.rl, self.stage, self.dist
        ds = rl.rollout.dynamic_sampling
        spec = SamplingSpec(n=st.n, temperature=self.temperature, top_p=rl.rollout.top_p, top_k=rl.rollout.top_k,
                            max_tokens=st.max_response, stop=tuple(rl.rollout.stop))
        tp = rl.rollout.tensor_parallel if self.sampler.backend == "vllm" else 1
        shard, shards = d.rank // tp, d.world // tp  # ranks of one tensor-parallel engine sample the same shard
        exp, kept_order = Experience(), []
        acc = {"t_gen": 0.0, "t_rew": 0.0, "tokens": 0.0, "groups": 0.0, "dropped": 0.0}
        round0: list[float] = []
        rnd = 0
        for rnd in range(ds.max_rounds if ds.filter else 1):
            need = self.P - len(kept_order)
            if need <= 0:
                break
            ask = max(need, math.ceil(need * ds.oversample)) if rnd == 0 else need
            idx = self.loader.next(ask)
            epochs = list(self.loader.last_epochs)
            mine = list(range(shard, len(idx), shards))
            t0 = time.time()
            groups = self.sampler.generate([self.prompt_ids[idx[g]] for g in mine], spec,
                                           [step_seed(self.cfg.seed, st.name, step, rnd, g) for g in mine])
            acc["t_gen"] += time.time() - t0
            t0 = time.time()
            res = self._grade_round(step, rnd, idx, epochs, mine, groups)
            acc["t_rew"] += time.time() - t0
            count_here = d.rank % tp == 0  # tensor-parallel peers hold copies: count each sample once
            acc["tokens"] += sum(res["lens"]) if count_here else 0
            if rnd == 0:
                round0 = _round_stats(res, count_here)
            # the first `need` kept groups of this round over all ranks, in global order
            kept_all = sorted(set().union(*d.gather(res["kept"])))
            take = set(kept_all[:need])
            acc["groups"] += len(idx)
            acc["dropped"] += len(idx) - len(kept_all)
            kept_order += [(step, rnd, g) for g in sorted(take)]
            self._append_kept(exp, res, take, tp)
        self._place_global(exp, kept_order)
        return exp, self._collect_metrics(acc, round0, len(kept_order), rnd)

    def _grade_round(self, step: int, rnd: int, idx: list[int], epochs: list[int], mine: list[int],
                     groups: list[list[Any]]) -> dict[str, Any]:
        """Grade this rank's groups of a round, log their trajectories, apply the filter; group ids are
        (step, round, position in the round's draw)."""
        from r1cli.algos import ADVANTAGES, FILTER_TRAITS, FILTERS

        ds = self.cfg.rl.rollout.dynamic_sampling
        flat = [(g, s) for g, grp in zip(mine, groups, strict=True) for s in grp]
        gids: list[GroupId] = [(step, rnd, g) for g, _ in flat]
        texts = [s.text for _, s in flat]
        fin = [s.finished for _, s in flat]
        lens = [len(s.response_ids) for _, s in flat]
        scores, correct = score(self.cfg, texts, [self.golds[idx[g]] for g, _ in flat], fin, lens, gids,
                                self.pool, step)
        traj = []
        for g in mine:
            js = [j for j, (gg, _) in enumerate(flat) if gg == g]
            traj.append({"step": step, "epoch": epochs[g], "id": self.rows[idx[g]]["id"], "row": idx[g], "g": g,
                         "n": len(js), "correct": sum(correct[j] for j in js),
                         "reward_mean": sum(scores[j] for j in js) / max(1, len(js))})
        self._log_trajectories(traj)
        pre_adv = None
        if ds.filter and FILTER_TRAITS[ds.filter].advantage_before_filter and flat:
            # OREAL: the estimator sees the whole group (e.g. RLOO over all k samples), the filter keeps a pair
            alg = self.cfg.rl.algorithm
            out = ADVANTAGES[alg.advantage](rewards=torch.tensor(scores), mask=torch.ones(len(flat), 1),
                                            index=gids, **self.adv_params)
            pre_adv = out.advantages[:, 0].tolist()
        keep = (FILTERS[ds.filter](scores=torch.tensor(scores), correct=correct, index=gids, **ds.params)
                if ds.filter else [True] * len(flat))
        return {"flat": flat, "gids": gids, "texts": texts, "fin": fin, "lens": lens, "scores": scores,
                "correct": correct, "keep": keep, "pre_adv": pre_adv, "idx": idx,
                "kept": sorted({gids[j][2] for j in range(len(flat)) if keep[j]})}

    def _log_trajectories(self, traj: list[dict[str, Any]]) -> None:
        """Every rank's group records (LIMR's trajectories, Kimi's success rates): prioritised sampling
        observes them on every rank; rank 0 appends them to trajectories.jsonl in draw order."""
        from r1cli.utils.io import append_jsonl

        everything = sorted({t["g"]: t for part in self.dist.gather(traj) for t in part}.values(),
                            key=lambda t: t["g"])
        for t in everything:
            if isinstance(self.loader, PrioritizedLoader) and t["n"]:
                self.loader.observe(t["row"], t["correct"] / t["n"])
            if self.dist.is_main:
                append_jsonl(self.traj_path, {k: v for k, v in t.items() if k not in ("row", "g")})

    def _append_kept(self, exp: Experience, res: dict[str, Any], take: set[int], tp: int) -> None:
        """Add this rank's samples of the taken groups to ``exp`` (tensor-parallel peers split their shard's
        groups between them for training)."""
        mine_taken = sorted({gid[2] for gid in res["gids"] if gid[2] in take})
        train_here = set(mine_taken[self.dist.rank % tp :: tp])
        for j, (g, s) in enumerate(res["flat"]):
            if not res["keep"][j] or g not in train_here:
                continue
            exp.rows.append(res["idx"][g])
            exp.group.append(res["gids"][j])
            exp.prompt_ids.append(s.prompt_ids)
            exp.response_ids.append(s.response_ids)
            exp.sampler_logprobs.append(s.logprobs)
            exp.finished.append(s.finished)
            exp.texts.append(res["texts"][j])
            exp.scores.append(res["scores"][j])
            exp.correct.append(res["correct"][j])
            if res["pre_adv"] is not None:
                exp.pre_adv = (exp.pre_adv or []) + [res["pre_adv"][j]]

    def _place_global(self, exp: Experience, kept_order: list[GroupId]) -> None:
        """Global row order: groups in (round, position) order, a group's kept samples in sampling order."""
        counts: dict[GroupId, int] = {}
        for part in self.dist.gather(list(exp.group)):
            for g in part:
                counts[g] = counts.get(g, 0) + 1
        offset, start = 0, {}
        for g in kept_order:
            start[g] = offset
            offset += counts.get(g, 0)
        seen: dict[GroupId, int] = {}
        for g in exp.group:
            exp.order.append(start[g] + seen.get(g, 0))
            seen[g] = seen.get(g, 0) + 1
        exp.global_rows, exp.group_order = offset, list(kept_order)

    def _collect_metrics(self, acc: dict[str, float], round0: list[float], kept: int, rnd: int) -> dict[str, float]:
        d = self.dist
        n, rew, cor, ln, trunc = d.sum(round0[:5])
        t_gen, t_rew, len_max = d.max([acc["t_gen"], acc["t_rew"], round0[5]])
        tokens = d.sum([acc["tokens"]])[0]
        return {
            "reward_mean": rew / max(1.0, n),
            "acc": cor / max(1.0, n),
            "response_len_mean": ln / max(1.0, n),
            "response_len_max": len_max,
            "truncation_rate": trunc / max(1.0, n),
            "filtered_group_frac": acc["dropped"] / max(1.0, acc["groups"]),
            "groups_kept": float(kept),
            "gen_rounds": float(rnd + 1),
            "t_generate": t_gen,
            "t_reward": t_rew,
            "gen_tokens_per_s": tokens / max(t_gen, 1e-9),
        }

    # --- update --------------------------------------------------------------------------------------------
    def update(self, ro: Experience, step: int = 0) -> dict[str, float]:
        """Log-probs → token rewards → advantages (global) → policy mini-batches → critic / PRM → metrics."""
        if not ro.global_rows:
            return {"skipped": 1.0}
        t0 = time.time()
        sb = self._step_batch(ro)
        lp = self._logprobs(sb)
        token_rewards, m = self._token_rewards(ro, sb, lp, step)
        adv_out, extra_m = self._advantages(ro, sb, token_rewards, lp, step)
        m.update(extra_m)
        t_lp = time.time() - t0
        t0 = time.time()
        m.update(self._policy_update(ro, sb, lp, adv_out.advantages, step))
        m.update(self._aux_updates(ro, sb, adv_out, lp))
        m.update(self._update_metrics(sb, adv_out.advantages, lp, t_lp, time.time() - t0))
        return m

    def _step_batch(self, ro: Experience) -> StepBatch:
        from r1cli.engines.batch import build_batch

        real = len(ro)
        prompts = ro.prompt_ids if real else [self.prompt_ids[0]]
        responses = ro.response_ids if real else [[self.tok.pad_token_id]]
        batch = build_batch(prompts, responses, self.tok.pad_token_id)
        if not real:  # placeholder row: joins the collectives, counts nowhere
            batch.response_mask.zero_()
        mask = batch.response_mask
        sampler_lp = torch.zeros_like(mask)
        for i, lps in enumerate(ro.sampler_logprobs):
            sampler_lp[i, : len(lps)] = torch.tensor(lps[: mask.size(1)])
        rewards = torch.tensor(ro.scores if real else [0.0], dtype=torch.float32)
        return StepBatch(batch, mask, rewards, sampler_lp, batch.attention_mask.sum(1).tolist(), real)

    def _micro_batches(self, sb: StepBatch, rows: list[int]) -> list[list[int]]:
        """Length-sorted micro-batches of ``rows``; every rank gets the same count (ZeRO-3 gathers parameters in
        each forward, a collective): a rank with fewer pads with zero-weight copies of its first row (``[]``)."""
        from r1cli.engines.batch import length_sorted_micro_batches

        tr = self.cfg.rl.train
        mbs = [[rows[k] for k in pos] for pos in length_sorted_micro_batches(
            [sb.row_len[i] for i in rows], max(1, tr.micro_batch_size), tr.token_budget)]
        n = int(self.dist.max([len(mbs)])[0])
        return mbs + [[] for _ in range(n - len(mbs))]

    def _forward(self, sb: StepBatch, rows: list[int], *, model: Any = None,
                 with_entropy: bool = False) -> tuple[list[int], int, torch.Tensor, torch.Tensor | None]:
        """Log-probs of ``rows`` (``[]``: the padding micro-batch, row 0) trimmed to their own padding."""
        r = rows or [0]
        mb, rw = sb.batch.select_trimmed(r)
        kw = {} if model is None else {"model": model}
        logp, ent = self.trainer.response_logprobs(mb, self.temperature, with_entropy=with_entropy, **kw)
        return r, rw, logp, ent

    def _logprobs(self, sb: StepBatch) -> LogProbs:
        alg, tr = self.cfg.rl.algorithm, self.cfg.rl.train
        need_old = alg.ppo_epochs > 1 or (tr.mini_batch_prompts is not None and tr.mini_batch_prompts < self.P)

        def all_rows(model: Any = None) -> torch.Tensor:
            out = torch.zeros_like(sb.mask)
            with torch.no_grad():
                for rows in self._micro_batches(sb, list(range(len(sb.row_len)))):
                    r, rw, logp, _ = self._forward(sb, rows, model=model)
                    if rows:
                        out[r, :rw] = logp.float().cpu()
            return out

        return LogProbs(all_rows() if need_old else None, all_rows(self.ref) if self.ref is not None else None)

    def _token_rewards(self, ro: Experience, sb: StepBatch, lp: LogProbs,
                       step: int) -> tuple[torch.Tensor | None, dict[str, float]]:
        """Per-token rewards: the KL penalty when ``kl.use == reward`` and the recipe's token-level shaping."""
        from r1cli.algos import KL

        alg = self.cfg.rl.algorithm
        token_rewards = None
        if alg.kl.use == "reward" and lp.ref is not None and alg.kl.coef > 0:
            base = lp.old if lp.old is not None else sb.sampler_lp
            token_rewards = -alg.kl.coef * KL[alg.kl.type](base, lp.ref) * sb.mask
        metrics: dict[str, float] = {}
        shaped = shaping_token_rewards(ro.response_ids, list(self.cfg.rl.reward.shaping), step, sb.width,
                                       float(self.adv_params.get("gamma", 1.0)))
        if shaped is not None:
            shaped = torch.cat([shaped, torch.zeros(len(sb.row_len) - shaped.size(0), sb.width)]) * sb.mask
            n, tot = self.dist.sum([float(sb.real), float(shaped.sum())])
            metrics["token_shaping_mean"] = tot / max(1.0, n)
            token_rewards = shaped if token_rewards is None else token_rewards + shaped
        return token_rewards, metrics

    def _advantages(self, ro: Experience, sb: StepBatch, token_rewards: torch.Tensor | None, lp: LogProbs,
                    step: int) -> tuple[Any, dict[str, float]]:
        """The estimator over the step's global batch: its inputs are all-gathered (rows placed by their global
        index), so batch statistics (whitening, batch/running reward normalisation) are the whole batch's."""
        from r1cli.algos import ADVANTAGES, AdvantageOutput

        alg = self.cfg.rl.algorithm
        metrics: dict[str, float] = {}
        if ro.pre_adv is not None:  # fixed before the filter (OREAL)
            adv = torch.tensor(ro.pre_adv + [0.0] * (len(sb.row_len) - sb.real))[:, None] * sb.mask
            return AdvantageOutput(adv, adv.clone()), metrics
        inputs: dict[str, Any] = {"rewards": sb.rewards, "mask": sb.mask, "token_rewards": token_rewards,
                                  "values": self.critic.values(sb.batch) if self.critic is not None else None}
        if self.prm is not None:
            inputs.update(self.prm.advantage_inputs(sb.batch, ro, lp.ref))
        if self.mrt is not None:
            mrt_in, mrt_m = self.mrt.inputs(ro, step)
            inputs.update(mrt_in)
            metrics.update(mrt_m)
        g = self._gather_rows(ro, sb, inputs)
        index = g.pop("index")
        g["rewards"] = normalize_rewards(g["rewards"], self.cfg.rl.reward.normalize, self.reward_moments)
        if self.reward_moments is not None:
            metrics.update(reward_norm_mean=self.reward_moments.mean, reward_norm_std=self.reward_moments.std)
        out = ADVANTAGES[alg.advantage](index=index, **g, **self.adv_params)
        return AdvantageOutput(*(self._local_rows(ro, sb, t) for t in out)), metrics

    def _gather_rows(self, ro: Experience, sb: StepBatch, inputs: dict[str, Any]) -> dict[str, Any]:
        """Per-row inputs of all ranks as the global batch (row i at its global index; tensors padded to the
        widest rank's R). One rank: the inputs themselves (no copy)."""
        real, b = sb.real, len(sb.row_len)

        def per_row(v: Any) -> bool:
            return (isinstance(v, torch.Tensor) and v.dim() >= 1 and v.size(0) == b) or (
                isinstance(v, list) and len(v) == real)

        consts = {k: v for k, v in inputs.items() if v is not None and not per_row(v)}
        mine = {k: (v[:real] if v is not None else None) for k, v in inputs.items() if k not in consts}
        if self.dist.world == 1:
            return {**mine, **consts, "index": list(ro.group)}
        parts = self.dist.gather({"order": ro.order, "group": ro.group, **mine})
        width = max(int(p["mask"].size(1)) for p in parts)
        out: dict[str, Any] = {"index": [None] * ro.global_rows}
        for p in parts:
            for i, gi in enumerate(p["order"]):
                out["index"][gi] = p["group"][i]
        for k in mine:
            if mine[k] is None:
                out[k] = None
            elif isinstance(mine[k], torch.Tensor):
                t0 = mine[k]
                shape = (ro.global_rows, width) if t0.dim() == 2 else (ro.global_rows, *t0.shape[1:])
                full = torch.zeros(shape, dtype=t0.dtype)
                for p in parts:
                    t = p[k]
                    if len(p["order"]):
                        rows = torch.tensor(p["order"])
                        full[rows] = t if t.dim() != 2 else torch.nn.functional.pad(t, (0, width - t.size(1)))
                out[k] = full
            else:  # per-row lists (e.g. MRT's episode ends)
                full_list: list[Any] = [None] * ro.global_rows
                for p in parts:
                    for i, gi in enumerate(p["order"]):
                        full_list[gi] = p[k][i]
                out[k] = full_list
        return {**out, **consts}

    def _local_rows(self, ro: Experience, sb: StepBatch, t: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global (rows, width) tensor, in the local layout (placeholder rows zero)."""
        n = len(sb.row_len)
        if self.dist.world > 1:
            t = t[torch.tensor(ro.order, dtype=torch.long)] if ro.order else t[:0]
        out = torch.zeros(n, sb.width, dtype=t.dtype)
        w = min(sb.width, t.size(1))
        out[: t.size(0), :w] = t[:, :w]
        return out

    def _policy_update(self, ro: Experience, sb: StepBatch, lp: LogProbs, adv: torch.Tensor,
                       step: int) -> dict[str, float]:
        """``ppo_epochs`` passes over mini-batches of whole groups (global slices of ``group_order``), one
        optimizer step each; the lr schedule advances once per RL step."""
        from r1cli.algos import POLICY_LOSS_TRAITS

        alg, tr = self.cfg.rl.algorithm, self.cfg.rl.train
        per = tr.mini_batch_prompts or max(1, len(ro.group_order))
        minis = [set(ro.group_order[i : i + per]) for i in range(0, len(ro.group_order), per)]
        local = [[i for i in range(sb.real) if ro.group[i] in gs] for gs in minis]
        loss_extra = self.prm.loss_inputs(sb.batch, ro) if self.prm is not None and hasattr(
            self.prm, "loss_inputs") else {}
        ent_coef = self.entropy_ctl.value if self.entropy_ctl is not None else alg.entropy_coef
        kl_in_loss = lp.ref is not None and alg.kl.use == "loss" and alg.kl.coef > 0
        # A sample whose advantage is 0 at every token adds exactly 0 to the loss and its gradient when the loss
        # is linear in the advantage and has no other per-token term: its forward/backward is skipped (the
        # denominators still count it). Metrics per trained token (entropy, clip fractions) cover trained rows.
        skip = (self.skip_zero_adv and POLICY_LOSS_TRAITS[alg.policy_loss].linear_in_advantage and not kl_in_loss
                and not ent_coef and alg.nll_coef == 0 and not loss_extra)
        live = ((adv != 0) & (sb.mask > 0)).any(1).tolist()
        ctx = {"adv": adv, "lp": lp, "loss_extra": loss_extra, "ent_coef": ent_coef, "kl_in_loss": kl_in_loss}
        acc, norms, skipped = MetricSums(), [], 0
        freeze = step < self.cfg.warmups.prm.freeze_policy_steps  # OREAL: RM-only warm-up steps
        for _ in range(0 if freeze else alg.ppo_epochs):
            for rows in local:
                den = self._denominators(ro, sb, rows)
                trained = ([i for i in rows if live[i]] or rows[:1]) if skip else rows
                skipped += len(rows) - len(trained)
                for mb in self._micro_batches(sb, trained):
                    self._micro_step(ro, sb, mb, den, ctx, acc)
                norms.append(self.trainer.step(schedule=False))
        if not freeze and alg.ppo_epochs:
            self.trainer.schedule_step()
        out = acc.means(self.dist)
        out["grad_norm"] = sum(norms) / len(norms) if norms else 0.0
        out["rows_skipped_zero_adv"] = self.dist.sum([float(skipped)])[0] / max(1, alg.ppo_epochs)
        if self.entropy_ctl is not None and "entropy" in out:
            out["entropy_coef"] = self.entropy_ctl.update(out["entropy"])
        return out

    def _denominators(self, ro: Experience, sb: StepBatch, rows: list[int]) -> dict[str, float]:
        """Token / sequence counts of a mini-batch over all ranks: the aggregation denominators (each rank's
        loss is its share of the global objective), OREAL's positive / negative token counts and the tokens of
        correct responses (VAPO's positive-example NLL)."""
        m = sb.mask[rows] if rows else sb.mask[:0]
        pos = (sb.rewards[rows] > 0).float()[:, None] if rows else m[:, :1]
        cor = torch.tensor([float(ro.correct[i]) for i in rows])[:, None] if rows else m[:, :1]
        tot, seqs, p_tok, c_tok = self.dist.sum([float(m.sum()), float((m.sum(1) > 0).sum()),
                                                 float((m * pos).sum()), float((m * cor).sum())])
        return {"total_tokens": tot, "total_seqs": seqs, "total_pos_tokens": p_tok, "total_neg_tokens": tot - p_tok,
                "correct_tokens": c_tok}

    def _micro_step(self, ro: Experience, sb: StepBatch, rows: list[int], den: dict[str, float],
                    ctx: dict[str, Any], acc: MetricSums) -> None:
        """Forward, loss (policy loss + KL − entropy − positive NLL, aggregated with global denominators),
        backward of one micro-batch; ``rows == []`` is a padding micro-batch (weight 0)."""
        from r1cli.algos import KL, POLICY_LOSS_TRAITS, POLICY_LOSSES, aggregate

        alg = self.cfg.rl.algorithm
        r, rw, logp, ent = self._forward(sb, rows, with_entropy=True)
        if not rows:  # padding micro-batch: a zero gradient through the same forward (hooks fire, nothing moves)
            (logp.sum() * 0.0 + (ent.sum() * 0.0 if ent is not None else 0.0)).backward()
            return

        def cut(x: torch.Tensor) -> torch.Tensor:
            x = x[r]
            return x[:, :rw] if x.dim() == 2 and x.size(1) == sb.width else x

        m = cut(sb.mask)
        traits = POLICY_LOSS_TRAITS[alg.policy_loss]
        params = dict(alg.loss_params)
        if traits.clip:
            params = {"clip_low": alg.clip_low, "clip_high": alg.clip_high, "dual_clip": alg.dual_clip, **params}
        if traits.rewards:
            params.setdefault("rewards", sb.rewards[r])
        if traits.batch_token_counts:
            params.update({k: den[k] for k in ("total_tokens", "total_pos_tokens", "total_neg_tokens")})
        lp = ctx["lp"]
        old = cut(lp.old) if lp.old is not None else logp.detach()
        pg, pm = POLICY_LOSSES[alg.policy_loss](logp=logp, old_logp=old, advantages=cut(ctx["adv"]), mask=m,
                                                **params, **{k: cut(v) for k, v in ctx["loss_extra"].items()})
        ntok = float(m.sum())
        loss_mat = pg
        if ctx["kl_in_loss"]:
            kl = KL[alg.kl.type](logp, cut(lp.ref))
            loss_mat = loss_mat + alg.kl.coef * kl
            acc.add("kl", _masked_mean(kl.detach(), m), ntok)
        if ent is not None and ctx["ent_coef"] and (
                self.entropy_ctl is None or self.entropy_ctl.active(_masked_mean(ent, m))):
            loss_mat = loss_mat - ctx["ent_coef"] * ent
        loss = aggregate(loss_mat, m, alg.loss_agg, alg.loss_agg_norm or self.stage.max_response,
                         total_tokens=den["total_tokens"], total_seqs=den["total_seqs"])
        if alg.nll_coef > 0 and den["correct_tokens"] > 0:
            # VAPO positive-example LM loss: token-mean over the tokens of correct responses only
            pos = torch.tensor([float(ro.correct[i]) for i in r], dtype=logp.dtype)[:, None]
            loss = loss - alg.nll_coef * (logp * pos * m).sum() / den["correct_tokens"]
        loss.backward()
        for k, v in pm.items():
            acc.add(k, float(v), ntok)
        if ent is not None:
            acc.add("entropy", _masked_mean(ent.detach(), m), ntok)
        if lp.old is None:
            acc.add("logprob_gap", _masked_mean((logp.detach() - cut(sb.sampler_lp)).abs(), m), ntok)

    def _aux_updates(self, ro: Experience, sb: StepBatch, adv_out: Any, lp: LogProbs) -> dict[str, float]:
        """The critic's value update (data-parallel: global row order) and the PRM's update."""
        out: dict[str, float] = {}
        if self.critic is not None:
            values = self.critic.values(sb.batch)
            real = list(range(sb.real))
            out.update(self.critic.update(sb.batch.select(real), returns=adv_out.returns[real],
                                          old_values=values[real], mask=sb.mask[real], order=ro.order,
                                          global_rows=ro.global_rows))
        if self.prm is not None:
            out.update(self.prm.update(sb.batch, ro))
        return out

    def _update_metrics(self, sb: StepBatch, adv: torch.Tensor, lp: LogProbs, t_lp: float,
                        t_update: float) -> dict[str, float]:
        alg = self.cfg.rl.algorithm
        m = sb.mask
        zero = float(((adv.abs() * m).sum(1) == 0).float()[: sb.real].sum())
        tokens = float(sb.batch.attention_mask[: sb.real].sum())
        gap = float(((lp.old - sb.sampler_lp).abs() * m).sum()) if lp.old is not None else 0.0
        rows, zero, tokens, gap, ntok = self.dist.sum([float(sb.real), zero, tokens, gap, float(m.sum())])
        t_lp, t_update = self.dist.max([t_lp, t_update])
        out = {
            "lr": self.trainer.lr,
            "zero_adv_frac": zero / max(1.0, rows),
            "t_logprob": t_lp,
            "t_update": t_update,
            "update_tokens_per_s": tokens * alg.ppo_epochs / max(t_update, 1e-9),
            "samples": rows,
        }
        if lp.old is not None:
            out["logprob_gap"] = gap / max(1.0, ntok)
        return out

    # --- loop -----------------------------------------------------------------------------------------------
    def _components(self) -> dict[str, Any]:
        """Checkpointed state by name (each with ``state_dict`` / ``load_state_dict``)."""
        named = {"trainer": self.trainer, "critic": self.critic, "prm": self.prm, "entropy_ctl": self.entropy_ctl,
                 "reward_moments": self.reward_moments}
        return {k: v for k, v in named.items() if v is not None}

    def _save(self, ckpt: Any, done: int) -> None:
        from r1cli.train.checkpoint import rng_state

        state = {k: c.state_dict() for k, c in self._components().items()}  # collective under ZeRO
        reset_every = self.cfg.rl.algorithm.kl.ref_reset_every
        if reset_every and self.ref is not None and done > reset_every:
            state["reference"] = self.reference_state()
        rngs = self.dist.gather(rng_state())
        if self.dist.is_main:
            state["rng"], state["rngs"] = rngs[0], rngs
            ckpt.save(done, state, {"loader": self.loader.state(), "world": self.dist.world})
        self.dist.barrier()

    def _resume(self, ckpt: Any) -> int:
        from r1cli.train.checkpoint import set_rng_state

        # rank 0 first: a checkpoint of another config or a damaged one is set aside by the first load
        loaded = ckpt.load() if self.dist.is_main else None
        self.dist.barrier()
        if not self.dist.is_main:
            loaded = ckpt.load()
        if loaded is None:
            return 0
        state, meta = loaded
        world = int(meta.get("world", 1))
        for name, comp in self._components().items():
            if name in state:
                try:
                    comp.load_state_dict(state[name])
                except ValueError as exc:
                    raise ValueError(
                        f"{ckpt.loaded}: cannot resume the {name} state on {self.dist.world} rank(s): {exc}. Rerun "
                        f"with the checkpoint's {world} rank(s) (the stage's resources.gpus / procs), or move "
                        f"{ckpt.root} aside to start the stage fresh") from exc
        if self.ref is not None and "reference" in state:
            self.load_reference_state(state["reference"])
        self.loader.load(meta["loader"])
        rngs = state.get("rngs") or [state["rng"]]
        set_rng_state(rngs[self.dist.rank] if world == self.dist.world else rngs[0])
        if world != self.dist.world:
            log(f"rl {self.stage.name}: checkpoint written by {world} ranks, resuming on {self.dist.world} "
                "(weights, optimizer and data position are global; sampling seeds do not depend on ranks)")
        log(f"rl {self.stage.name}: resumed from checkpoint step {meta['step']} ({ckpt.loaded})")
        return int(meta["step"])

    def _truncate_logs(self, start: int) -> None:
        """Drop trajectory lines of steps after the checkpoint (they will be redone identically)."""
        from r1cli.utils.io import atomic_write_jsonl, read_jsonl

        if self.dist.is_main and self.traj_path.exists():  # (metrics.jsonl: the stage's tracker trims it)
            atomic_write_jsonl(self.traj_path, [r for r in read_jsonl(self.traj_path) if int(r.get("step", 0)) < start])
        self.dist.barrier()

    def run(self) -> dict[str, Any]:
        from contextlib import nullcontext

        from r1cli.rewards.pool import grading_pool
        from r1cli.train.checkpoint import CheckpointManager, stage_fingerprint
        from r1cli.utils.tracking import StageLogger

        st = self.stage
        ckpt = CheckpointManager(self.stage_dir / "checkpoints", keep=self.cfg.rl.checkpoint.keep,
                                 fingerprint=stage_fingerprint(self.cfg, f"rl/{st.name}", self.inputs))
        start = self._resume(ckpt)
        self._truncate_logs(start)
        last: dict[str, Any] = {}
        first: dict[str, float] = {}
        reset_every = self.cfg.rl.algorithm.kl.ref_reset_every
        main = self.dist.is_main
        # metrics.jsonl (lines past the checkpoint trimmed) + the recipe's trackers (logging.report_to), rank 0
        tracker = StageLogger.for_recipe(self.cfg, metrics_path=self.metrics_path, resume_step=start, enabled=main)
        with grading_pool(self.cfg.rl.reward) as pool, tracker, (
                Progress(st.steps, f"rl {st.name}", start=start) if main else nullcontext()) as prog:
            self.pool = pool
            for step in range(start, st.steps):
                t0 = time.time()
                if reset_every and step > 0 and step % reset_every == 0 and self.ref is not None:
                    self.reset_reference()
                    log(f"rl {st.name}: step {step}: reference reset to the current policy")
                ro, m = self.collect(step)
                m.update(self.update(ro, step))
                self.sampler.sleep()
                m["t_sync"] = self.sampler.sync(self.trainer)
                m.update(t_step=time.time() - t0, step=step, stage=st.name, ranks=self.dist.world)
                last = m
                tracker.log(step, m)
                if main:
                    _health(m, st.name, step, first)
                    prog.update(1, info=f"reward {m['reward_mean']:.3f} acc {m['acc']:.3f} "
                                        f"len {m['response_len_mean']:.1f}")
                done = step + 1
                if done % self.cfg.rl.checkpoint.every == 0 and done < st.steps:
                    self._save(ckpt, done)
            self.pool = None
        return last

    def export(self, out_dir: Path) -> None:
        self.trainer.export(out_dir, self.tok)
        if self.critic is not None:
            self.critic.export(self.stage_dir / "critic")


def _round_stats(res: dict[str, Any], count: bool) -> list[float]:
    """Round-0 sums of this rank: [samples, reward, correct, length, truncated, max length]."""
    if not count or not res["scores"]:
        return [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    return [float(len(res["scores"])), sum(res["scores"]), float(sum(res["correct"])), float(sum(res["lens"])),
            float(sum(not f for f in res["fin"])), float(max(res["lens"]))]


def _pass_rate_prior(gold: dict[str, Any], default: float) -> float:
    """The difficulty filter's measured pass rate of a row (``meta.pass_rate``, in its gold view from
    ``gold_of``), else ``default``."""
    v = gold.get("pass_rate")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> float:
    return float((x * m).sum() / m.sum().clamp(min=1))


def _health(m: dict[str, Any], stage: str, step: int, first: dict[str, float]) -> None:
    """Warnings a person should see in the log: entropy collapse (below 5 % of the stage's first value),
    KL blow-up, reward stuck at 0."""
    ent = m.get("entropy")
    if ent is not None:
        first.setdefault("entropy", ent)
        if step > 2 and ent < 0.05 * first["entropy"]:
            log(f"health: rl {stage} step {step}: entropy collapsed to {ent:.4f} (first step {first['entropy']:.4f})")
    if m.get("kl") is not None and m["kl"] > 1.0:
        log(f"health: rl {stage} step {step}: KL blow-up ({m['kl']:.3f})")
    if step >= 5 and m.get("reward_mean", 1) == 0 and m.get("acc", 1) == 0:
        log(f"health: rl {stage} step {step}: reward stuck at 0")


def run_rl_stage(cfg: Recipe, stage_name: str, *, data_path: Path, init_model: str, stage_dir: Path,
                 dist: Any | None = None) -> dict:
    """Run (or resume) one RL stage on this process's ranks, export its model, write DONE (rank 0)."""
    from r1cli.engines.dist import Dist
    from r1cli.utils.io import atomic_write_json

    stages = {s.name: s for s in cfg.rl.stages}
    if stage_name not in stages:
        raise ValueError(f"no RL stage {stage_name!r} in the recipe (stages: {list(stages)})")
    dist = dist if dist is not None else Dist.from_env()
    if cfg.rl.train.threads:
        torch.set_num_threads(cfg.rl.train.threads)
    runner = RLStageRunner(cfg, stages[stage_name], data_path=data_path, init_model=init_model,
                           stage_dir=stage_dir, dist=dist)
    last = runner.run()
    runner.export(stage_dir / "model")
    if dist.is_main:
        atomic_write_json(stage_dir / "DONE", {"stage": stage_name, "steps": stages[stage_name].steps,
                                               "ranks": dist.world, "last": last})
    dist.barrier()
    return last

