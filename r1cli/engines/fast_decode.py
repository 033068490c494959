"""Fast sampling path of the ``hf`` rollout engine for Llama-family decoders (Llama, Qwen2, Qwen3).

The transformers forward spends most of a small-batch decode step outside the matmuls: the ``DynamicCache``
grows every layer's keys and values with ``torch.cat`` each token, masks are rebuilt each call, and q/k/v and
gate/up are separate launches. This module runs the same architecture functionally on the model's own
weights (read at each ``generate`` call, so the colocated trainer's latest step is always what samples):

- one key/value buffer per layer, written in place and grown by doubling (memory follows the longest live
  row, not ``max_tokens``); attention reads a view of the filled prefix;
- fused q/k/v and gate/up projections (concatenated once per call: a copy of the attention and MLP weights);
- prefix sharing: the n samples of a prompt share one prefill (its cache rows are replicated n times);
- finished rows are compacted out of the batch once they are a quarter of it, so long tails cost what they use;
- sampling is inverse-CDF on one uniform per (row, token), drawn up front, so a seed gives the same samples
  whatever the batching and compaction.

It returns exactly what the reference loop returns: token ids, the sampler's log-probs of the chosen tokens
at the sampling temperature (before top-k/top-p), and the finish reason. ``supports(model)`` says whether a
model's config is covered (default RoPE, no sliding window, SiLU MLP); anything else uses the transformers
loop in ``hf_rollout``. ``tests/engines/test_fast_decode.py`` checks logits against the transformers forward
and sampler log-probs against teacher-forced log-probs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

SUPPORTED = {"llama", "qwen2", "qwen3"}


def _rope_params(cfg: Any) -> tuple[float, str, float]:
    rp = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    theta = float(rp.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
    rtype = str(rp.get("rope_type", rp.get("type", "default")))
    partial = float(rp.get("partial_rotary_factor", getattr(cfg, "partial_rotary_factor", 1.0)) or 1.0)
    return theta, rtype, partial


def supports(model: Any) -> bool:
    """True when ``model`` is a Llama/Qwen2/Qwen3 causal LM this module reproduces exactly."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in SUPPORTED:
        return False
    _, rtype, partial = _rope_params(cfg)
    if rtype != "default" or partial != 1.0:
        return False
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return False
    if getattr(cfg, "use_sliding_window", False) or any(
        t != "full_attention" for t in (getattr(cfg, "layer_types", None) or [])
    ):
        return False
    if getattr(cfg, "mlp_bias", False):
        return False
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        return False  # DeepSpeed ZeRO-3 partitions parameters; only its forward hooks gather them
    body = getattr(model, "model", None)
    return body is not None and hasattr(body, "layers") and hasattr(model, "get_output_embeddings")


@dataclass
class _Layer:
    in_norm: torch.Tensor
    post_norm: torch.Tensor
    w_qkv: torch.Tensor
    b_qkv: torch.Tensor | None
    w_o: torch.Tensor
    b_o: torch.Tensor | None
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None
    w_gu: torch.Tensor
    w_down: torch.Tensor


class FastDecoder:
    """Functional forward of a supported model with a static KV cache. Build one per ``generate`` call."""

    def __init__(self, model: Any) -> None:
        if not supports(model):
            raise ValueError(f"fast decode does not cover {type(model).__name__}")
        cfg = model.config
        self.cfg = cfg
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.hd = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.eps = float(cfg.rms_norm_eps)
        self.theta = _rope_params(cfg)[0]
        body = model.model
        self.embed = body.embed_tokens.weight.detach()
        self.final_norm = body.norm.weight.detach()
        head = model.get_output_embeddings()
        self.head_w = head.weight.detach()
        self.head_b = None if getattr(head, "bias", None) is None else head.bias.detach()
        self.dtype = self.embed.dtype
        self.device = self.embed.device
        self.layers: list[_Layer] = []
        with torch.no_grad():
            for lyr in body.layers:
                at, mlp = lyr.self_attn, lyr.mlp
                bq = [getattr(at, n).bias for n in ("q_proj", "k_proj", "v_proj")]
                self.layers.append(
                    _Layer(
                        in_norm=lyr.input_layernorm.weight.detach(),
                        post_norm=lyr.post_attention_layernorm.weight.detach(),
                        w_qkv=torch.cat([at.q_proj.weight, at.k_proj.weight, at.v_proj.weight]).detach(),
                        b_qkv=None if bq[0] is None else torch.cat(bq).detach(),
                        w_o=at.o_proj.weight.detach(),
                        b_o=None if at.o_proj.bias is None else at.o_proj.bias.detach(),
                        q_norm=at.q_norm.weight.detach() if hasattr(at, "q_norm") else None,
                        k_norm=at.k_norm.weight.detach() if hasattr(at, "k_norm") else None,
                        w_gu=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach(),
                        w_down=mlp.down_proj.weight.detach(),
                    )
                )
        self.k_cache: list[torch.Tensor] = []
        self.v_cache: list[torch.Tensor] = []

    # --- pieces ------------------------------------------------------------------------------------------------
    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * xf.to(x.dtype)

    def rope_table(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        inv = 1.0 / (
            self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64, device=self.device).float() / self.hd)
        )
        pos = torch.arange(length, device=self.device, dtype=torch.float32)
        freqs = torch.outer(pos, inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    @staticmethod
    def _rot(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x.size(-1) // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * sin

    def _attn_block(
        self,
        i: int,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        start: int,
        attn_mask: torch.Tensor,
    ) -> torch.Tensor:
        """x (B, T, D) at cache slots [start, start+T); cos/sin (B, T, hd); attn_mask (B, 1, T, start+T) bool."""
        ly = self.layers[i]
        b, t, _ = x.shape
        h = self._norm(x, ly.in_norm)
        qkv = F.linear(h, ly.w_qkv, ly.b_qkv)
        nq, nk = self.n_heads * self.hd, self.n_kv * self.hd
        q = qkv[..., :nq].view(b, t, self.n_heads, self.hd)
        k = qkv[..., nq : nq + nk].view(b, t, self.n_kv, self.hd)
        v = qkv[..., nq + nk :].view(b, t, self.n_kv, self.hd)
        if ly.q_norm is not None:
            q = self._norm(q, ly.q_norm)
            k = self._norm(k, ly.k_norm)  # type: ignore[arg-type]
        q = self._rot(q.transpose(1, 2), cos[:, None], sin[:, None])
        k = self._rot(k.transpose(1, 2), cos[:, None], sin[:, None])
        self.k_cache[i][:, :, start : start + t] = k
        self.v_cache[i][:, :, start : start + t] = v.transpose(1, 2)
        keys = self.k_cache[i][:, :, : start + t]
        vals = self.v_cache[i][:, :, : start + t]
        o = F.scaled_dot_product_attention(
            q, keys, vals, attn_mask=attn_mask, enable_gqa=self.n_kv != self.n_heads
        )
        o = F.linear(o.transpose(1, 2).reshape(b, t, nq), ly.w_o, ly.b_o)
        x = x + o
        h = self._norm(x, ly.post_norm)
        gu = F.linear(h, ly.w_gu)
        g, u = gu.chunk(2, dim=-1)
        return x + F.linear(F.silu(g) * u, ly.w_down)

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        start: int,
        attn_mask: torch.Tensor,
        cos_tab: torch.Tensor,
        sin_tab: torch.Tensor,
        last_only: bool = True,
    ) -> torch.Tensor:
        """Logits (float32) of the last position (``last_only``) or of every position."""
        x = self.embed[ids]
        cos, sin = cos_tab[positions], sin_tab[positions]
        for i in range(len(self.layers)):
            x = self._attn_block(i, x, cos, sin, start, attn_mask)
        if last_only:
            x = x[:, -1]
        x = self._norm(x, self.final_norm)
        return F.linear(x, self.head_w, self.head_b).float()

    def alloc(self, batch: int, length: int) -> None:
        shape = (batch, self.n_kv, length, self.hd)
        self.k_cache = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        self.v_cache = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]

    @property
    def capacity(self) -> int:
        return int(self.k_cache[0].size(2)) if self.k_cache else 0

    def ensure(self, length: int, limit: int) -> None:
        """Grow the buffers to hold ``length`` positions (doubling, at most ``limit``): memory follows the
        longest live row instead of ``max_tokens``, at an amortised copy cost."""
        if length <= self.capacity:
            return
        new = min(limit, max(length, 2 * self.capacity))
        pad = new - self.capacity

        def grow(c: torch.Tensor) -> torch.Tensor:
            return torch.cat([c, c.new_zeros(c.size(0), c.size(1), pad, c.size(3))], dim=2)

        self.k_cache = [grow(c) for c in self.k_cache]
        self.v_cache = [grow(c) for c in self.v_cache]

    def select_rows(self, rows: torch.Tensor) -> None:
        self.k_cache = [c.index_select(0, rows) for c in self.k_cache]
        self.v_cache = [c.index_select(0, rows) for c in self.v_cache]


def _sample(
    logits: torch.Tensor, u: torch.Tensor, temperature: float, top_k: int, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token and its log-prob at ``temperature`` (before truncation). Inverse-CDF sampling with uniforms ``u``."""
    from r1cli.engines.hf_rollout import _filter_logits

    if temperature <= 0:
        lp = torch.log_softmax(logits, dim=-1)
        tok = lp.argmax(-1)
        return tok, lp.gather(-1, tok[:, None]).squeeze(-1)
    scaled = logits / temperature
    lp = torch.log_softmax(scaled, dim=-1)
    probs = torch.softmax(_filter_logits(scaled, top_k, top_p), dim=-1)
    cdf = probs.cumsum(-1)
    tok = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1).to(cdf.dtype)).squeeze(-1)
    tok = tok.clamp(max=logits.size(-1) - 1)
    # a zero-probability token can only be hit through float round-off at a cdf plateau: step back to the last
    # token with mass (searchsorted returns the first index whose cdf >= u, so plateaus sit left of it)
    zero = probs.gather(-1, tok[:, None]).squeeze(-1) <= 0
    if bool(zero.any()):
        tok = torch.where(zero, probs.argmax(-1), tok)
    return tok, lp.gather(-1, tok[:, None]).squeeze(-1)


@torch.no_grad()
def generate_groups(  # noqa: PLR0913 - the sampling knobs of one decode call
    model: Any,
    prompts: list[list[int]],
    *,
    n: int,
    max_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    eos_ids: set[int],
    pad_id: int,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
    compact_frac: float = 0.25,
    stop: Any | None = None,
) -> list[list[tuple[list[int], list[float], bool]]]:
    """For each prompt, ``n`` samples as (response ids, sampler log-probs, stopped at EOS or a stop string).

    ``stop``: a ``StopStrings`` (r1cli.engines.rollout) or None; a row also ends at the token completing one of
    its strings (the token is kept).

    Sampling noise: ``uniforms`` (len(prompts)·n, max_tokens) in [0, 1), row-major by prompt then sample, or
    drawn from ``generator``. Row r's token t depends only on its own uniform, so callers that split a request
    into chunks and pass each chunk its slice get the same samples as one big call."""
    dec = FastDecoder(model)
    dev = dec.device
    p_count = len(prompts)
    b = p_count * n
    plen = max(len(p) for p in prompts)
    total = plen + max_tokens
    cos_tab, sin_tab = dec.rope_table(total)
    ids = torch.full((p_count, plen), pad_id, dtype=torch.long)
    valid = torch.zeros((p_count, plen), dtype=torch.bool)
    for r, p in enumerate(prompts):
        ids[r, plen - len(p) :] = torch.tensor(p, dtype=torch.long)
        valid[r, plen - len(p) :] = True
    ids, valid = ids.to(dev), valid.to(dev)
    pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
    causal = torch.ones(plen, plen, dtype=torch.bool, device=dev).tril()
    # padded query positions attend to themselves only, so their (unused) states stay finite
    pmask = (causal[None] & valid[:, None, :]) | torch.eye(plen, dtype=torch.bool, device=dev)[None]
    dec.alloc(p_count, min(total, plen + 64))
    logits = dec.forward(ids, pos, 0, pmask[:, None], cos_tab, sin_tab)
    # replicate each prompt's cache rows n times (prefix sharing)
    rep = torch.arange(p_count, device=dev).repeat_interleave(n)
    dec.select_rows(rep)
    logits = logits.index_select(0, rep)
    key_valid = torch.ones((b, total), dtype=torch.bool, device=dev)
    key_valid[:, :plen] = valid.index_select(0, rep)
    next_pos = pos[:, -1].index_select(0, rep) + 1
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=dev)

    tokens = torch.full((b, max_tokens), pad_id, dtype=torch.long)
    logps = torch.zeros((b, max_tokens), dtype=torch.float32)
    lengths = torch.full((b,), max_tokens, dtype=torch.long)
    stopped = torch.zeros(b, dtype=torch.bool)
    if uniforms is None:
        if generator is None:
            raise ValueError("generate_groups needs a generator or uniforms")
        uniforms = torch.rand((b, max_tokens), generator=generator)
    if tuple(uniforms.shape) != (b, max_tokens):
        raise ValueError(f"uniforms must be ({b}, {max_tokens}), got {tuple(uniforms.shape)}")
    active = torch.arange(b)  # original row of each batch row
    done = torch.zeros(b, dtype=torch.bool)  # per batch row
    for t in range(max_tokens):
        tok, lp = _sample(logits, uniforms[active, t].to(logits.device), temperature, top_k, top_p)
        tok_c, lp_c = tok.cpu(), lp.float().cpu()
        live = ~done
        rows = active[live]
        tokens[rows, t] = tok_c[live]
        logps[rows, t] = lp_c[live]
        is_eos = torch.isin(tok_c, eos.cpu()) & live
        if stop:
            is_eos[live] |= torch.tensor(stop.hits(rows.tolist(), tok_c[live].tolist()), dtype=torch.bool)
        if bool(is_eos.any()):
            ended = active[is_eos]
            lengths[ended] = t + 1
            stopped[ended] = True
            done |= is_eos
        if bool(done.all()) or t == max_tokens - 1:
            break
        if float(done.float().mean()) >= compact_frac:
            keep = (~done).nonzero().squeeze(-1)
            keep_d = keep.to(dev)
            dec.select_rows(keep_d)
            active, done, tok = active[keep], done[keep], tok.index_select(0, keep_d)
            key_valid, next_pos = key_valid.index_select(0, keep_d), next_pos.index_select(0, keep_d)
        slot = plen + t
        dec.ensure(slot + 1, total)
        amask = key_valid[:, None, None, : slot + 1]
        logits = dec.forward(tok[:, None], next_pos[:, None], slot, amask, cos_tab, sin_tab)
        next_pos = next_pos + 1
    out: list[list[tuple[list[int], list[float], bool]]] = []
    for g in range(p_count):
        grp = []
        for r in range(g * n, (g + 1) * n):
            k = int(lengths[r])
            grp.append((tokens[r, :k].tolist(), logps[r, :k].tolist(), bool(stopped[r])))
        out.append(grp)
    return out
