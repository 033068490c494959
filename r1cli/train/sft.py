"""SFT cold start: next-token loss on response tokens only, batches sampled deterministically from the seed,
checkpointed for resume, exported in HF format."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch

from r1cli.config import Recipe
from r1cli.utils.progress import Progress, log


def tokenize_sft(
    rows: list[dict[str, Any]], tokenizer: Any, response_key: str = "response", max_len: int = 4096
) -> list[tuple[list[int], list[int]]]:
    from r1cli.data.templates import render_prompt

    out = []
    eos = tokenizer.eos_token_id
    for r in rows:
        resp = r.get(response_key)
        if not resp:
            continue
        p = render_prompt(tokenizer, r)
        rid = list(tokenizer(resp, add_special_tokens=False)["input_ids"]) + [eos]
        if len(p) + len(rid) <= max_len:
            out.append((p, rid))
    return out


def run_sft(
    cfg: Recipe, *, data_path: Path, init_model: str, out_dir: Path, ckpt_dir: Path, dist: Any | None = None
) -> dict[str, Any]:
    """Data-parallel over the launcher's ranks (``dist``, default from the environment): every rank draws the same
    global batch and trains its rows ``rank::world``; the loss is the global token mean (token count summed over
    ranks), gradients are summed in the trainer's step, so N ranks train exactly as one. Rank 0 writes."""
    from r1cli.engines.batch import build_batch
    from r1cli.engines.dist import Dist
    from r1cli.engines.hf_rollout import load_model, load_tokenizer
    from r1cli.engines.torch_train import TorchTrainer
    from r1cli.train.checkpoint import CheckpointManager, rng_state, set_rng_state, stage_fingerprint
    from r1cli.utils.io import read_parquet
    from r1cli.utils.tracking import StageLogger

    sc = cfg.warmups.sft
    torch.manual_seed(cfg.seed)
    tok = load_tokenizer(init_model)
    model = load_model(init_model, dtype="float32")
    rows = read_parquet(data_path)
    examples = tokenize_sft(rows, tok, sc.response_key, sc.max_len)
    if not examples:
        raise ValueError(f"{data_path}: no rows with a '{sc.response_key}' field for SFT")
    dist = dist if dist is not None else Dist.from_env()
    trainer = TorchTrainer(
        model,
        device=dist.device,  # the rank's GPU when there are GPUs (NCCL reduces GPU tensors only)
        dist=dist,
        lr=sc.lr,
        betas=(0.9, 0.99),
        weight_decay=sc.weight_decay,
        grad_clip=1.0,
        schedule=sc.schedule,
        warmup_steps=sc.warmup_steps,
        total_steps=sc.steps,
        min_lr_ratio=sc.min_lr_ratio,
    )
    ckpt = CheckpointManager(ckpt_dir, keep=2, fingerprint=stage_fingerprint(cfg, "sft", [data_path, init_model]))
    step, cursor, order, epoch = 0, 0, list(range(len(examples))), 0
    random.Random(cfg.seed).shuffle(order)
    loaded = ckpt.load() if dist.is_main else None  # rank 0 first: it sets aside stale / damaged checkpoints
    dist.barrier()
    if not dist.is_main:
        loaded = ckpt.load()
    if loaded is not None:
        state, meta = loaded
        trainer.load_state_dict(state["trainer"])
        set_rng_state(state["rng"])
        step, cursor, epoch = meta["step"], meta["cursor"], meta["epoch"]
        order = list(range(len(examples)))
        random.Random(cfg.seed + epoch).shuffle(order)
        log(f"sft: resumed from checkpoint step {step} ({ckpt.loaded})")
    # lines after the checkpoint go (logged every 10 steps: a resumed step-50 run keeps the step-50 line)
    tracker = StageLogger.for_recipe(cfg, metrics_path=out_dir.parent / "metrics.jsonl",
                                     resume_step=step + 1, enabled=dist.is_main)
    loss = torch.tensor(float("nan"))
    tokens, t_log = 0, time.time()
    with tracker, Progress(sc.steps, "sft", start=step) as prog:
        while step < sc.steps:
            if cursor + sc.batch_size > len(order):
                epoch += 1
                cursor = 0
                order = list(range(len(examples)))
                random.Random(cfg.seed + epoch).shuffle(order)
            idx = order[cursor : cursor + sc.batch_size]
            cursor += sc.batch_size
            mine = idx[dist.rank :: dist.world] or idx[:1]  # a rank without rows joins with a zero-weight row
            batch = build_batch(
                [examples[i][0] for i in mine], [examples[i][1] for i in mine], tok.pad_token_id
            )
            weight = 1.0 if idx[dist.rank :: dist.world] else 0.0
            logp, _ = trainer.response_logprobs(batch)
            mask = batch.response_mask.to(logp.device) * weight
            total = dist.sum([float(mask.sum())])[0]
            loss_local = -(logp * mask).sum() / max(total, 1.0)
            loss_local.backward()
            gn = trainer.step()
            loss = torch.tensor(dist.sum([float(loss_local.detach())])[0])
            tokens += int(batch.attention_mask.sum())
            step += 1
            prog.update(1, info=f"loss {loss.item():.3f}")
            if step % 10 == 0 or step == sc.steps:
                now = time.time()
                all_tokens = dist.sum([float(tokens)])[0]
                tracker.log(step, {"step": step, "loss": loss.item(), "grad_norm": gn, "lr": trainer.lr,
                                   "tokens_per_s": all_tokens / max(now - t_log, 1e-9), "ranks": dist.world})
                tokens, t_log = 0, now
            if step % 50 == 0 and step < sc.steps:
                if dist.is_main:
                    ckpt.save(
                        step,
                        {"trainer": trainer.state_dict(), "rng": rng_state()},
                        {"cursor": cursor, "epoch": epoch},
                    )
                dist.barrier()
    trainer.export(out_dir, tok)
    log(f"sft: {sc.steps} steps done, final loss {loss.item():.4f} → {out_dir}")
    return {"steps": sc.steps, "loss": float(loss.item())}
