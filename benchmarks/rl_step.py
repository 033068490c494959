"""Benchmark: r1's RL step vs TRL's GRPOTrainer step, same tiny model, same batch, one process, one run.

Settings (/work/shared/bench/trl-baseline.md): the embedded tiny model after a short SFT warm-up on 1-3 digit
addition (so rewards are not all zero); 16 prompts x 8 samples, at most 40 new tokens, temperature 1, top-p
1, top-k off; AdamW lr 1e-4 constant, betas (0.9, 0.99), weight decay 0, grad-norm clip 1; no KL; token-mean
loss (TRL ``loss_type="dapo"``); clip 0.2 / 0.28; group-normalised advantages; one optimisation pass.
Reward: exact match of the ``<answer>`` content decoded from the token ids (r1's ``exact`` reward on both
sides; TRL's reward function decodes ``completion_ids`` itself so tags survive).

r1's side is r1's real step: ``RLStageRunner.collect(step)`` (generation + reward + dynamic sampling) then
``RLStageRunner.update(ro, step)``, with a Recipe from ``r1cli.config.resolve("tiny", overrides)``.
Variants: ``off`` (no dynamic sampling: the same work as TRL), ``dapo`` (the recipe's DAPO filter: groups with
all-equal rewards are dropped and refilled by more generation rounds) and optionally ``ds`` (``off`` with
``rl.train.backend=deepspeed``, ZeRO-2, 1 process).

Timing: 2 warm-up steps per side, then the median of >= 10 timed steps. The machine is shared, so by default
the sides are interleaved step by step (a TrainerCallback runs one r1 step after each TRL step, outside TRL's
timed window): both see the same load, and the ratio is what counts, not absolute seconds.
Prints per-side medians, r1's time split (generate / reward / update), and last ``ratio r1/trl = X``
for the ``off`` variant (same work as TRL).

Run:  python benchmarks/rl_step.py [--workdir DIR] [--sft-steps 250] [--steps 12] [--variants off,dapo]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

MAX_RESPONSE = 40
PROMPTS = 16
N = 8
LR = 1e-4


def setup(workdir: Path, sft_steps: int) -> tuple[Path, Path]:
    """Tiny base model, prepared addition data, SFT warm-up; reused when already in ``workdir``."""
    from r1cli.config import resolve
    from r1cli.data.prepare import prepare
    from r1cli.engines.tiny_model import build_tiny
    from r1cli.train.sft import run_sft

    base = workdir / "base" / "model"
    if not (base / "config.json").exists():
        build_tiny(base, seed=0)
    data = workdir / "data" / "train.parquet"
    if not data.exists():
        prepare(
            "synth:addition", data, split="train", task="addition", template="tiny-chat", size=2000, seed=0
        )
    sft = workdir / f"sft{sft_steps}" / "model"
    if not (sft / "config.json").exists():
        cfg = resolve("tiny", [f"warmups.sft.steps={sft_steps}"])
        t0 = time.time()
        run_sft(cfg, data_path=data, init_model=str(base), out_dir=sft, ckpt_dir=sft.parent / "checkpoints")
        print(f"sft warm-up: {sft_steps} steps in {time.time() - t0:.1f} s", flush=True)
    return data, sft


def r1_overrides(variant: str, steps: int) -> list[str]:
    ov = [
        f"rl.rollout.prompts_per_step={PROMPTS}",
        "rl.rollout.temperature=1.0",
        "rl.rollout.top_p=1.0",
        "rl.rollout.top_k=0",
        f"rl.train.lr={LR}",
        "rl.train.betas=[0.9,0.99]",
        "rl.train.weight_decay=0.0",
        "rl.train.grad_clip=1.0",
        "rl.train.schedule=constant",
        "rl.train.warmup_steps=0",
        f"rl.train.micro_batch_size={PROMPTS * N}",
        "rl.algorithm.advantage=grpo",
        "rl.algorithm.policy_loss=ppo_clip",
        "rl.algorithm.loss_agg=token-mean",
        "rl.algorithm.clip_low=0.2",
        "rl.algorithm.clip_high=0.28",
        "rl.algorithm.kl.coef=0.0",
        "rl.algorithm.entropy_coef=0.0",
        "rl.algorithm.ppo_epochs=1",
        "rl.reward.name=exact",
        f"rl.stages.0.steps={steps}",
        f"rl.stages.0.max_response={MAX_RESPONSE}",
        f"rl.stages.0.n={N}",
        "rl.checkpoint.every=100000",
    ]
    ov.append("rl.rollout.dynamic_sampling.filter=" + ("dapo" if variant == "dapo" else "null"))
    if variant == "ds":
        ov += ["rl.train.backend=deepspeed", "rl.train.zero_stage=2", "rl.train.dtype=float32"]
    return ov


class R1Side:
    def __init__(self, variant: str, data: Path, sft: Path, workdir: Path, total_steps: int) -> None:
        from r1cli.config import resolve
        from r1cli.train.rl import RLStageRunner

        self.variant = variant
        self.cfg = resolve("tiny", r1_overrides(variant, total_steps))
        stage = self.cfg.rl.stages[0]
        sd = workdir / f"r1_{variant}_{os.getpid()}"
        sd.mkdir(parents=True, exist_ok=True)
        self.runner = RLStageRunner(self.cfg, stage, data_path=data, init_model=str(sft), stage_dir=sd)
        self.step_i = 0
        self.times: list[float] = []
        self.parts: list[dict[str, float]] = []

    def run(self, n: int, timed: bool) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            ro, m = self.runner.collect(self.step_i)
            t1 = time.perf_counter()
            u = self.runner.update(ro, self.step_i)
            dt = time.perf_counter() - t0
            self.step_i += 1
            if timed:
                self.times.append(dt)
                self.parts.append(
                    {
                        "generate": m["t_generate"],
                        "reward": m["t_reward"],
                        "collect_other": (t1 - t0) - m["t_generate"] - m["t_reward"],
                        "update": time.perf_counter() - t1,
                        "logprob": u.get("t_logprob", 0.0),
                        "reward_mean": m["reward_mean"],
                        "gen_rounds": m["gen_rounds"],
                        "gen_tokens_per_s": m["gen_tokens_per_s"],
                        "samples": u.get("samples", 0.0),
                    }
                )


def trl_side(
    data: Path, sft: Path, workdir: Path, warmup: int, timed: int, between: Any = None
) -> tuple[list[float], list[float]]:
    """Per-step seconds of TRL's GRPOTrainer (after ``warmup`` steps) and its mean rewards."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1cli.data.prepare import gold_of
    from r1cli.engines.hf_rollout import load_tokenizer
    from r1cli.engines.rollout import decode_response
    from r1cli.rewards import REWARDS
    from r1cli.utils.io import read_parquet

    tok = load_tokenizer(str(sft))
    rows = read_parquet(data)
    ds = Dataset.from_list(
        [{"prompt": [dict(m) for m in r["messages"]], "gold": json.dumps(gold_of(r))} for r in rows]
    )
    exact = REWARDS["exact"]

    def reward(prompts: Any, completions: Any, completion_ids: list[list[int]], gold: list[str], **kw: Any):
        return [float(exact(decode_response(tok, ids), json.loads(g)).score) for ids, g in zip(
            completion_ids, gold, strict=True)]

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = 0.0
            self.times: list[float] = []

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.times.append(time.perf_counter() - self.t0)
            if between is not None:  # interleaved r1 steps run here, outside TRL's timed window
                between(len(self.times) - 1)

    rewards: list[float] = []

    class Rewards(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "reward" in logs:
                rewards.append(float(logs["reward"]))

    model = AutoModelForCausalLM.from_pretrained(str(sft), dtype=torch.float32)
    cfg = GRPOConfig(
        output_dir=str(workdir / "trl_out"),
        use_cpu=True,
        bf16=False,
        fp16=False,
        per_device_train_batch_size=PROMPTS * N,
        gradient_accumulation_steps=1,
        num_generations=N,
        max_completion_length=MAX_RESPONSE,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        adam_beta2=0.99,
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=0.0,
        loss_type="dapo",
        epsilon=0.2,
        epsilon_high=0.28,
        scale_rewards="group",
        num_iterations=1,
        max_steps=warmup + timed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        disable_tqdm=True,
    )
    timer = Timer()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=cfg,
        train_dataset=ds,
        processing_class=tok,
        callbacks=[timer, Rewards()],
    )
    trainer.train()
    return timer.times[warmup:], rewards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None, help="keeps the tiny model, data and SFT warm-up between runs")
    ap.add_argument("--sft-steps", type=int, default=250)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per side (>= 10)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--variants", default="off,dapo", help="comma list of r1 variants: off, dapo, ds")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-interleave", dest="interleave", action="store_false",
                    help="time r1 in two blocks around TRL instead of one r1 step after each TRL step")
    ap.add_argument("--json", default=None, help="also write the raw timings here")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="r1-bench-rl-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data, sft = setup(workdir, args.sft_steps)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in ("off", "dapo", "ds"):
            raise SystemExit(f"unknown variant {v!r} (off, dapo, ds)")
    total = args.warmup + args.steps
    sides = {v: R1Side(v, data, sft, workdir, total) for v in variants}
    if args.interleave:
        # one r1 step (per variant) after every TRL step: both sides see the same machine load over time
        def between(i: int) -> None:
            for sd in sides.values():
                sd.run(1, timed=i >= args.warmup)

        trl_times, trl_rewards = trl_side(data, sft, workdir, args.warmup, args.steps, between)
    else:
        first = args.steps // 2
        for sd in sides.values():  # block 1: warm-up + half of the timed steps
            sd.run(args.warmup, timed=False)
            sd.run(first, timed=True)
        trl_times, trl_rewards = trl_side(data, sft, workdir, args.warmup, args.steps)
        for sd in sides.values():  # block 2 (after TRL): the other half
            sd.run(args.steps - first, timed=True)

    trl_med = statistics.median(trl_times)
    print(f"\nthreads {torch.get_num_threads()}, {PROMPTS} prompts x {N}, max {MAX_RESPONSE} tokens, "
          f"{args.steps} timed steps after {args.warmup} warm-up, SFT warm-up {args.sft_steps} steps")
    print(f"trl  GRPOTrainer          median {trl_med:.3f} s/step  (min {min(trl_times):.3f}, "
          f"max {max(trl_times):.3f}; reward mean {statistics.mean(trl_rewards):.3f})")
    ratios: dict[str, float] = {}
    for v, s in sides.items():
        med = statistics.median(s.times)
        ratios[v] = med / trl_med
        parts = {k: statistics.median(p[k] for p in s.parts) for k in s.parts[0]}
        print(f"r1   {v:<4} median {med:.3f} s/step  (min {min(s.times):.3f}, max {max(s.times):.3f}; "
              f"reward mean {statistics.mean(p['reward_mean'] for p in s.parts):.3f})")
        print(f"     split (medians): generate {parts['generate']:.3f}  reward {parts['reward']:.3f}  "
              f"collect other {parts['collect_other']:.3f}  update {parts['update']:.3f} "
              f"(of which old/ref log-probs + advantages {parts['logprob']:.3f}); gen rounds "
              f"{parts['gen_rounds']:.0f}, trained samples {parts['samples']:.0f}, "
              f"gen {parts['gen_tokens_per_s']:.0f} tok/s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "trl": trl_times, "r1": {v: {"times": s.times, "parts": s.parts} for v, s in sides.items()}
        }, indent=1))
    for v in variants:
        if v != "off":
            print(f"ratio r1/trl ({v}) = {ratios[v]:.3f}")
    key = "off" if "off" in ratios else variants[0]
    print(f"ratio r1/trl = {ratios[key]:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
