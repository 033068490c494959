"""Value pretraining (``r1 train value``): VC-PPO (Yuan et al. 2025, arXiv 2503.01491, §4) / VAPO (Yue et al.
2025, arXiv 2504.05118, §4.1). Before policy training, sample rollouts from the *fixed* initial policy and
regress the critic on their Monte-Carlo returns (GAE with λ = 1, so the target of every token is the
discounted outcome reward G_t = Σ_{s≥t} γ^{s−t} r_s; γ from ``rl.algorithm.advantage_params``, default 1), for
``warmups.value.steps`` steps at ``warmups.value.lr``. Each step's rollouts get ``warmups.value.epochs`` passes
of one critic optimizer step per ``warmups.value.mini_batch_size`` rollouts: rollouts are the expensive part,
and with one optimizer step per batch a short warm-up learns the mean return only (explained variance ~0).
The critic then initialises the first RL stage's critic (r1cli.train.critic.make_critic).

Inputs read from the frozen recipe: policy = the start model (SFT model when enabled, else base); critic start =
``rl.train.critic_init`` when set (e.g. a reward model, VAPO; relative paths resolve inside the run dir; a critic
export keeps its value head, other models get a zero head), else the start model with a zero head; prompts = the
RL training data; rewards = ``rl.reward`` (with its shaping terms); n / max_response / temperature / prompts per
step from the first RL stage. Outputs: the critic export (``warmup/value/model``) and one metrics line per step
(``warmup/value/metrics.jsonl``: value_loss, explained_var, value_mean, return_mean, acc, response_len_mean).
Checkpoints every ``rl.checkpoint.every`` steps (critic + optimizer + RNG + prompt-loader position); a rerun
resumes from the newest one and redoes the later steps identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from r1cli.config import Recipe
from r1cli.utils.progress import Progress, log


def run_value_warmup(
    cfg: Recipe,
    *,
    data_path: Path,
    init_model: str,
    out_dir: Path,
    ckpt_dir: Path,
    metrics_path: Path,
    run_dir: Path | None = None,
    dist: Any | None = None,
) -> dict[str, Any]:
    """Pretrain the critic (module docstring); returns the last step's metrics. ``run_dir`` resolves a
    relative ``rl.train.critic_init``; None: the run dir of ``out_dir`` when it is ``<run>/warmup/value/model``.

    Data-parallel over the launcher's ranks (``dist``, default from the environment): every rank draws the same
    prompts and samples its share (prompt i of a step is sampled with its own seed, wherever it runs), the
    critic's mini-batches are slices of the step's global rollout order with token counts and gradients summed
    over ranks, so N ranks train as one. Rank 0 writes."""
    from r1cli.data.prepare import gold_of
    from r1cli.data.templates import render_prompt
    from r1cli.engines.dist import Dist
    from r1cli.engines.hf_rollout import HFRollout, load_model, load_tokenizer
    from r1cli.engines.rollout import SamplingSpec
    from r1cli.train.checkpoint import CheckpointManager, rng_state, stage_fingerprint
    from r1cli.train.critic import critic_init_path
    from r1cli.train.prompts import PromptLoader, step_seed
    from r1cli.utils.io import read_parquet
    from r1cli.utils.tracking import StageLogger

    dist = dist if dist is not None else Dist.from_env()
    vc = cfg.warmups.value
    rl = cfg.rl
    if not rl.stages:
        raise ValueError("value warm-up samples like the first RL stage, but rl.stages is empty")
    st = rl.stages[0]
    torch.manual_seed(cfg.seed)
    dtype = "float32" if rl.train.dtype == "float32" else "bfloat16"
    tok = load_tokenizer(init_model)
    policy = load_model(init_model, dtype=dtype).eval()
    for p in policy.parameters():
        p.requires_grad_(False)
    rollout = HFRollout(policy, tok, max_batch=512)
    if run_dir is None and Path(out_dir).parts[-3:] == ("warmup", "value", "model"):
        run_dir = Path(out_dir).parents[2]
    init_critic = critic_init_path(cfg, run_dir)
    critic = _fresh_critic(cfg, init_critic if init_critic is not None else init_model,
                           "rl.train.critic_init" if init_critic is not None else "the start model", dtype, dist)
    rows = read_parquet(data_path)
    if not rows:
        raise ValueError(f"{data_path}: no training rows")
    prompts = [render_prompt(tok, r)[-rl.rollout.max_prompt :] for r in rows]
    golds = [gold_of(r) for r in rows]
    loader = PromptLoader(len(rows), step_seed(cfg.seed, "value-warmup"))
    temperature = st.temperature if st.temperature is not None else rl.rollout.temperature
    per_step = st.prompts_per_step or rl.rollout.prompts_per_step
    if per_step < dist.world:
        raise ValueError(f"value warm-up: {per_step} prompts per step cannot be shared by {dist.world} ranks "
                         "(rl.rollout.prompts_per_step >= the job's ranks)")
    gamma = float(rl.algorithm.advantage_params.get("gamma", 1.0))

    inputs = [data_path, init_model, *([init_critic] if init_critic is not None else [])]
    ckpt = CheckpointManager(ckpt_dir, keep=rl.checkpoint.keep, fingerprint=stage_fingerprint(cfg, "value", inputs))
    start = _resume(ckpt, critic, loader, dist)
    # metrics lines of steps after the checkpoint go (they will be redone identically)
    tracker = StageLogger.for_recipe(cfg, metrics_path=metrics_path, run_dir=run_dir, resume_step=start,
                                     enabled=dist.is_main)

    from r1cli.rewards.pool import grading_pool

    last: dict[str, Any] = {}
    spec = dict(n=st.n, temperature=temperature, top_p=rl.rollout.top_p, top_k=rl.rollout.top_k,
                max_tokens=st.max_response, stop=tuple(rl.rollout.stop))
    with grading_pool(rl.reward) as pool, tracker, Progress(vc.steps, "value warm-up", start=start) as prog:
        for step in range(start, vc.steps):
            idx = loader.next(per_step)
            mine = list(range(dist.rank, len(idx), dist.world))  # positions of this rank's prompts in the draw
            groups = rollout.generate([prompts[idx[g]] for g in mine], SamplingSpec(**spec),
                                      seeds=[step_seed(cfg.seed, "value-warmup", step, g) for g in mine])
            m = _value_step(cfg, critic, tok, groups, [golds[idx[g]] for g in mine], step, gamma, pool,
                            positions=mine, n=st.n, prompts_in_step=len(idx), dist=dist)
            tracker.log(step, m)
            last = m
            prog.update(1, info=f"value loss {m['value_loss']:.4f} ev {m['explained_var']:.3f}")
            done = step + 1
            if done % rl.checkpoint.every == 0 and done < vc.steps:
                if dist.is_main:
                    ckpt.save(done, {"critic": critic.state_dict(), "rng": rng_state()}, {"loader": loader.state()})
                dist.barrier()
    critic.export(out_dir, tok)
    log(f"value warm-up: {vc.steps} steps → {out_dir}")
    return last


def _fresh_critic(cfg: Recipe, start: str, kind: str, dtype: str, dist: Any) -> Any:
    """The critic to pretrain, from ``start`` (the start model or ``rl.train.critic_init``), with a fresh head."""
    from r1cli.train.critic import Critic, fresh_critic

    rl, vc = cfg.rl, cfg.warmups.value
    critic_model, critic_head, origin = fresh_critic(start, dtype=dtype)
    log(f"value warm-up: critic from {kind} ({start}), {origin}")
    return Critic(
        critic_model,
        critic_head,
        lr=vc.lr,
        betas=tuple(rl.train.betas),  # type: ignore[arg-type]
        weight_decay=rl.train.weight_decay,
        grad_clip=rl.train.grad_clip,
        micro_batch_size=rl.train.micro_batch_size,
        value_clip=None,  # plain regression on MC returns: no trust region around a fixed-policy target
        epochs=vc.epochs,
        mini_batch_size=vc.mini_batch_size,
        dist=dist,
    )


def _resume(ckpt: Any, critic: Any, loader: Any, dist: Any) -> int:
    """Load the newest checkpoint into the critic, the RNG and the loader; the step to start from (0: fresh).
    Rank 0 loads first: it sets aside stale or damaged checkpoints before the other ranks look."""
    from r1cli.train.checkpoint import set_rng_state

    loaded = ckpt.load() if dist.is_main else None
    dist.barrier()
    if not dist.is_main:
        loaded = ckpt.load()
    if loaded is None:
        return 0
    state, meta = loaded
    critic.load_state_dict(state["critic"])
    set_rng_state(state["rng"])
    loader.load(meta["loader"])
    start = int(meta["step"])
    log(f"value warm-up: resumed from checkpoint step {start} ({ckpt.loaded})")
    return start


def _value_step(cfg: Recipe, critic: Any, tok: Any, groups: list[list[Any]], golds: list[dict[str, Any]],
                step: int, gamma: float, pool: Any, *, positions: list[int] | None = None, n: int = 1,
                prompts_in_step: int | None = None, dist: Any | None = None) -> dict[str, Any]:
    """Grade this rank's rollouts of one step, regress the critic on their Monte-Carlo returns; the step's
    metrics over all ranks. ``positions``: each group's place in the step's draw (its rows' global order is
    position x n + sample)."""
    from r1cli.algos import ADVANTAGES
    from r1cli.engines.batch import build_batch
    from r1cli.train.scoring import score

    flat = [(gi, s) for gi, g in enumerate(groups) for s in g]
    texts = [s.text for _, s in flat]
    lens = [len(s.response_ids) for _, s in flat]
    pos = positions if positions is not None else list(range(len(groups)))
    scores, correct = score(cfg, texts, [golds[gi] for gi, _ in flat], [s.finished for _, s in flat], lens,
                            [(step, pos[gi]) for gi, _ in flat], pool)
    order = [pos[gi] * n + j for gi, g in enumerate(groups) for j in range(len(g))]
    global_rows = (prompts_in_step if prompts_in_step is not None else len(groups)) * n
    batch = build_batch([s.prompt_ids for _, s in flat], [s.response_ids for _, s in flat], tok.pad_token_id)
    mask = batch.response_mask
    values = critic.values(batch)
    # λ = 1: returns = Â(λ=1) + V = the discounted Monte-Carlo return, whatever V is
    returns = ADVANTAGES["gae"](rewards=torch.tensor(scores, dtype=torch.float32), mask=mask, values=values,
                                gamma=gamma, lam=1.0, whiten=False).returns
    m = critic.update(batch, returns=returns, old_values=values, mask=mask, order=order, global_rows=global_rows)
    k, c, r, ln = (dist.sum if dist is not None else list)(
        [float(len(scores)), float(sum(correct)), float(sum(scores)), float(sum(lens))])
    m.update({"step": step, "acc": c / max(1.0, k), "reward_mean": r / max(1.0, k),
              "response_len_mean": ln / max(1.0, k), "ranks": dist.world if dist is not None else 1})
    return m
