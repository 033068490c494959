"""Benchmark: chunked label log-probs + entropy from hidden states vs the naive full-vocabulary softmax.

Both variants start from final hidden states ``(B, T, H)`` and an LM head ``(V, H)`` (Qwen2.5 vocabulary
V = 151,936) and produce the label log-probs and the entropy of every position:

* naive   — ``logits = hidden @ Wᵀ`` for the whole batch, ``log_softmax``, gather, entropy from the
  full softmax (what a straightforward trainer does; 4 full ``B·T × V`` float32 tensors alive at peak);
* chunked — ``r1cli.algos.logprobs_from_hidden(..., with_entropy=True)``: logits ``chunk`` tokens at a time.

Each variant runs in its own subprocess; peak memory is that process's ``ru_maxrss`` (resource module,
no tracemalloc) minus its ``ru_maxrss`` just before the computation (inputs and weights already
allocated without temporaries, read from /proc/self/statm), i.e. the extra peak the computation needs
(a lower bound if the computation peaks below the setup's high-water mark, which is printed too).
Time is wall-clock of the computation.

Size: the issue's 64 × 4096-token batch needs ~160 GB per float32 logits copy for the naive variant, so
the default is 2 × 1024 tokens (naive peak ≈ 5 GB, fits in ~8 GB RAM); naive memory grows linearly with
B·T, chunked memory stays at O(chunk × V). ``--backward`` also differentiates (lp + entropy).sum() w.r.t.
hidden and weight.

Run:  python benchmarks/logprob.py [--batch 2 --seq 1024 --hidden 896 --vocab 151936 --chunk 512]
Prints ``ratio peak_mem chunked/naive = X`` and ``ratio time chunked/naive = Y``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
    """Current resident set size (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run_variant(args: argparse.Namespace) -> None:
    import torch

    from r1cli.algos import logprobs_from_hidden

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    b, t, h, v = args.batch, args.seq, args.hidden, args.vocab
    # in-place scaling: no temporary copies, so the process's high-water mark before the computation is
    # (almost) its current RSS and ru_maxrss afterwards measures the computation's own peak
    hidden = torch.randn(b, t, h).mul_(0.5)
    weight = torch.randn(v, h).mul_(1.0 / h**0.5)
    labels = torch.randint(0, v, (b, t))
    if args.backward:
        hidden.requires_grad_(True)
        weight.requires_grad_(True)
    # warm up kernels on a tiny slice so one-off allocator/kernel costs do not count
    with torch.no_grad():
        small = hidden[:1, :4].detach()
        torch.log_softmax(small @ weight.detach().T, dim=-1)
    base = _rss_mb()
    prior_peak = _maxrss_mb()
    ctx = torch.enable_grad() if args.backward else torch.no_grad()
    start = time.perf_counter()
    with ctx:
        if args.variant == "naive":
            logits = hidden @ weight.T
            logsm = torch.log_softmax(logits, dim=-1)
            lp = logsm.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
            ent = -(torch.exp(logsm) * logsm).sum(-1)
        else:
            lp, ent = logprobs_from_hidden(hidden, weight, labels, chunk_size=args.chunk, with_entropy=True)
            assert ent is not None
        if args.backward:
            (lp.sum() + ent.sum()).backward()
    elapsed = time.perf_counter() - start
    peak = _maxrss_mb()
    torch.save({"lp": lp.detach(), "ent": ent.detach()}, args.out)
    print(json.dumps({"time_s": elapsed, "peak_mb": peak, "base_mb": base, "extra_mb": peak - base,
                      "setup_peak_mb": prior_peak}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=896, help="hidden size (896 = Qwen2.5-0.5B)")
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--chunk", type=int, default=512, help="tokens per chunk for the chunked variant")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--backward", action="store_true", help="also run backward to hidden and weight")
    p.add_argument("--variant", choices=["naive", "chunked"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        _run_variant(args)
        return

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("chunked", "naive"):
            out = str(Path(tmp) / f"{variant}.pt")
            cmd = [sys.executable, __file__, "--variant", variant, "--out", out, "--batch", str(args.batch),
                   "--seq", str(args.seq), "--hidden", str(args.hidden), "--vocab", str(args.vocab),
                   "--chunk", str(args.chunk), "--threads", str(args.threads)]
            if args.backward:
                cmd.append("--backward")
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"{variant} variant failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
            results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        import torch

        a = torch.load(str(Path(tmp) / "chunked.pt"))
        b = torch.load(str(Path(tmp) / "naive.pt"))
        max_lp = float((a["lp"] - b["lp"]).abs().max())
        max_ent = float((a["ent"] - b["ent"]).abs().max())

    tokens = args.batch * args.seq
    print(f"tokens={tokens} (batch {args.batch} x seq {args.seq}), hidden={args.hidden}, vocab={args.vocab}, "
          f"chunk={args.chunk}, backward={args.backward}, fp32 CPU")
    print(f"naive full logits would be {tokens * args.vocab * 4 / 2**30:.2f} GiB per fp32 copy")
    for name, r in results.items():
        print(f"{name:8s} time {r['time_s']:8.2f} s   extra peak RSS {r['extra_mb']:9.1f} MiB   "
              f"(process peak {r['peak_mb']:.1f} MiB, before computing {r['base_mb']:.1f} MiB, "
              f"setup high-water {r['setup_peak_mb']:.1f} MiB)")
    print(f"max |Δ logp| = {max_lp:.2e}, max |Δ entropy| = {max_ent:.2e}")
    mem_ratio = results["chunked"]["extra_mb"] / max(results["naive"]["extra_mb"], 1e-9)
    time_ratio = results["chunked"]["time_s"] / max(results["naive"]["time_s"], 1e-9)
    print(f"ratio peak_mem chunked/naive = {mem_ratio:.4f}")
    print(f"ratio time chunked/naive = {time_ratio:.4f}")


if __name__ == "__main__":
    main()
