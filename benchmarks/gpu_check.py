"""GPU check of r1's full-scale path (run by benchmarks/gpu_check.sh on a lent GPU machine, <= 8 minutes).

The real RL stage (``r1cli.train.rl.run_rl_stage``, as ``r1 train rl`` runs it), DeepScaleR-shaped (the
``deepscaler`` recipe: GRPO, token-mean, clip-higher off, vLLM sampling, DeepSpeed training), on a random-init
Qwen3 built from a config (~0.44 B parameters by default; no downloads on that machine) and the embedded tiny
BPE tokenizer, SPMD over every visible GPU (one rank each, launched like a multi-GPU job: ``r1cli.engines.launch
.run_ranks``), with ZeRO ``--zero`` (default 3), bf16:

1. ``--steps`` RL steps with ``rl.rollout.backend=vllm`` (colocated engine per rank, sleep/wake, weights streamed
   after every update);
2. the same stage for ``--hf-steps`` steps with ``rl.rollout.backend=hf`` (r1's own decoder), for the sampling
   throughput side by side.

The reward is a deterministic length-shaped score (a random model never answers; this is a throughput and
correctness-of-plumbing check). Printed from the stage's own metrics (medians over steps 1..): rollout tokens/s
(vLLM vs hf), update tokens/s and MFU (6·N·tokens / time / (peak × GPUs); attention FLOPs not counted;
``--peak-tflops`` default 989 = H200 bf16 dense), weight-sync seconds, the sampler/trainer log-prob gap (the
sampler's log-probs of its own tokens vs the trainer's before the update: after step 0 it checks that the
previous sync reached vLLM), and peak GPU memory.

``--rollout hf --steps 2`` with small dims runs the same on CPU (gloo ranks with ``--ranks``): a smoke test of
everything but vLLM.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
REPO = Path(__file__).resolve().parents[1]


def build_model(out: Path, args: argparse.Namespace) -> int:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from r1cli.engines.tiny_model import build_tokenizer

    tok = build_tokenizer(["addition", "countdown"], 384, seed=0)
    cfg = Qwen3Config(
        vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim, max_position_embeddings=4096, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(cfg).to(torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def stage_sets(args: argparse.Namespace, backend: str, steps: int) -> list[str]:
    cuda = args.device == "cuda"
    return [
        "template=tiny-chat", "system_prompt=null",
        f"rl.stages=[{{name: check, steps: {steps}, max_response: {args.max_tokens}, n: {args.n}}}]",
        f"rl.rollout.prompts_per_step={args.prompts}", f"rl.rollout.backend={backend}",
        f"rl.rollout.gpu_memory_utilization={args.gpu_mem if backend == 'vllm' else 0.5}",
        "rl.rollout.tensor_parallel=1", "rl.rollout.max_prompt=64", "rl.rollout.dynamic_sampling.filter=null",
        f"rl.train.backend={'deepspeed' if cuda or args.zero else 'torch'}",
        f"rl.train.zero_stage={args.zero if cuda or args.zero else 2}",
        f"rl.train.dtype={'bfloat16' if cuda else 'float32'}", f"rl.train.token_budget={args.token_budget}",
        "rl.train.mini_batch_prompts=null", f"rl.train.lr={args.lr}", f"rl.train.gradient_checkpointing={cuda}",
        "rl.reward.name=exact", "rl.reward.shaping=[]", "rl.checkpoint.every=1000",
    ]


def worker(spec: dict[str, Any]) -> None:
    """One rank: the RL stage with a length-shaped reward (a random model never answers the task)."""
    import torch

    from r1cli.config import resolve
    from r1cli.engines.dist import Dist
    from r1cli.rewards import REWARDS
    from r1cli.rewards.result import RewardResult
    from r1cli.train.rl import run_rl_stage

    def shaped(response: str, gold: dict, **_: object) -> RewardResult:
        n = len(response.split())
        return RewardResult(1.0 / (1.0 + abs(n - 40) / 40.0), n < 60, None, "ok")

    REWARDS["exact"] = shaped
    cfg = resolve("deepscaler", spec["sets"])
    dist = Dist.from_env()
    run_rl_stage(cfg, "check", data_path=Path(spec["data"]), init_model=spec["model"],
                 stage_dir=Path(spec["stage_dir"]), dist=dist)
    if torch.cuda.is_available():
        peak = dist.max([torch.cuda.max_memory_allocated() / 2**30])[0]
        if dist.is_main:
            Path(spec["stage_dir"], "peak_mem_gb").write_text(f"{peak:.2f}")
    dist.close()
    sys.stdout.flush()
    os._exit(0)


def run_stage(args: argparse.Namespace, backend: str, steps: int, work: Path, ranks: int) -> list[dict]:
    from r1cli.engines.launch import run_ranks

    out = work / f"rl-{backend}"
    spec = {"sets": stage_sets(args, backend, steps), "data": str(work / "train.parquet"),
            "model": str(work / "model"), "stage_dir": str(out)}
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    codes = run_ranks([str(Path(__file__).resolve()), "--worker", json.dumps(spec)], ranks, gpus=ranks
                      if args.device == "cuda" else 0, env=env)
    if any(codes):
        raise SystemExit(f"gpu_check: the {backend} stage failed on a rank (exit codes {codes})")
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rollout", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=64, help="prompts per step (over all ranks)")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--hf-steps", type=int, default=2, help="steps with the hf sampler (0: skip)")
    ap.add_argument("--zero", type=int, default=3)
    ap.add_argument("--ranks", type=int, default=None, help="default: every visible GPU (1 on CPU)")
    ap.add_argument("--token-budget", type=int, default=32768)
    ap.add_argument("--lr", type=float, default=1e-6)
    ap.add_argument("--gpu-mem", type=float, default=0.35, help="vLLM gpu_memory_utilization")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    import tempfile

    import torch

    t0 = time.time()
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.rollout == "vllm" and args.device != "cuda":
        raise SystemExit("gpu_check: no CUDA device (use --rollout hf and small dims for the CPU smoke test)")
    ranks = args.ranks or (torch.cuda.device_count() if args.device == "cuda" else 1)
    work = Path(tempfile.mkdtemp(prefix="r1-gpu-check-"))
    n_params = build_model(work / "model", args)
    from r1cli.data.prepare import prepare

    prepare("synth:addition", work / "train.parquet", template="tiny-chat", task="addition", size=4 * args.prompts)
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"gpu_check: {ranks} x {name}, model {n_params / 1e9:.3f} B params, ZeRO-{args.zero}, "
          f"{args.prompts} prompts x {args.n} samples x <= {args.max_tokens} tokens per step", flush=True)
    res: dict[str, Any] = {"params": n_params, "ranks": ranks, "device": name, "args": vars(args)}
    for backend, steps in ((args.rollout, args.steps), ("hf", args.hf_steps if args.rollout == "vllm" else 0)):
        if not steps:
            continue
        rows = run_stage(args, backend, steps, work, ranks)
        tail = rows[1:] or rows

        def med(k: str, tail: list[dict] = tail) -> float:
            return statistics.median(float(r.get(k, 0.0)) for r in tail)

        upd = med("update_tokens_per_s")
        mfu = 6 * n_params * upd / (args.peak_tflops * 1e12 * ranks) if args.device == "cuda" else 0.0
        peak = work / f"rl-{backend}" / "peak_mem_gb"
        fig = {"rollout_tok_s": med("gen_tokens_per_s"), "update_tok_s": upd, "mfu": mfu,
               "sync_s": med("t_sync"), "logprob_gap": med("logprob_gap"),
               "logprob_gap_step0": float(rows[0].get("logprob_gap", 0.0)),
               "peak_mem_gb": float(peak.read_text()) if peak.exists() else None, "steps": rows}
        res[backend] = fig
        for r in rows:
            print(f"  {backend} step {r['step']}: rollout {r['gen_tokens_per_s']:.0f} tok/s | update "
                  f"{r['update_tokens_per_s']:.0f} tok/s | sync {r['t_sync']:.3f} s | log-prob gap "
                  f"{r.get('logprob_gap', 0.0):.5f} | len {r['response_len_mean']:.0f}", flush=True)
        print(f"{backend}: rollout tokens/s {fig['rollout_tok_s']:.0f} | update tokens/s {upd:.0f} | MFU {mfu:.3f} | "
              f"weight sync {fig['sync_s']:.3f} s | log-prob gap {fig['logprob_gap']:.5f} | peak memory "
              f"{fig['peak_mem_gb']} GiB", flush=True)
    if "hf" in res and args.rollout in res and args.rollout != "hf":
        print(f"rollout tokens/s vllm/hf: {res['vllm']['rollout_tok_s'] / max(res['hf']['rollout_tok_s'], 1e-9):.2f}")
    print(f"gpu_check: total {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
