"""One RL stage (``r1 train rl --stage K``): the whole step on one screen.

prompts  = loader.next_batch()                      # deterministic order, position saved in checkpoints
groups   = rollout.generate(prompts, n, sampling)    # token ids + sampler log-probs
scores   = rewards.score(groups)                     # process pool for math/code, hard per-item deadline
groups   = filters.apply(groups, scores)             # DAPO / PRIME band / OREAL pairs; refill until full
adv      = algos.ADVANTAGES[name](...)
for epoch x mini-batch x micro-batch:  loss = aggregate(policy_loss + KL - entropy) ; step
rollout weights = trainer weights (colocated: the same module in this process)
log metrics; checkpoint atomically every k steps
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1cli.config import Recipe
from r1cli.config.schema import RLStage
from r1cli.utils.progress import Progress, log

CRITIC_ESTIMATORS = {"gae", "vapo_gae"}


def step_seed(*parts: Any) -> int:
    h = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(h[:8], "little") & 0x7FFFFFFFFFFFFFFF


@dataclass
class PromptLoader:
    """Deterministic epoch-shuffled prompt order; ``state()`` is saved in checkpoints so a resumed run neither
    skips nor repeats a prompt."""

    size: int
    seed: int
    epoch: int = 0
    cursor: int = 0
    order: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError("the RL training set is empty")
        self._shuffle()

    def _shuffle(self) -> None:
        self.order = list(range(self.size))
        random.Random(step_seed(self.seed, "epoch", self.epoch)).shuffle(self.order)

    def next(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if self.cursor >= self.size:
                self.epoch += 1
                self.cursor = 0
                self._shuffle()
            take = min(k - len(out), self.size - self.cursor)
            out.extend(self.order[self.cursor : self.cursor + take])
            self.cursor += take
        return out

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load(self, st: dict[str, int]) -> None:
        self.epoch, self.cursor = int(st["epoch"]), int(st["cursor"])
        self._shuffle()


class PrioritizedLoader:
    """Kimi k1.5 prioritised sampling (Kimi Team 2025, arXiv 2501.12599 §2.3.4): each draw picks prompts without
    replacement with probability ∝ w_i = (1 − s_i) + floor, where s_i is prompt i's success rate in its latest
    rollout group of this stage (before any: ``priors[i]``, e.g. the difficulty filter's pass rate). Weighted
    sampling without replacement uses Efraimidis–Spirakis keys log(u)/w (largest k), u from a generator seeded
    by (seed, draw number), so a resumed run draws exactly what an uninterrupted one would; ``state()`` holds
    the draw count and every measured success rate."""

    def __init__(self, size: int, seed: int, priors: list[float], floor: float = 0.05) -> None:
        if size <= 0:
            raise ValueError("the RL training set is empty")
        if len(priors) != size:
            raise ValueError(f"{len(priors)} priors for {size} prompts")
        if floor < 0:
            raise ValueError("floor must be >= 0")
        self.size, self.seed, self.floor = size, seed, floor
        self.priors = [min(1.0, max(0.0, float(p))) for p in priors]
        self.success: dict[int, float] = {}
        self.draws = 0
        self.drawn = 0

    @property
    def epoch(self) -> int:
        """Prompts drawn so far in units of the data size (the trajectory log's ``epoch`` field)."""
        return self.drawn // self.size

    def weight(self, i: int) -> float:
        return (1.0 - self.success.get(i, self.priors[i])) + self.floor

    def next(self, k: int) -> list[int]:
        rng = random.Random(step_seed(self.seed, "prioritized", self.draws))
        self.draws += 1
        out: list[int] = []
        while len(out) < k:  # more than the data size: whole passes, each weighted without replacement
            take = min(k - len(out), self.size)
            keys = []
            for i in range(self.size):
                w = self.weight(i)
                u = rng.random()
                keys.append((math.log(u) / w if w > 0 and u > 0 else -math.inf, i))
            keys.sort(reverse=True)
            out.extend(i for _, i in keys[:take])
        self.drawn += k
        return out

    def observe(self, i: int, success: float) -> None:
        self.success[int(i)] = float(success)

    def state(self) -> dict[str, Any]:
        return {"draws": self.draws, "drawn": self.drawn,
                "success": {str(k): v for k, v in sorted(self.success.items())}}

    def load(self, st: dict[str, Any]) -> None:
        self.draws, self.drawn = int(st["draws"]), int(st["drawn"])
        self.success = {int(k): float(v) for k, v in st.get("success", {}).items()}


class RunningMoments:
    """Running mean and variance of a stream (Chan et al. parallel update), for reward normalisation:
    r' = (r − μ) / σ over every reward seen so far (OpenRLHF ``normalize_reward`` as LIMR and Demystify ran PPO).
    The batch is folded in before it is normalised."""

    def __init__(self) -> None:
        self.count = 0.0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: torch.Tensor) -> None:
        x = x.double().flatten()
        n = float(x.numel())
        if n == 0:
            return
        bm = float(x.mean())
        bm2 = float(((x - bm) ** 2).sum())
        tot = self.count + n
        delta = bm - self.mean
        self.mean += delta * n / tot
        self.m2 += bm2 + delta * delta * self.count * n / tot
        self.count = tot

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 1.0

    def normalize(self, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        return ((x.double() - self.mean) / (self.std + eps)).to(x.dtype)

    def state_dict(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, st: dict[str, float]) -> None:
        self.count, self.mean, self.m2 = float(st["count"]), float(st["mean"]), float(st["m2"])


def normalize_rewards(rewards: torch.Tensor, mode: str, moments: RunningMoments | None) -> torch.Tensor:
    """Sequence rewards before the advantage estimator: ``none``; ``batch`` = (r − mean)/std of this step's
    rewards; ``running`` = fold the step into ``moments`` then (r − μ)/σ over everything seen."""
    if mode == "none" or rewards.numel() == 0:
        return rewards
    if mode == "batch":
        sd = float(rewards.double().std(unbiased=False)) if rewards.numel() > 1 else 0.0
        return ((rewards.double() - float(rewards.double().mean())) / (sd + 1e-8)).to(rewards.dtype)
    if mode == "running":
        if moments is None:
            raise ValueError("running reward normalisation needs a RunningMoments")
        moments.update(rewards)
        return moments.normalize(rewards)
    raise ValueError(f"unknown reward normalisation {mode!r} (none | batch | running)")


def shaping_token_rewards(
    response_ids: list[list[int]], terms: list[Any], step: int, width: int, gamma: float
) -> torch.Tensor | None:
    """Per-token rewards (B, width) of the recipe's token-level shaping terms (r1cli.rewards.TOKEN_SHAPING) that
    are active at ``step``. A term's own discount ``gamma`` (Demystify: 0.99 for the repetition penalty while
    correctness uses 1) is honoured exactly by :func:`r1cli.rewards.rediscount` into the estimator's γ."""
    from r1cli.rewards import TOKEN_SHAPING, rediscount

    active = [t for t in terms if t.name in TOKEN_SHAPING and step >= t.start_step]
    if not active:
        return None
    out = torch.zeros(len(response_ids), width)
    for term in active:
        params = dict(term.params)
        g_term = float(params.pop("gamma", gamma))
        for i, ids in enumerate(response_ids):
            r = TOKEN_SHAPING[term.name](ids, **params)
            if g_term != gamma:
                r = rediscount(r, g_term, gamma)
            n = min(width, len(r))
            out[i, :n] += torch.tensor(r[:n], dtype=out.dtype)
    return out


@dataclass
class Rollouts:
    rows: list[int]  # dataset row of each sample
    group: list[int]  # group id of each sample
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    sampler_logprobs: list[list[float]]
    finished: list[bool]
    texts: list[str]
    scores: list[float]
    correct: list[bool]


def _score(
    cfg: Recipe,
    texts: list[str],
    golds: list[dict[str, Any]],
    finished: list[bool],
    lengths: list[int],
    groups: list[int],
    pool: Any,
    step: int = 0,
) -> tuple[list[float], list[bool]]:
    """Scores and correctness of responses: the recipe's reward (per task), then its sequence-level shaping
    terms active at ``step`` (``start_step``); token-level terms (TOKEN_SHAPING) are added in the update."""
    from r1cli.rewards import SHAPING, TOKEN_SHAPING, score_by_task

    rc = cfg.rl.reward
    res = score_by_task(rc.name, texts, golds, params=dict(rc.params), finished=finished, pool=pool,
                        by_task=rc.by_task)
    scores = [float(r.score) for r in res]
    correct = [bool(r.correct) for r in res]
    for term in rc.shaping:
        if step < term.start_step or term.name in TOKEN_SHAPING:
            continue
        if term.name in ("kimi", "kimi_length", "kimi_length_penalty"):
            from r1cli.rewards import kimi_length_penalty

            by_group: dict[int, list[int]] = {}
            for i, g in enumerate(groups):
                by_group.setdefault(g, []).append(i)
            w = float(term.params.get("weight", 1.0))
            for members in by_group.values():
                pen = kimi_length_penalty([lengths[i] for i in members], [correct[i] for i in members])
                for i, p in zip(members, pen, strict=True):
                    scores[i] += w * p
            continue
        if term.name not in SHAPING:
            known = ", ".join(sorted({*SHAPING, *TOKEN_SHAPING, "kimi_length"}))
            raise ValueError(f"unknown shaping term {term.name!r} (known: {known})")
        fn = SHAPING[term.name]
        for i in range(len(scores)):
            scores[i] = float(
                fn(
                    score=scores[i],
                    correct=correct[i],
                    length=lengths[i],
                    response=texts[i],
                    gold=golds[i],
                    **term.params,
                )
            )
    return scores, correct


class RLStageRunner:
    def __init__(
        self, cfg: Recipe, stage: RLStage, *, data_path: Path, init_model: str, stage_dir: Path
    ) -> None:
        from r1cli.data.prepare import gold_of
        from r1cli.data.templates import render_prompt
        from r1cli.engines.hf_rollout import HFRollout, load_model, load_tokenizer
        from r1cli.engines.torch_train import TorchTrainer
        from r1cli.utils.io import read_parquet

        self.cfg, self.stage, self.stage_dir = cfg, stage, stage_dir
        rl = cfg.rl
        alg = rl.algorithm
        torch.manual_seed(cfg.seed)
        self.tok = load_tokenizer(init_model)
        model = load_model(init_model, dtype="float32" if rl.train.dtype == "float32" else "bfloat16")
        self.P = stage.prompts_per_step or rl.rollout.prompts_per_step
        lr = stage.lr or rl.train.lr
        trainer_cls: Any = TorchTrainer
        trainer_extra: dict[str, Any] = {}
        if rl.train.backend == "deepspeed":
            # same interface as TorchTrainer (r1cli/engines/deepspeed_train.py); ZeRO config from the recipe
            from r1cli.engines.deepspeed_train import DeepSpeedTrainer

            trainer_cls = DeepSpeedTrainer
            trainer_extra = {"zero_stage": rl.train.zero_stage, "dtype": rl.train.dtype,
                             "micro_batch_size": rl.train.micro_batch_size}
        # the frozen KL reference is copied before the trainer exists (ZeRO-3 partitions the model in place)
        ref_copy = copy.deepcopy(model) if alg.kl.coef > 0 else None
        self.trainer = trainer_cls(
            model,
            lr=lr,
            betas=tuple(rl.train.betas),
            weight_decay=rl.train.weight_decay,
            grad_clip=rl.train.grad_clip,
            schedule=rl.train.schedule,
            warmup_steps=rl.train.warmup_steps,
            total_steps=max(1, stage.steps),
            min_lr_ratio=rl.train.min_lr_ratio,
            end_lr=stage.lr_end,
            gradient_checkpointing=rl.train.gradient_checkpointing,
            optimizer=rl.train.optimizer,
            **trainer_extra,
        )
        self.rollout = HFRollout(self.trainer.model, self.tok, max_batch=512)
        self.ref = None
        if ref_copy is not None:
            if hasattr(self.trainer, "make_reference"):  # DeepSpeed: ZeRO-3-sharded / offloaded reference
                self.ref = self.trainer.make_reference(ref_copy)
            else:
                self.ref = ref_copy.eval()
                for p in self.ref.parameters():
                    p.requires_grad_(False)
        # PPO critic (gae / vapo_gae) and PRIME's implicit PRM: built by r1cli.train.critic / r1cli.train.prm
        self.critic = None
        if alg.advantage in CRITIC_ESTIMATORS:
            from r1cli.train.critic import make_critic

            self.critic = make_critic(cfg, init_model=init_model, stage=stage, stage_dir=stage_dir)
        self.prm = None
        if alg.advantage == "prime" or cfg.warmups.prm.enabled:
            from r1cli.train.prm import make_prm

            self.prm = make_prm(cfg, init_model=init_model, stage=stage, stage_dir=stage_dir)
        rows = read_parquet(data_path)
        if not rows:
            raise ValueError(f"{data_path}: no training rows")
        self.rows = rows
        self.prompt_ids = [render_prompt(self.tok, r) for r in rows]
        self.golds = [gold_of(r) for r in rows]
        too_long = sum(len(p) > rl.rollout.max_prompt for p in self.prompt_ids)
        if too_long:
            log(
                f"warning: {too_long} prompts exceed rollout.max_prompt={rl.rollout.max_prompt} and are truncated "
                "from the left"
            )
            self.prompt_ids = [p[-rl.rollout.max_prompt :] for p in self.prompt_ids]
        self.loader: PromptLoader | PrioritizedLoader
        pri = rl.rollout.prioritized
        if pri.enabled:
            self.loader = PrioritizedLoader(len(rows), step_seed(cfg.seed, stage.name), [
                _pass_rate_prior(g, pri.prior) for g in self.golds], floor=pri.floor)
        else:
            self.loader = PromptLoader(len(rows), step_seed(cfg.seed, stage.name))
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
        if alg.advantage == "mrt":
            from r1cli.train.mrt import MRTProgress

            seg, self.adv_params = MRTProgress.split_params(dict(alg.advantage_params))
            self.mrt = MRTProgress(
                self.tok, self.rollout, self._correct_of, seg, self.temperature, step_seed(cfg.seed, stage.name, "mrt")
            )
        #: skip the forward/backward of samples whose advantage is 0 everywhere where that is exact (update())
        self.skip_zero_adv = True
        self.metrics_path = stage_dir / "metrics.jsonl"
        self.traj_path = stage_dir / "trajectories.jsonl"

    def _correct_of(self, texts: list[str], rows: list[int], finished: list[bool]) -> list[bool]:
        """Grade extra texts (MRT's forced answers) with the recipe's reward; correctness flags."""
        golds = [self.golds[r] for r in rows]
        lens = [len(t) for t in texts]
        _, correct = _score(self.cfg, texts, golds, finished, lens, list(range(len(texts))), self.pool)
        return correct

    def reset_reference(self) -> None:
        """Copy the current policy into the frozen KL reference (DeepSeek-R1-Zero, Guo et al. 2025, Methods:
        the reference is replaced by the latest policy every 400 steps)."""
        from r1cli.engines.weights import copy_weights_into

        if self.ref is None:
            return
        src = (self.trainer.named_weights() if hasattr(self.trainer, "named_weights")
               else [*self.trainer.model.named_parameters(), *self.trainer.model.named_buffers()])
        copy_weights_into(self.ref, src)

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
    def collect(self, step: int) -> tuple[Rollouts, dict[str, float]]:
        from r1cli.algos import FILTERS
        from r1cli.engines.rollout import SamplingSpec

        rl, st = self.cfg.rl, self.stage
        ds = rl.rollout.dynamic_sampling
        spec_base = dict(
            n=st.n,
            temperature=self.temperature,
            top_p=rl.rollout.top_p,
            top_k=rl.rollout.top_k,
            max_tokens=st.max_response,
        )
        kept = Rollouts([], [], [], [], [], [], [], [], [])
        t_gen = t_rew = 0.0
        n_groups = n_dropped = 0
        gen_tokens = 0
        traj: list[dict[str, Any]] = []
        for rnd in range(ds.max_rounds if ds.filter else 1):
            need = self.P - len(set(kept.group))
            if need <= 0:
                break
            ask = max(need, math.ceil(need * ds.oversample)) if rnd == 0 else need
            idx = self.loader.next(ask)
            t0 = time.time()
            groups = self.rollout.generate(
                [self.prompt_ids[i] for i in idx],
                SamplingSpec(seed=step_seed(self.cfg.seed, st.name, step, rnd), **spec_base),
            )
            t_gen += time.time() - t0
            t0 = time.time()
            flat = [(gi, s) for gi, g in enumerate(groups) for s in g]
            texts = [s.text for _, s in flat]
            golds = [self.golds[idx[gi]] for gi, _ in flat]
            fin = [s.finished for _, s in flat]
            lens = [len(s.response_ids) for _, s in flat]
            gen_tokens += sum(lens)
            gids = [step * 100_000 + rnd * 10_000 + gi for gi, _ in flat]
            scores, correct = _score(self.cfg, texts, golds, fin, lens, gids, self.pool, step)
            t_rew += time.time() - t0
            for gi in range(len(groups)):
                members = [j for j, (g, _) in enumerate(flat) if g == gi]
                if isinstance(self.loader, PrioritizedLoader) and members:
                    self.loader.observe(idx[gi], sum(correct[j] for j in members) / len(members))
                traj.append(
                    {
                        "step": step,
                        "epoch": self.loader.epoch,
                        "id": self.rows[idx[gi]]["id"],
                        "n": len(members),
                        "correct": sum(correct[j] for j in members),
                        "reward_mean": sum(scores[j] for j in members) / len(members),
                    }
                )
            if ds.filter:
                keep = FILTERS[ds.filter](
                    scores=torch.tensor(scores), correct=correct, index=gids, **ds.params
                )
            else:
                keep = [True] * len(flat)
            n_groups += len(groups)
            kept_groups = {gids[j] for j in range(len(flat)) if keep[j]}
            n_dropped += len(groups) - len(kept_groups)
            for j, (gi, s) in enumerate(flat):
                if not keep[j] or (len(set(kept.group)) >= self.P and gids[j] not in set(kept.group)):
                    continue
                kept.rows.append(idx[gi])
                kept.group.append(gids[j])
                kept.prompt_ids.append(s.prompt_ids)
                kept.response_ids.append(s.response_ids)
                kept.sampler_logprobs.append(s.logprobs)
                kept.finished.append(s.finished)
                kept.texts.append(texts[j])
                kept.scores.append(scores[j])
                kept.correct.append(correct[j])
            if rnd == 0:
                all_scores, all_correct, all_lens, all_fin = scores, correct, lens, fin
        from r1cli.utils.io import append_jsonl

        for t in traj:
            append_jsonl(self.traj_path, t)
        m = {
            "reward_mean": _mean(all_scores),
            "acc": _mean([float(c) for c in all_correct]),
            "response_len_mean": _mean([float(x) for x in all_lens]),
            "response_len_max": float(max(all_lens)),
            "truncation_rate": _mean([0.0 if f else 1.0 for f in all_fin]),
            "filtered_group_frac": n_dropped / max(1, n_groups),
            "groups_kept": float(len(set(kept.group))),
            "gen_rounds": float(rnd + 1),
            "t_generate": t_gen,
            "t_reward": t_rew,
            "gen_tokens_per_s": gen_tokens / max(t_gen, 1e-9),
        }
        return kept, m

    # --- update --------------------------------------------------------------------------------------------
    def update(self, ro: Rollouts, step: int = 0) -> dict[str, float]:
        from r1cli.algos import ADVANTAGES, KL, POLICY_LOSSES, aggregate
        from r1cli.engines.batch import build_batch, length_sorted_micro_batches

        alg, tr = self.cfg.rl.algorithm, self.cfg.rl.train
        if not ro.rows:
            return {"skipped": 1.0}
        batch = build_batch(ro.prompt_ids, ro.response_ids, self.tok.pad_token_id)
        mask = batch.response_mask
        B = len(batch)
        t0 = time.time()
        rewards = torch.tensor(ro.scores, dtype=torch.float32)
        sampler_lp = torch.zeros_like(mask)
        for i, lp in enumerate(ro.sampler_logprobs):
            sampler_lp[i, : len(lp)] = torch.tensor(lp[: mask.size(1)])
        mbs = max(1, tr.micro_batch_size)
        need_old = alg.ppo_epochs > 1 or (
            tr.mini_batch_prompts is not None and tr.mini_batch_prompts < self.P
        )
        old_lp = ref_lp = None
        row_len = batch.attention_mask.sum(1).tolist()
        R = mask.size(1)

        def all_logprobs(model: Any = None) -> torch.Tensor:
            out = torch.zeros_like(mask)
            with torch.no_grad():
                for r in length_sorted_micro_batches(row_len, mbs, tr.token_budget):
                    mb, rw = batch.select_trimmed(r)
                    kw = {} if model is None else {"model": model}
                    out[r, :rw] = self.trainer.response_logprobs(mb, self.temperature, **kw)[0].float().cpu()
            return out

        if need_old:
            old_lp = all_logprobs()
        if self.ref is not None:
            ref_lp = all_logprobs(self.ref)
        token_rewards = None
        if alg.kl.use == "reward" and ref_lp is not None and alg.kl.coef > 0:
            base = old_lp if old_lp is not None else sampler_lp
            token_rewards = -alg.kl.coef * KL[_kl_name(alg.kl.type)](base, ref_lp) * mask
        shaped = shaping_token_rewards(ro.response_ids, list(self.cfg.rl.reward.shaping), step, R,
                                       float(self.adv_params.get("gamma", 1.0)))
        shaping_metrics: dict[str, float] = {}
        if shaped is not None:
            shaped = shaped * mask
            shaping_metrics["token_shaping_mean"] = float(shaped.sum(1).mean())
            token_rewards = shaped if token_rewards is None else token_rewards + shaped
        adv_rewards = normalize_rewards(rewards, self.cfg.rl.reward.normalize, self.reward_moments)
        if self.reward_moments is not None:
            shaping_metrics.update(reward_norm_mean=self.reward_moments.mean, reward_norm_std=self.reward_moments.std)
        extra: dict[str, Any] = {}
        values = None
        if self.critic is not None:
            values = self.critic.values(batch)
        if self.prm is not None:
            extra.update(self.prm.advantage_inputs(batch, ro, ref_lp))
        mrt_metrics: dict[str, float] = {}
        if self.mrt is not None:
            mrt_in, mrt_metrics = self.mrt.inputs(ro, step)
            extra.update(mrt_in)
        adv_out = ADVANTAGES[alg.advantage](
            rewards=adv_rewards,
            mask=mask,
            index=ro.group,
            values=values,
            token_rewards=token_rewards,
            **extra,
            **self.adv_params,
        )
        adv = adv_out.advantages
        # per-row extra inputs of the policy loss (e.g. OREAL token weights from the token-level RM)
        loss_extra: dict[str, torch.Tensor] = {}
        if self.prm is not None and hasattr(self.prm, "loss_inputs"):
            loss_extra = self.prm.loss_inputs(batch, ro)
        freeze = step < self.cfg.warmups.prm.freeze_policy_steps  # OREAL: RM-only warm-up steps
        t_lp = time.time() - t0
        t0 = time.time()
        # mini-batches of whole groups
        group_order = list(dict.fromkeys(ro.group))
        per_mini = tr.mini_batch_prompts or len(group_order)
        minis = [group_order[i : i + per_mini] for i in range(0, len(group_order), per_mini)]
        acc: dict[str, list[float]] = {}
        grad_norms = []
        ent_coef = alg.entropy_coef
        if self.entropy_ctl is not None:
            ent_coef = self.entropy_ctl.value
        want_entropy = True
        kl_in_loss = ref_lp is not None and alg.kl.use == "loss" and alg.kl.coef > 0
        # A sample whose advantage is 0 at every token adds exactly 0 to the loss and its gradient when the loss
        # is linear in the advantage and has no other per-token term; its forward/backward is skipped. The
        # aggregation denominators still count every row of the mini-batch, so the update is unchanged.
        # Metrics computed per trained token (entropy, clip fractions, log-prob gap) then cover trained rows.
        skip_zero = (
            self.skip_zero_adv
            and alg.policy_loss in ("ppo_clip", "reinforce")
            and not kl_in_loss
            and not ent_coef
            and alg.nll_coef == 0
            and not loss_extra
        )
        live_row = ((adv != 0) & (mask > 0)).any(1).tolist()
        skipped = 0
        for _ in range(0 if freeze else alg.ppo_epochs):
            for mini in minis:
                gset = set(mini)
                rows = [i for i in range(B) if ro.group[i] in gset]
                sub_mask = mask[rows]
                denom = _denominators(sub_mask, alg.loss_agg)
                mini_totals: dict[str, float] = {}
                if alg.policy_loss == "oreal":  # OREAL normalises by the whole mini-batch's pos/neg tokens
                    pos_rows = (rewards[rows] > 0).float()[:, None]
                    mini_totals = {
                        "total_tokens": float(sub_mask.sum()),
                        "total_pos_tokens": float((sub_mask * pos_rows).sum()),
                        "total_neg_tokens": float((sub_mask * (1 - pos_rows)).sum()),
                    }
                if skip_zero:
                    # keep one row when none is live so every backend sees a backward before its step
                    trained = [i for i in rows if live_row[i]] or rows[:1]
                    skipped += len(rows) - len(trained)
                    rows = trained
                for pos in length_sorted_micro_batches([row_len[i] for i in rows], mbs, tr.token_budget):
                    r = [rows[k] for k in pos]
                    mb, rw = batch.select_trimmed(r)

                    def cut(x: torch.Tensor, r: list[int] = r, rw: int = rw) -> torch.Tensor:
                        x = x[r]
                        return x[:, :rw] if x.dim() == 2 and x.size(1) == R else x

                    logp, ent = self.trainer.response_logprobs(
                        mb, self.temperature, with_entropy=want_entropy
                    )
                    m = cut(mask)
                    old = cut(old_lp) if old_lp is not None else logp.detach()
                    pg, pm = POLICY_LOSSES[alg.policy_loss](
                        logp=logp,
                        old_logp=old,
                        advantages=cut(adv),
                        mask=m,
                        **_loss_params(alg, rewards[r]),
                        **mini_totals,
                        **{k: cut(v) for k, v in loss_extra.items()},
                    )
                    loss_mat = pg
                    if kl_in_loss:
                        assert ref_lp is not None
                        kl = KL[_kl_name(alg.kl.type)](logp, cut(ref_lp))
                        loss_mat = loss_mat + alg.kl.coef * kl
                        _acc(acc, "kl", float((kl.detach() * m).sum() / m.sum().clamp(min=1)))
                    if (
                        ent is not None
                        and ent_coef
                        and (self.entropy_ctl is None or self.entropy_ctl.active(_masked_mean(ent, m)))
                    ):
                        loss_mat = loss_mat - ent_coef * ent
                    if alg.nll_coef > 0:
                        pos = torch.tensor([ro.correct[i] for i in r], dtype=logp.dtype)[:, None]
                        loss_mat = loss_mat - alg.nll_coef * logp * pos
                    loss = aggregate(
                        loss_mat,
                        m,
                        alg.loss_agg,
                        alg.loss_agg_norm or self.stage.max_response,
                        total_tokens=denom["total_tokens"],
                        total_seqs=denom["total_seqs"],
                    )
                    loss.backward()
                    for k, v in pm.items():
                        _acc(acc, k, float(v))
                    if ent is not None:
                        _acc(acc, "entropy", _masked_mean(ent.detach(), m))
                    if old_lp is None:
                        _acc(
                            acc,
                            "logprob_gap",
                            float(((logp.detach() - cut(sampler_lp)).abs() * m).sum() / m.sum().clamp(min=1)),
                        )
                grad_norms.append(self.trainer.step())
        out = {k: sum(v) / len(v) for k, v in acc.items()}
        out.update(mrt_metrics)
        out.update(shaping_metrics)
        if self.critic is not None and values is not None:
            out.update(self.critic.update(batch, returns=adv_out.returns, old_values=values, mask=mask))
        if self.prm is not None:
            out.update(self.prm.update(batch, ro))
        if old_lp is not None:
            out["logprob_gap"] = float(((old_lp - sampler_lp).abs() * mask).sum() / mask.sum().clamp(min=1))
        if self.entropy_ctl is not None and "entropy" in out:
            out["entropy_coef"] = self.entropy_ctl.update(out["entropy"])
        out.update(
            {
                "grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else 0.0,
                "lr": self.trainer.lr,
                "zero_adv_frac": float(((adv.abs() * mask).sum(1) == 0).float().mean()),
                "rows_skipped_zero_adv": float(skipped) / max(1, alg.ppo_epochs),
                "t_logprob": t_lp,
                "t_update": time.time() - t0,
                "t_sync": 0.0,
                "update_tokens_per_s": float(batch.attention_mask.sum())
                * alg.ppo_epochs
                / max(time.time() - t0, 1e-9),
                "samples": float(B),
            }
        )
        return out

    # --- loop -----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from r1cli.train.checkpoint import CheckpointManager, rng_state, set_rng_state
        from r1cli.utils.io import append_jsonl, read_jsonl

        st = self.stage
        ckpt = CheckpointManager(self.stage_dir / "checkpoints", keep=self.cfg.rl.checkpoint.keep)
        start = 0
        loaded = ckpt.load()
        if loaded is not None:
            state, meta = loaded
            self.trainer.load_state_dict(state["trainer"])
            if self.critic is not None and "critic" in state:
                self.critic.load_state_dict(state["critic"])
            if self.prm is not None and "prm" in state:
                self.prm.load_state_dict(state["prm"])
            self.loader.load(meta["loader"])
            set_rng_state(state["rng"])
            if self.entropy_ctl is not None and "entropy_ctl" in state:
                self.entropy_ctl.load_state_dict(state["entropy_ctl"])
            if self.reward_moments is not None and "reward_moments" in state:
                self.reward_moments.load_state_dict(state["reward_moments"])
            if self.ref is not None and "reference" in state:
                self.load_reference_state(state["reference"])
            start = int(meta["step"])
            log(f"rl {st.name}: resumed from checkpoint step {start} ({ckpt.latest()})")
        # drop log lines of steps after the checkpoint (they will be redone identically)
        for path in (self.metrics_path, self.traj_path):
            if path.exists():
                from r1cli.utils.io import atomic_write_jsonl

                atomic_write_jsonl(path, [r for r in read_jsonl(path) if int(r.get("step", 0)) < start])
        pool = None
        from r1cli.rewards import GradingPool

        rc = self.cfg.rl.reward
        if {rc.name, *(s.name for s in rc.by_task.values())} & {"math", "code"}:
            pool = GradingPool(workers=self.cfg.rl.reward.workers, deadline_s=self.cfg.rl.reward.deadline_s)
            pool.__enter__()
        self.pool = pool
        last: dict[str, float] = {}
        first: dict[str, float] = {}
        try:
            with Progress(st.steps, f"rl {st.name}", start=start) as prog:
                reset_every = self.cfg.rl.algorithm.kl.ref_reset_every
                for step in range(start, st.steps):
                    t0 = time.time()
                    if reset_every and step > 0 and step % reset_every == 0 and self.ref is not None:
                        self.reset_reference()
                        log(f"rl {st.name}: step {step}: reference reset to the current policy")
                    ro, m = self.collect(step)
                    m.update(self.update(ro, step))
                    m["t_step"] = time.time() - t0
                    m["step"] = step
                    m["stage"] = st.name
                    append_jsonl(self.metrics_path, m)
                    last = m
                    _health(m, st.name, step, first)
                    prog.update(
                        1,
                        info=f"reward {m['reward_mean']:.3f} acc {m['acc']:.3f} "
                        f"len {m['response_len_mean']:.1f}",
                    )
                    done = step + 1
                    if done % self.cfg.rl.checkpoint.every == 0 and done < st.steps:
                        state = {"trainer": self.trainer.state_dict(), "rng": rng_state()}
                        if self.entropy_ctl is not None:
                            state["entropy_ctl"] = self.entropy_ctl.state_dict()
                        if self.reward_moments is not None:
                            state["reward_moments"] = self.reward_moments.state_dict()
                        if reset_every and self.ref is not None and done > reset_every:
                            state["reference"] = self.reference_state()
                        if self.critic is not None:
                            state["critic"] = self.critic.state_dict()
                        if self.prm is not None:
                            state["prm"] = self.prm.state_dict()
                        ckpt.save(done, state, {"loader": self.loader.state()})
        finally:
            if pool is not None:
                pool.__exit__(None, None, None)
        return last

    def export(self, out_dir: Path) -> None:
        self.trainer.export(out_dir, self.tok)
        if self.critic is not None:
            self.critic.export(self.stage_dir / "critic")


def _pass_rate_prior(gold: dict[str, Any], default: float) -> float:
    """The difficulty filter's measured pass rate of a row (``meta.pass_rate``, in its gold view from
    ``gold_of``), else ``default``."""
    v = gold.get("pass_rate")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def _kl_name(t: str) -> str:
    return "k3" if t == "low_var_kl" else t


def _loss_params(alg: Any, rewards: torch.Tensor) -> dict[str, Any]:
    p = dict(alg.loss_params)
    if alg.policy_loss == "ppo_clip":
        p.setdefault("clip_low", alg.clip_low)
        p.setdefault("clip_high", alg.clip_high)
        p.setdefault("dual_clip", alg.dual_clip)
    elif alg.policy_loss in ("topr", "oreal"):
        p.setdefault("rewards", rewards)
    return p


def _denominators(mask: torch.Tensor, mode: str) -> dict[str, float]:
    return {"total_tokens": float(mask.sum()), "total_seqs": float((mask.sum(1) > 0).sum())}


def _acc(d: dict[str, list[float]], k: str, v: float) -> None:
    d.setdefault(k, []).append(v)


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> float:
    return float((x * m).sum() / m.sum().clamp(min=1))


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _health(m: dict[str, Any], stage: str, step: int, first: dict[str, float]) -> None:
    """Warnings a person should see in the log: entropy collapse (below 5 % of the stage's first value),
    KL blow-up, reward stuck at 0."""
    ent = m.get("entropy")
    if ent is not None:
        first.setdefault("entropy", ent)
        if step > 2 and ent < 0.05 * first["entropy"]:
            log(
                f"health: rl {stage} step {step}: entropy collapsed to {ent:.4f} "
                f"(first step {first['entropy']:.4f})"
            )
    if m.get("kl") is not None and m["kl"] > 1.0:
        log(f"health: rl {stage} step {step}: KL blow-up ({m['kl']:.3f})")
    if step >= 5 and m.get("reward_mean", 1) == 0 and m.get("acc", 1) == 0:
        log(f"health: rl {stage} step {step}: reward stuck at 0")


def run_rl_stage(cfg: Recipe, stage_name: str, *, data_path: Path, init_model: str, stage_dir: Path) -> dict:
    from r1cli.utils.io import atomic_write_json

    stages = {s.name: s for s in cfg.rl.stages}
    if stage_name not in stages:
        raise ValueError(f"no RL stage {stage_name!r} in the recipe (stages: {list(stages)})")
    runner = RLStageRunner(
        cfg, stages[stage_name], data_path=data_path, init_model=init_model, stage_dir=stage_dir
    )
    last = runner.run()
    runner.export(stage_dir / "model")
    atomic_write_json(
        stage_dir / "DONE", {"stage": stage_name, "steps": stages[stage_name].steps, "last": last}
    )
    return last
