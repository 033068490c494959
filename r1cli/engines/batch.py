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
