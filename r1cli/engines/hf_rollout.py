"""``hf`` rollout engine: batched sampling with a KV cache on a transformers causal LM (CPU or GPU).

A hand-written decode loop rather than ``model.generate``: it returns the sampler's log-probs of each chosen
token, is deterministic for a given seed (one ``torch.Generator`` per call), stops a row at EOS, and keeps
the positions of left-padded prompts right (``position_ids = cumsum(mask) - 1``).
"""

from __future__ import annotations

from typing import Any

import torch

from r1cli.engines.rollout import Sample, SamplingSpec, StopStrings, decode_response


def load_model(path: str, dtype: str = "auto", device: str = "cpu") -> Any:
    from transformers import AutoModelForCausalLM

    torch_dtype = {
        "auto": None,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[dtype]
    if torch_dtype is None:
        torch_dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    return model.to(device)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(-1)
        remove = cum - probs > top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


def _cache_of(out: Any) -> Any:
    c = getattr(out, "cache", None)
    return c if c is not None else out.past_key_values


class HFRollout:
    """Sample ``n`` responses per prompt with a shared KV cache loop."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any | None = None,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_batch: int = 256,
        impl: str = "auto",
    ) -> None:
        """``impl``: ``auto`` (the static-cache decoder of r1cli.engines.fast_decode where the architecture is
        covered, else the transformers loop), ``fast`` (require it) or ``hf`` (the transformers loop)."""
        if isinstance(model, str):
            self.tokenizer = tokenizer or load_tokenizer(model)
            self.model = load_model(model, dtype=dtype, device=device)
        else:
            self.model = model
            self.tokenizer = tokenizer
        self.device = device
        self.max_batch = max_batch
        self.eos_ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            self.eos_ids.add(gen_eos)
        elif isinstance(gen_eos, list):
            self.eos_ids.update(gen_eos)
        self.pad_id = self.tokenizer.pad_token_id
        if impl not in ("auto", "fast", "hf"):
            raise ValueError(f"HFRollout impl must be auto | fast | hf, got {impl!r}")
        from r1cli.engines import fast_decode

        if impl == "fast" and not fast_decode.supports(self.model):
            raise ValueError(f"fast decode does not cover {type(self.model).__name__}; use impl='hf'")
        self.impl = "fast" if impl != "hf" and fast_decode.supports(self.model) else "hf"
        self._stops: StopStrings | None = None

    def _stopper(self, spec: SamplingSpec) -> StopStrings | None:
        """The spec's stop strings, with a fresh per-row state (token texts stay cached across calls)."""
        if not spec.stop:
            return None
        if self._stops is None or self._stops.stops != tuple(s for s in spec.stop if s):
            self._stops = StopStrings(self.tokenizer, spec.stop)
        self._stops.reset()
        return self._stops

    def load_weights(self, named_tensors: Any) -> None:
        state = dict(named_tensors)
        self.model.load_state_dict(state, strict=False)

    @torch.no_grad()
    def generate(
        self, prompts: list[list[int]], spec: SamplingSpec, seeds: list[int] | None = None
    ) -> list[list[Sample]]:
        """``spec.n`` samples per prompt. ``seeds``: one per prompt; prompt i's samples then depend only on its
        own seed, not on the other prompts of the call (the fast decoder; the transformers loop draws from one
        generator seeded by the first seed) — how data-parallel ranks sample their shards exactly as one rank
        samples the whole batch."""
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        flat = [p for p in prompts for _ in range(spec.n)]
        seed0 = seeds[0] if seeds else spec.seed
        gen = torch.Generator(device="cpu").manual_seed(int(seed0) & 0x7FFFFFFFFFFFFFFF)
        out: list[Sample] = []
        was_training = self.model.training
        self.model.eval()
        try:
            if self.impl == "fast":
                return self._generate_fast(prompts, spec, gen, seeds)
            for i in range(0, len(flat), self.max_batch):
                out.extend(self._generate_batch(flat[i : i + self.max_batch], spec, gen))
        finally:
            self.model.train(was_training)
        return [out[i * spec.n : (i + 1) * spec.n] for i in range(len(prompts))]

    def _generate_fast(
        self, prompts: list[list[int]], spec: SamplingSpec, gen: torch.Generator, seeds: list[int] | None = None
    ) -> list[list[Sample]]:
        from r1cli.engines.fast_decode import generate_groups

        per = max(1, self.max_batch // max(1, spec.n))
        # one uniform per (sample, token) for the whole request: chunking does not change the samples
        # (greedy decoding reads none: a zero view, no allocation)
        shape = (len(prompts) * spec.n, spec.max_tokens)
        if spec.greedy:
            uniforms = torch.zeros(1).expand(*shape)
        elif seeds is not None:
            uniforms = torch.cat([
                torch.rand((spec.n, spec.max_tokens),
                           generator=torch.Generator(device="cpu").manual_seed(int(sd) & 0x7FFFFFFFFFFFFFFF))
                for sd in seeds
            ]) if seeds else torch.zeros(shape)
        else:
            uniforms = torch.rand(shape, generator=gen)
        out: list[list[Sample]] = []
        for i in range(0, len(prompts), per):
            chunk = prompts[i : i + per]
            groups = generate_groups(
                self.model,
                chunk,
                n=spec.n,
                max_tokens=spec.max_tokens,
                temperature=0.0 if spec.greedy else spec.temperature,
                top_k=spec.top_k,
                top_p=spec.top_p,
                eos_ids=self.eos_ids,
                pad_id=self.pad_id,
                uniforms=uniforms[i * spec.n : (i + len(chunk)) * spec.n],
                stop=self._stopper(spec),
            )
            for p, grp in zip(chunk, groups, strict=True):
                out.append(
                    [
                        Sample(
                            prompt_ids=list(p),
                            response_ids=rid,
                            logprobs=lps,
                            finish_reason="stop" if stop else "length",
                            text=decode_response(self.tokenizer, rid),
                        )
                        for rid, lps, stop in grp
                    ]
                )
        return out

    def _generate_batch(
        self, prompts: list[list[int]], spec: SamplingSpec, gen: torch.Generator
    ) -> list[Sample]:
        from transformers import DynamicCache

        b = len(prompts)
        plen = max(len(p) for p in prompts)
        ids = torch.full((b, plen), self.pad_id, dtype=torch.long)
        mask = torch.zeros((b, plen), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, plen - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[r, plen - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        logits = out.logits[:, -1, :].float()
        cache = _cache_of(out)
        next_pos = pos[:, -1:] + 1
        tokens = torch.full((b, spec.max_tokens), self.pad_id, dtype=torch.long)
        logps = torch.zeros((b, spec.max_tokens), dtype=torch.float32)
        done = torch.zeros(b, dtype=torch.bool)
        lengths = torch.full((b,), spec.max_tokens, dtype=torch.long)
        stopped = torch.zeros(b, dtype=torch.bool)
        eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long)
        stop = self._stopper(spec)
        for t in range(spec.max_tokens):
            if spec.greedy:
                lp_full = torch.log_softmax(logits, dim=-1)
                tok = lp_full.argmax(-1)
            else:
                scaled = logits / spec.temperature
                lp_full = torch.log_softmax(scaled, dim=-1)
                filt = _filter_logits(scaled, spec.top_k, spec.top_p)
                probs = torch.softmax(filt, dim=-1).cpu()
                tok = torch.multinomial(probs, 1, generator=gen).squeeze(-1).to(logits.device)
            lp = lp_full.gather(-1, tok[:, None]).squeeze(-1)
            tok = tok.cpu()
            tok = torch.where(done, torch.full_like(tok, self.pad_id), tok)
            tokens[:, t] = tok
            logps[:, t] = torch.where(done, torch.zeros_like(lp.cpu()), lp.cpu())
            is_eos = torch.isin(tok, eos) & ~done
            if stop:
                live = ~done
                rows = live.nonzero().squeeze(-1)
                is_eos[live] |= torch.tensor(stop.hits(rows.tolist(), tok[live].tolist()), dtype=torch.bool)
            lengths = torch.where(is_eos, torch.full_like(lengths, t + 1), lengths)
            stopped |= is_eos
            done |= is_eos
            if bool(done.all()) or t == spec.max_tokens - 1:
                break
            mask = torch.cat([mask, (~done).long()[:, None].to(mask.device)], dim=1)
            out = self.model(
                input_ids=tok[:, None].to(self.device),
                attention_mask=mask,
                position_ids=next_pos,
                cache=cache,
                use_cache=True,
            )
            cache = _cache_of(out)
            logits = out.logits[:, -1, :].float()
            next_pos = next_pos + 1
        samples = []
        for r in range(b):
            n = int(lengths[r])
            rid = tokens[r, :n].tolist()
            samples.append(
                Sample(
                    prompt_ids=list(prompts[r]),
                    response_ids=rid,
                    logprobs=logps[r, :n].tolist(),
                    finish_reason="stop" if bool(stopped[r]) else "length",
                    text=decode_response(self.tokenizer, rid),
                )
            )
        return samples
