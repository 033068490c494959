"""Worker the DeepSpeed tests launch (1 or 2 ranks): trains the tiny model on a fixed RL-style objective and
writes the trajectory as JSON (rank 0).

Objective: every step a deterministic batch of 16 rows (random prompt/response token ids, advantages), the
PPO-clip loss with an entropy bonus, aggregated with the whole batch's denominators; the aggregation mode
cycles through all four modes step by step. Each rank takes a contiguous shard of rows and splits it into
micro-batches of ``--mbs`` rows (so 2 ranks see exactly the rows 1 rank sees, in other micro-batches).

Usable in-process too (``run(args)``), which the torch-backend reference uses.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch

ROWS = 16


def step_batch(step: int, seed: int = 0) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """(TokenBatch, advantages (B, 1), old log-prob offsets (B, R)) of a step; identical on every rank."""
    from r1cli.engines.batch import build_batch

    g = torch.Generator().manual_seed(1000 * seed + step)
    prompts, resps = [], []
    for _ in range(ROWS):
        pl = int(torch.randint(3, 10, (1,), generator=g))
        rl = int(torch.randint(0, 14, (1,), generator=g))  # some rows without a response token
        prompts.append(torch.randint(5, 300, (pl,), generator=g).tolist())
        resps.append(torch.randint(5, 300, (rl,), generator=g).tolist())
    batch = build_batch(prompts, resps, pad_id=0, response_len=14)
    adv = torch.randn(ROWS, 1, generator=g)
    offset = 0.3 * torch.randn(batch.response_ids.shape, generator=g)  # old = new + offset: clipping active
    return batch, adv, offset


def make_trainer(args: argparse.Namespace, model: Any) -> Any:
    kw = dict(lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01, grad_clip=1.0, schedule="cosine",
              warmup_steps=1, total_steps=args.steps, min_lr_ratio=0.1, optimizer=args.optimizer)
    if args.backend == "torch":
        from r1cli.engines.torch_train import TorchTrainer

        return TorchTrainer(model, **kw)
    from r1cli.engines.deepspeed_train import DeepSpeedTrainer

    return DeepSpeedTrainer(model, zero_stage=args.zero, dtype="float32", micro_batch_size=args.mbs,
                            pack=args.pack, **kw)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from r1cli.algos import AGG_MODES, POLICY_LOSSES, aggregate
    from r1cli.engines.hf_rollout import load_model

    model = load_model(args.model, dtype="float32")
    trainer = make_trainer(args, model)
    rank = int(getattr(trainer, "rank", 0))
    world = int(getattr(trainer, "world_size", 1))
    ckpt = None
    start = 0
    if args.ckpt_dir:
        from r1cli.train.checkpoint import CheckpointManager

        ckpt = CheckpointManager(args.ckpt_dir, keep=1)
        loaded = ckpt.load() if args.resume else None
        if loaded is not None:
            state, meta = loaded
            trainer.load_state_dict(state["trainer"])
            start = int(meta["step"])
    out: dict[str, Any] = {"world": world, "start": start, "steps": [], "weights_start": weight_summary(trainer)}
    if args.check_pack and args.backend == "deepspeed":
        out["pack_check"] = pack_check(trainer)
    shard = ROWS // world
    for step in range(start, args.steps):
        batch, adv, offset = step_batch(step)
        mode = AGG_MODES[step % len(AGG_MODES)]
        mask = batch.response_mask
        den = {"total_tokens": float(mask.sum()), "total_seqs": float((mask.sum(1) > 0).sum())}
        rows = list(range(rank * shard, (rank + 1) * shard))
        if hasattr(trainer, "global_denominators"):
            g = trainer.global_denominators(mask[rows])
            assert g == den, (g, den)
        total = torch.zeros((), dtype=torch.float64)
        for j in range(0, len(rows), args.mbs):
            r = rows[j : j + args.mbs]
            mb = batch.select(r)
            logp, ent = trainer.response_logprobs(mb, 1.0, with_entropy=True)
            m = mask[r]
            pg, _ = POLICY_LOSSES["ppo_clip"](logp=logp, old_logp=(logp.detach() + offset[r]) * m,
                                              advantages=adv[r].expand_as(logp), mask=m, clip_low=0.2,
                                              clip_high=0.28, dual_clip=3.0)
            loss = aggregate(pg - 0.01 * ent, m, mode, norm=14.0, **den)
            loss.backward()
            total += float(loss.detach())
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        gn = trainer.step()
        out["steps"].append(
            {"step": step, "mode": mode, "loss": float(total), "grad_norm": gn, "lr": trainer.lr}
        )
        done = step + 1
        if ckpt is not None and args.save_at == done:
            from r1cli.train.checkpoint import rng_state

            state = {"trainer": trainer.state_dict(), "rng": rng_state()}
            if rank == 0:
                ckpt.save(done, state, {})
            barrier(world)
            if args.kill_after_save:
                os.kill(os.getpid(), signal.SIGKILL)
    out["weights"] = weight_summary(trainer)
    if args.export:
        trainer.export(args.export, None)
    return out


def weight_summary(trainer: Any) -> dict[str, float]:
    """Sum and sum of squares of every parameter (ZeRO-3 partitions gathered)."""
    if hasattr(trainer, "named_weights"):
        items = list(trainer.named_weights())
    else:
        items = list(trainer.model.named_parameters()) + list(trainer.model.named_buffers())
    seen: set[int] = set()
    s = sq = 0.0
    for _, t in items:
        if id(t) in seen:
            continue
        seen.add(id(t))
        s += float(t.detach().double().sum())
        sq += float(t.detach().double().pow(2).sum())
    return {"sum": s, "sumsq": sq}


def pack_check(trainer: Any) -> dict[str, float]:
    """Max |packed - padded| of response log-probs and entropies (and of the gradient of a loss on them)."""
    from r1cli.engines.deepspeed_train import pack_batch, response_logprobs_of

    batch, adv, _ = step_batch(99)
    m = batch.response_mask
    model = trainer.model
    ref = [p for p in model.parameters()]

    def grads(b: Any) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        lp, ent = response_logprobs_of(model, b, 1.0, True)
        loss = ((-adv * lp - 0.01 * ent) * m).sum() / m.sum()
        gs = torch.autograd.grad(loss, ref)
        return lp * m, ent * m, list(gs)

    lp1, e1, g1 = grads(batch)
    lp2, e2, g2 = grads(pack_batch(batch))
    return {
        "logp": float((lp1 - lp2).abs().max()),
        "entropy": float((e1 - e2).abs().max()),
        "grad": max(float((a - b).abs().max()) for a, b in zip(g1, g2, strict=True)),
        "logp_scale": float(lp1.abs().max()),
    }


def barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--backend", default="deepspeed", choices=["torch", "deepspeed"])
    p.add_argument("--zero", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--mbs", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "adafactor"])
    p.add_argument("--pack", action="store_true")
    p.add_argument("--check-pack", action="store_true")
    p.add_argument("--ckpt-dir", default=None)
    p.add_argument("--save-at", type=int, default=0)
    p.add_argument("--kill-after-save", action="store_true")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", default=None)
    return p.parse_args(argv)


def main() -> None:
    args = parse()
    out = run(args)
    world = out["world"]
    if int(os.environ.get("RANK", "0")) == 0 and args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(out))
        os.replace(tmp, args.out)
    if world > 1 or args.backend == "deepspeed":
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # DeepSpeed/gloo can abort at interpreter exit (ML-STACK-NOTES §4)


if __name__ == "__main__":
    main()
