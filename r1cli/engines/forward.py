"""The one log-prob kernel of r1's training engines (torch and DeepSpeed): response-token log-probs and
entropies of a causal LM from its final hidden states — one matmul + log-softmax when (tokens x vocab) is small,
chunked otherwise (``r1cli.algos.logprobs_from_hidden``) — on a padded :class:`TokenBatch` or a packed
:class:`PackedBatch` (rows concatenated without padding)."""

from __future__ import annotations

import torch
from torch import nn

from r1cli.engines.batch import TokenBatch

__all__ = ["DIRECT_LOGITS_MAX", "PackedBatch", "pack_batch", "response_logprobs_of", "token_budget_micro_batches"]

# ------------------------------------------------------------------------------------------ packed batches
class PackedBatch:
    """Rows of a :class:`TokenBatch` concatenated into one row without padding.

    ``input_ids``/``position_ids``: ``(1, T)``, T = real tokens; positions restart at 0 for each sequence.
    ``src``: flat index into the packed row of the hidden state that predicts each response token;
    ``dst_row``/``dst_col``: where that token sits in the padded ``(B, R)`` response layout."""

    def __init__(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        src: torch.Tensor,
        dst_row: torch.Tensor,
        dst_col: torch.Tensor,
        labels: torch.Tensor,
        shape: tuple[int, int],
    ) -> None:
        self.input_ids, self.position_ids = input_ids, position_ids
        self.src, self.dst_row, self.dst_col, self.labels = src, dst_row, dst_col, labels
        self.shape = shape

    def to(self, device: str | torch.device) -> PackedBatch:
        return PackedBatch(
            self.input_ids.to(device),
            self.position_ids.to(device),
            self.src.to(device),
            self.dst_row.to(device),
            self.dst_col.to(device),
            self.labels.to(device),
            self.shape,
        )

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.size(1))


def pack_batch(batch: TokenBatch) -> PackedBatch:
    """Drop the padding of ``batch`` and concatenate its rows (see :class:`PackedBatch`). Response positions
    with mask 0 inside a row's response (none in r1's batches) are still fed, as in the padded forward; the
    response is cut after its last valid token."""
    p = batch.prompt_len
    att = batch.attention_mask.cpu().bool()
    rmask = batch.response_mask.cpu() > 0
    ids = batch.input_ids.cpu()
    b, r = batch.response_ids.shape
    pieces, pos, src, drow, dcol = [], [], [], [], []
    offset = 0
    for i in range(b):
        prompt = ids[i, :p][att[i, :p]]
        valid = rmask[i].nonzero().flatten()
        n_resp = int(valid.max()) + 1 if valid.numel() else 0
        seq = torch.cat([prompt, ids[i, p : p + n_resp]])
        if seq.numel() == 0:
            continue
        pieces.append(seq)
        pos.append(torch.arange(seq.numel(), dtype=torch.long))
        if n_resp and prompt.numel():
            src.append(offset + prompt.numel() - 1 + torch.arange(n_resp))
            drow.append(torch.full((n_resp,), i, dtype=torch.long))
            dcol.append(torch.arange(n_resp))
        offset += seq.numel()
    if not pieces:
        raise ValueError("pack_batch: the batch has no tokens")
    cat = torch.cat
    empty = torch.zeros(0, dtype=torch.long)
    src_t = cat(src) if src else empty
    drow_t = cat(drow) if drow else empty
    dcol_t = cat(dcol) if dcol else empty
    labels = batch.response_ids.cpu()[drow_t, dcol_t]
    return PackedBatch(cat(pieces)[None], cat(pos)[None], src_t, drow_t, dcol_t, labels, (b, r))


def token_budget_micro_batches(lengths: list[int], token_budget: int) -> list[list[int]]:
    """Split rows (``lengths[i]`` = real tokens of row i, prompt + response) into micro-batches of at most
    ``token_budget`` tokens each (a longer row gets a micro-batch of its own). First-fit decreasing: few,
    well-filled micro-batches; each list is in ascending row order. Rows with 0 tokens are dropped."""
    if token_budget <= 0:
        raise ValueError(f"token_budget must be > 0, got {token_budget}")
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        for k, left in enumerate(room):
            if n <= left:
                bins[k].append(i)
                room[k] -= n
                break
        else:
            bins.append([i])
            room.append(token_budget - n)
    return [sorted(b) for b in bins]


# ---------------------------------------------------------------------------------------------- modules
def _head_and_body(m: nn.Module) -> tuple[nn.Module, nn.Module]:
    body = m.get_decoder() if hasattr(m, "get_decoder") else m.model  # type: ignore[attr-defined]
    head = m.get_output_embeddings()  # type: ignore[operator]
    return body, head


#: above this many (tokens x vocab) logits elements, compute log-probs chunk by chunk (as TorchTrainer)
DIRECT_LOGITS_MAX = 1 << 26


def _logp_from_hidden(
    h: torch.Tensor, head: nn.Module, labels: torch.Tensor, temperature: float, with_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs / entropies of ``labels`` from hidden states ``h`` (..., H); the same arithmetic as
    TorchTrainer.response_logprobs (one matmul when small, else chunked via r1cli.algos)."""
    from r1cli.algos import logprobs_from_hidden

    weight = head.weight
    bias = getattr(head, "bias", None)
    squeeze = h.dim() == 2
    if squeeze:
        h, labels = h[None], labels[None]
    if h.size(0) * h.size(1) * weight.size(0) <= DIRECT_LOGITS_MAX:
        logits = torch.nn.functional.linear(h, weight, bias).float()
        if temperature != 1.0:
            logits = logits / temperature
        logz = torch.logsumexp(logits, dim=-1)
        logp = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) - logz
        ent = None
        if with_entropy:
            # differentiable (an entropy bonus needs its gradient), as the chunked path's entropy is
            probs = torch.softmax(logits, dim=-1)
            ent = logz - (probs * logits).sum(-1)
    else:
        logp, ent = logprobs_from_hidden(
            h, weight, labels, chunk_size=4096, with_entropy=with_entropy, bias=bias, temperature=temperature
        )
    if squeeze:
        logp = logp[0]
        ent = ent[0] if ent is not None else None
    return logp, ent


def response_logprobs_of(
    m: nn.Module, batch: TokenBatch | PackedBatch, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, R) response log-probs (and entropies) of a causal LM on a padded or packed batch."""
    body, head = _head_and_body(m)
    if isinstance(batch, PackedBatch):
        hidden = body(
            input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False
        ).last_hidden_state
        h = hidden[0].index_select(0, batch.src)
        lp, ent = _logp_from_hidden(h, head, batch.labels, temperature, with_entropy)
        b, r = batch.shape
        out = lp.new_zeros(b, r).index_put((batch.dst_row, batch.dst_col), lp)
        ent_out = None
        if ent is not None:
            ent_out = ent.new_zeros(b, r).index_put((batch.dst_row, batch.dst_col), ent)
        return out, ent_out
    p = batch.prompt_len
    hidden = body(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    ).last_hidden_state
    return _logp_from_hidden(hidden[:, p - 1 : -1, :], head, batch.response_ids, temperature, with_entropy)


