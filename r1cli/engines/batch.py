"""Padded prompt+response batches for training forwards.

Layout: prompts left-padded to P, responses right-padded to R, concatenated to (B, P+R). The logits at
positions P-1 .. P+R-2 predict the response tokens. ``position_ids = cumsum(attention_mask) - 1`` so the
positions equal those the sampler used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenBatch:
    input_ids: torch.Tensor  # (B, P+R)
    attention_mask: torch.Tensor  # (B, P+R)
    position_ids: torch.Tensor  # (B, P+R)
    response_ids: torch.Tensor  # (B, R)
    response_mask: torch.Tensor  # (B, R) float 0/1
    prompt_len: int

    def __len__(self) -> int:
        return int(self.input_ids.size(0))

    def select(self, rows: torch.Tensor | list[int]) -> TokenBatch:
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        return TokenBatch(
            self.input_ids[rows_t],
            self.attention_mask[rows_t],
            self.position_ids[rows_t],
            self.response_ids[rows_t],
            self.response_mask[rows_t],
            self.prompt_len,
        )

    def select_trimmed(self, rows: torch.Tensor | list[int]) -> tuple[TokenBatch, int]:
        """Rows ``rows`` with the columns no selected row uses cut off: the left prompt padding all of them
        share and the response columns past the longest selected response. Returns the batch and R', the
        kept response width (per-token tensors of the full batch are sliced ``[:, :R']``). Positions are
        unchanged, so log-probs equal those of the untrimmed rows."""
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        att = self.attention_mask[rows_t]
        p = self.prompt_len
        prompt_used = att[:, :p].sum(1)
        left = p - int(prompt_used.max()) if len(rows_t) else 0
        r = max(1, int(self.response_mask[rows_t].sum(1).max())) if len(rows_t) else 1
        end = p + r
        return (
            TokenBatch(
                self.input_ids[rows_t, left:end],
                att[:, left:end],
                self.position_ids[rows_t, left:end],
                self.response_ids[rows_t, :r],
                self.response_mask[rows_t, :r],
                p - left,
            ),
            r,
        )

    def to(self, device: str | torch.device) -> TokenBatch:
        return TokenBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.position_ids.to(device),
            self.response_ids.to(device),
            self.response_mask.to(device),
            self.prompt_len,
        )


def build_batch(
    prompts: list[list[int]], responses: list[list[int]], pad_id: int, response_len: int | None = None
) -> TokenBatch:
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    b = len(prompts)
    p = max(len(x) for x in prompts)
    r = response_len or max(1, max(len(x) for x in responses))
    ids = torch.full((b, p + r), pad_id, dtype=torch.long)
    att = torch.zeros((b, p + r), dtype=torch.long)
    rmask = torch.zeros((b, r), dtype=torch.float32)
    for i, (pr, rs) in enumerate(zip(prompts, responses, strict=True)):
        rs = rs[:r]
        ids[i, p - len(pr) : p] = torch.tensor(pr, dtype=torch.long)
        att[i, p - len(pr) : p] = 1
        if rs:
            ids[i, p : p + len(rs)] = torch.tensor(rs, dtype=torch.long)
            att[i, p : p + len(rs)] = 1
            rmask[i, : len(rs)] = 1.0
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    return TokenBatch(ids, att, pos, ids[:, p:].clone(), rmask, p)


def length_sorted_micro_batches(
    lengths: list[int], max_rows: int, token_budget: int | None = None
) -> list[list[int]]:
    """Split rows into micro-batches of similar length so padded forwards waste little.

    Rows are sorted by ``lengths`` (real tokens, longest first) and cut into consecutive runs of at most
    ``max_rows`` rows and, with ``token_budget``, at most ``token_budget`` padded tokens (rows x the run's
    longest row; a row longer than the budget gets a micro-batch of its own). Returns row indices."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    if token_budget is not None and token_budget <= 0:
        raise ValueError(f"token_budget must be > 0, got {token_budget}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = lengths[cur[0]] if cur else lengths[i]
        if cur and (len(cur) >= max_rows or (token_budget is not None and (len(cur) + 1) * width > token_budget)):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out
