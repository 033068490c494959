"""GPU check of r1's GPU path (run by benchmarks/gpu_check.sh on one lent GPU, <= 8 minutes).

A random-init Qwen3 model (~0.44 B parameters by default: 28 layers, hidden 1024, MLP 3072, 16 query / 8 KV
heads of 128; the embedded tiny BPE tokenizer, so the vocabulary is small and every sampled id decodes), then
``--steps`` RL steps of colocated rollout + training in one process:

1. rollout: ``VLLMRollout.generate`` (``logprobs_mode="processed_logprobs"``), ``--prompts`` x ``--n`` samples
   of addition prompts, at most ``--max-tokens`` new tokens, temperature 1;
2. reward: a deterministic length-shaped score (a random model never answers; this is a throughput check),
   GRPO advantages;
3. update: ``DeepSpeedTrainer`` (ZeRO ``--zero``, bf16, gradient checkpointing, packed sequences in
   token-budget micro-batches, PPO-clip token-mean loss), one optimizer step;
4. weight sync: ``VLLMRollout.load_weights(trainer.named_weights())`` (vLLM ``reload_weights``).

Printed per step and as medians over steps 1.. (step 0 is warm-up): rollout tokens/s, update tokens/s and
MFU (6·N·tokens / time / peak; attention FLOPs not counted; ``--peak-tflops`` default 989 = H200 bf16 dense),
weight-sync seconds, and the log-prob gap = mean |trainer log-prob − sampler log-prob| over response tokens,
computed in the update's forward before the optimizer step (both sides hold the same weights then, so after
step 0 it also checks that the previous sync reached vLLM).

``--rollout hf`` swaps vLLM for the ``hf`` engine (CPU smoke test of everything else, with small dims).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# vLLM's engine core in this process: weight reload takes an in-process iterator of tensors
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def build_model(out: Path, args: argparse.Namespace, device: str) -> tuple[Any, Any, int]:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from r1cli.engines.tiny_model import build_tokenizer

    tok = build_tokenizer(["addition", "countdown"], 384, seed=0)
    cfg = Qwen3Config(
        vocab_size=len(tok),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = Qwen3ForCausalLM(cfg).to(dtype)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    return model, tok, n_params


def prompts_of(tok: Any, k: int) -> list[list[int]]:
    rng = random.Random(0)
    out = []
    for _ in range(k):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        msgs = [{"role": "user", "content": f"Q: {a}+{b}="}]
        ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rollout", default="vllm", choices=["vllm", "hf"])
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--zero", type=int, default=2)
    ap.add_argument("--token-budget", type=int, default=32768)
    ap.add_argument("--lr", type=float, default=1e-6)
    ap.add_argument("--gpu-mem", type=float, default=0.35, help="vLLM gpu_memory_utilization")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--out", default=None, help="write the per-step figures as JSON")
    args = ap.parse_args()

    import torch

    from r1cli.algos import ADVANTAGES, POLICY_LOSSES, aggregate
    from r1cli.engines.batch import build_batch
    from r1cli.engines.deepspeed_train import DeepSpeedTrainer, token_budget_micro_batches
    from r1cli.engines.rollout import SamplingSpec

    t_start = time.time()
    cuda = torch.cuda.is_available()
    if args.rollout == "vllm" and not cuda:
        raise SystemExit("gpu_check: no CUDA device (use --rollout hf for the CPU smoke test)")
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="r1-gpu-check-"))
    model_dir = work / "model"
    model, tok, n_params = build_model(model_dir, args, device)
    dt = time.time() - t_start
    print(f"model: {n_params / 1e9:.3f} B parameters, vocab {len(tok)} ({dt:.1f} s)", flush=True)

    t0 = time.time()
    if args.rollout == "vllm":
        from r1cli.engines.vllm_rollout import VLLMRollout

        rollout: Any = VLLMRollout(
            str(model_dir),
            gpu_memory_utilization=args.gpu_mem,
            dtype="bfloat16",
            seed=0,
            max_model_len=2048,
            logprobs_mode="processed_logprobs",
            enforce_eager=True,
        )
    else:
        from r1cli.engines.hf_rollout import HFRollout

        rollout = HFRollout(model, tok, device=device)
    print(f"rollout engine ({args.rollout}) ready in {time.time() - t0:.1f} s", flush=True)

    t0 = time.time()
    trainer = DeepSpeedTrainer(
        model,
        lr=args.lr,
        betas=(0.9, 0.99),
        grad_clip=1.0,
        zero_stage=args.zero,
        dtype="bfloat16" if cuda else "float32",
        gradient_checkpointing=True,
        micro_batch_size=1,
        pack=True,
    )
    print(f"DeepSpeed ZeRO-{args.zero} trainer ready in {time.time() - t0:.1f} s", flush=True)

    prompts = prompts_of(tok, args.prompts)
    rows: list[dict[str, float]] = []
    for step in range(args.steps):
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        t0 = time.time()
        groups = rollout.generate(
            prompts, SamplingSpec(n=args.n, temperature=1.0, max_tokens=args.max_tokens, seed=1000 + step)
        )
        t_gen = time.time() - t0
        flat = [s for g in groups for s in g]
        gen_tokens = sum(len(s.response_ids) for s in flat)
        keep = [i for i, s in enumerate(flat) if s.response_ids]
        flat = [flat[i] for i in keep]
        index = [keep[i] // args.n for i in range(len(keep))]
        batch = build_batch([s.prompt_ids for s in flat], [s.response_ids for s in flat], tok.pad_token_id)
        mask = batch.response_mask
        sampler_lp = torch.zeros_like(mask)
        for i, s in enumerate(flat):
            sampler_lp[i, : len(s.logprobs)] = torch.tensor(s.logprobs[: mask.size(1)])
        # length-shaped reward: a throughput check, a random model never answers the question
        target = args.max_tokens / 4
        rewards = torch.tensor([-abs(len(s.response_ids) - target) / args.max_tokens for s in flat])
        adv = ADVANTAGES["grpo"](rewards=rewards, mask=mask, index=index).advantages
        lengths = [int(batch.attention_mask[i].sum()) for i in range(len(batch))]
        micro = token_budget_micro_batches(lengths, args.token_budget)
        total_tokens = float(mask.sum())
        sync()
        t0 = time.time()
        gap_num = 0.0
        for rws in micro:
            mb = batch.select(rws)
            logp, _ = trainer.response_logprobs(mb, 1.0)
            m = mask[rws].to(logp.device)
            old = sampler_lp[rws].to(logp.device)
            gap_num += float(((logp.detach().float() - old).abs() * m).sum())
            pg, _ = POLICY_LOSSES["ppo_clip"](
                logp=logp,
                old_logp=old,
                advantages=adv[rws].to(logp.device),
                mask=m,
                clip_low=0.2,
                clip_high=0.28,
            )
            loss = aggregate(pg, m, "token-mean", total_tokens=total_tokens)
            loss.backward()
        grad_norm = trainer.step()
        sync()
        t_upd = time.time() - t0
        t0 = time.time()
        if args.rollout == "vllm":
            rollout.load_weights(trainer.named_weights())
        else:  # the hf engine samples from the trained module itself: only gather (ZeRO-3), no copy
            sum(t.numel() for _, t in trainer.named_weights())
        sync()
        t_sync = time.time() - t0
        upd_tokens = sum(lengths)
        row = {
            "step": step,
            "gen_s": t_gen,
            "rollout_tok_s": gen_tokens / t_gen,
            "update_s": t_upd,
            "update_tok_s": upd_tokens / t_upd,
            "mfu": 6.0 * n_params * upd_tokens / t_upd / (args.peak_tflops * 1e12),
            "sync_s": t_sync,
            "logprob_gap": gap_num / max(total_tokens, 1.0),
            "grad_norm": grad_norm,
            "micro_batches": len(micro),
            "response_len_mean": gen_tokens / max(1, args.prompts * args.n),
        }
        rows.append(row)
        print(
            f"step {step}: rollout {row['rollout_tok_s']:.0f} tok/s ({t_gen:.2f} s) | update "
            f"{row['update_tok_s']:.0f} tok/s ({t_upd:.2f} s, {len(micro)} micro-batches, "
            f"MFU {row['mfu']:.3f}) | "
            f"sync {t_sync:.3f} s | log-prob gap {row['logprob_gap']:.5f} | grad-norm {grad_norm:.3f} | "
            f"len {row['response_len_mean']:.0f}",
            flush=True,
        )
    tail = rows[1:] or rows

    def med(k: str) -> float:
        return statistics.median(r[k] for r in tail)

    print(
        f"\nsummary (median of steps {tail[0]['step']}..{tail[-1]['step']}): "
        f"rollout tokens/s {med('rollout_tok_s'):.0f}"
        f" | update tokens/s {med('update_tok_s'):.0f} | MFU {med('mfu'):.3f}"
        f" | weight sync {med('sync_s'):.3f} s"
        f" | log-prob gap {med('logprob_gap'):.5f} (step 0: {rows[0]['logprob_gap']:.5f})"
        f" | total {time.time() - t_start:.0f} s"
    )
    if args.out:
        res = {"params": n_params, "args": vars(args), "steps": rows}
        Path(args.out).write_text(json.dumps(res, indent=1))
    sys.stdout.flush()
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    os._exit(0)


if __name__ == "__main__":
    main()
