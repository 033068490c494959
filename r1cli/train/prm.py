"""Reward models trained online inside an RL stage (hooks of r1cli.train.rl, built by :func:`make_prm`).

* :class:`ImplicitPRM` — PRIME (Cui et al. 2025, "Process Reinforcement through Implicit Rewards",
  arXiv 2502.01456). The implicit PRM π_φ starts as the SFT/reference model; its token reward is
  r_t = β·(log π_φ(y_t|y<t) − log π_ref(y_t|y<t)) (eq. 3), which the ``prime`` advantage estimator computes
  from ``prm_logp`` / ``ref_logp``. After each policy step it is updated with the cross-entropy loss on the
  outcome labels (eq. 4): with r(y) = β·Σ_t (log π_φ − log π_ref) over the response,
  L_CE = −[y·log σ(r(y)) + (1 − y)·log(1 − σ(r(y)))], y = 1 for a correct response. PRIME's settings: lr 1e-6,
  grad clip 10, β = 0.05 (``warmups.prm.lr`` / ``beta``).
* :class:`TokenRM` — OREAL (Lyu et al. 2025, arXiv 2502.06781, §3.3; InternLM/OREAL ``train_oreal.py``): a copy
  of the actor's body with a 1-unit linear head giving a logit per response token, read at the position that
  predicts the token (the same slice as the policy's log-probs: hidden state of y_<t, as OREAL shifts its
  logits with the labels), trained with BCE between the sequence mean of the logits and the 0/1
  correctness label. Its token weights (``r1cli.algos.oreal_token_weights``) enter the ``oreal`` policy loss
  through ``loss_inputs``. OREAL trains it alone for the first ``warmups.prm.freeze_policy_steps`` steps (rl.py
  skips the policy update then); OREAL's RM lr 2e-6, grad clip 1.

Both start from the stage's init model (for the first RL stage the SFT model: PRIME's "PRM = SFT").
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from r1cli.config import Recipe
from r1cli.config.schema import RLStage
from r1cli.engines.batch import TokenBatch
from r1cli.train.critic import backbone_hidden, backbone_of, default_device, hidden_size

PRIME_GRAD_CLIP = 10.0
OREAL_GRAD_CLIP = 1.0


def response_logprobs(model: Any, batch: TokenBatch) -> Tensor:
    """log π(y_t | prompt, y_<t) of every response token (B, R) at temperature 1 (grad follows ``model``)."""
    p, r = batch.prompt_len, batch.response_ids.size(1)
    h = backbone_hidden(model, batch)[:, p - 1 : p - 1 + r, :]
    head = model.get_output_embeddings()
    logits = F.linear(h, head.weight, getattr(head, "bias", None)).float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, batch.response_ids.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def _labels(ro: Any, batch: TokenBatch) -> Tensor:
    """0/1 correctness labels of the batch's rows. A rank with no rollouts holds one all-masked placeholder row
    (r1cli.train.rl.StepBatch): rows past ``ro.correct`` must be such placeholders and get label 0."""
    correct, n = list(ro.correct), len(batch)
    if len(correct) > n or (len(correct) < n and bool(batch.response_mask[len(correct) :].any())):
        raise ValueError(f"rollouts have {len(correct)} correctness labels for a batch of {n} rows")
    return torch.tensor([1.0 if c else 0.0 for c in correct] + [0.0] * (n - len(correct)))


def _clip_step(params: list[Tensor], opt: torch.optim.Optimizer, clip: float, dist: Any | None = None) -> float:
    """Sum the gradients over ranks (each rank's loss is its share of the global mean), clip, step."""
    if dist is not None:
        dist.all_reduce_grads(params)
    gn = float(torch.nn.utils.clip_grad_norm_(params, clip))
    if math.isfinite(gn):
        opt.step()
    opt.zero_grad(set_to_none=True)
    return gn


def _global_sums(dist: Any | None, values: list[float]) -> list[float]:
    return dist.sum(values) if dist is not None else values


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


class ImplicitPRM:
    """PRIME implicit PRM (see module docstring): a trainable LM π_φ and a frozen reference π_ref."""

    def __init__(
        self,
        model: Any,
        ref: Any | None = None,
        *,
        lr: float = 1e-6,
        beta: float = 0.05,
        micro_batch_size: int = 64,
        grad_clip: float = PRIME_GRAD_CLIP,
        pass_beta: bool = True,
        device: str | None = None,
        dist: Any | None = None,
    ) -> None:
        #: data-parallel ranks (r1cli.engines.dist.Dist) or None: see :meth:`update`
        self.dist = dist if dist is not None and dist.world > 1 else None
        self.device = device or default_device()
        self.model = model.to(self.device).train()
        self.ref = (ref if ref is not None else copy.deepcopy(model)).to(self.device).eval()
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
        self.beta = float(beta)
        self.micro_batch_size = max(1, int(micro_batch_size))
        self.grad_clip = grad_clip
        self.pass_beta = pass_beta

    @torch.no_grad()
    def token_logps(self, batch: TokenBatch) -> tuple[Tensor, Tensor]:
        """(log π_φ, log π_ref) of the response tokens, (B, R) each, 0 on masked positions, on CPU."""
        prm, ref = [], []
        was = self.model.training
        self.model.eval()
        try:
            for rows in _chunks(len(batch), self.micro_batch_size):
                mb = batch.select(rows).to(self.device)
                m = mb.response_mask
                prm.append((response_logprobs(self.model, mb) * m).cpu())
                ref.append((response_logprobs(self.ref, mb) * m).cpu())
        finally:
            self.model.train(was)
        return torch.cat(prm), torch.cat(ref)

    def implicit_reward(self, batch: TokenBatch) -> Tensor:
        """Sequence reward r(y) = β·Σ_t (log π_φ − log π_ref) per row (B,), no gradient."""
        lp, ref = self.token_logps(batch)
        return self.beta * ((lp - ref) * batch.response_mask).sum(-1)

    def advantage_inputs(self, batch: TokenBatch, ro: Any, ref_lp: Tensor | None) -> dict[str, Any]:
        """Inputs of the ``prime`` estimator. ``ref_lp`` (the policy's KL reference) is not used: the PRM's own
        frozen reference is the SFT model of PRIME's eq. 3."""
        lp, ref = self.token_logps(batch)
        out: dict[str, Any] = {"prm_logp": lp, "ref_logp": ref}
        if self.pass_beta:
            out["beta"] = self.beta
        return out

    def update(self, batch: TokenBatch, ro: Any) -> dict[str, float]:
        """One AdamW step of PRIME's CE loss (eq. 4) on this step's rollouts; mean over rows.

        Data-parallel (``self.dist``): this rank holds its share of the step's rollouts; the row count of the
        mean and every metric are summed over ranks and the gradients are summed before the step, so N ranks
        update exactly as one rank holding the whole batch."""
        y = _labels(ro, batch)
        real = len(ro.correct)
        b = _global_sums(self.dist, [float(real)])[0]
        loss_sum = right = r_sum = 0.0
        for rows in _chunks(real, self.micro_batch_size):
            mb = batch.select(rows).to(self.device)
            m = mb.response_mask
            lp = response_logprobs(self.model, mb)
            with torch.no_grad():
                ref = response_logprobs(self.ref, mb)
            r = self.beta * ((lp - ref) * m).sum(-1)
            loss = F.binary_cross_entropy_with_logits(r, y[rows].to(r.device), reduction="sum") / max(b, 1.0)
            loss.backward()
            rd = r.detach().cpu()
            loss_sum += float(loss.detach())
            right += float(((rd > 0).float() == y[rows]).sum())
            r_sum += float(rd.sum())
        gn = _clip_step(self.params, self.optimizer, self.grad_clip, self.dist)
        loss_sum, right, r_sum = _global_sums(self.dist, [loss_sum, right, r_sum])
        return {
            "prm_loss": loss_sum,
            "prm_acc": right / max(b, 1.0),
            "prm_reward_mean": r_sum / max(b, 1.0),
            "prm_grad_norm": gn,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class TokenRM:
    """OREAL token-level reward model (see module docstring): body + ``nn.Linear(hidden, 1)``."""

    def __init__(
        self,
        model: Any,
        head: nn.Linear | None = None,
        *,
        lr: float = 2e-6,
        micro_batch_size: int = 64,
        grad_clip: float = OREAL_GRAD_CLIP,
        threshold: float = 0.5,
        device: str | None = None,
        seed: int | None = None,
        dist: Any | None = None,
    ) -> None:
        #: data-parallel ranks (r1cli.engines.dist.Dist) or None: see :meth:`update`
        self.dist = dist if dist is not None and dist.world > 1 else None
        self.device = device or default_device()
        self.model = model.to(self.device).train()
        if head is None:
            # ``seed``: the head's init depends on it alone (the same on every rank, whatever the ranks drew
            # before); None: the global torch RNG
            h = hidden_size(model)
            head = nn.Linear(h, 1)
            gen = torch.Generator().manual_seed(int(seed) & 0x7FFFFFFFFFFFFFFF) if seed is not None else None
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=gen) / math.sqrt(h + 1))
            nn.init.zeros_(head.bias)
        self.head = head.to(self.device).float()
        body = backbone_of(self.model)
        self.params = [p for p in body.parameters() if p.requires_grad] + list(self.head.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
        self.micro_batch_size = max(1, int(micro_batch_size))
        self.grad_clip = grad_clip
        self.threshold = threshold

    def forward_logits(self, batch: TokenBatch) -> Tensor:
        """Per-token logits (B, R), 0 on masked positions. The logit of response token t is read at the position
        that predicts it (prompt_len − 1 + t: the hidden state of the prefix y_<t), the same slice as
        :func:`response_logprobs`, so token weights align with the tokens' log-probs."""
        batch = batch.to(self.device)
        p, r = batch.prompt_len, batch.response_ids.size(1)
        h = backbone_hidden(self.model, batch)[:, p - 1 : p - 1 + r, :]
        z = self.head(h.float()).squeeze(-1)
        return z * batch.response_mask.to(z.dtype)

    @torch.no_grad()
    def token_logits(self, batch: TokenBatch) -> Tensor:
        was = self.model.training
        self.model.eval()
        try:
            return torch.cat(
                [self.forward_logits(batch.select(rows)).cpu() for rows in _chunks(len(batch), self.micro_batch_size)]
            )
        finally:
            self.model.train(was)

    def advantage_inputs(self, batch: TokenBatch, ro: Any, ref_lp: Tensor | None) -> dict[str, Any]:
        return {}

    def loss_inputs(self, batch: TokenBatch, ro: Any) -> dict[str, Tensor]:
        """``token_weights`` (B, R) in [0, 1] for POLICY_LOSSES["oreal"] (r1cli.algos.oreal_token_weights)."""
        from r1cli.algos import oreal_token_weights

        positive = _labels(ro, batch).bool()
        z = self.token_logits(batch)
        return {"token_weights": oreal_token_weights(z, batch.response_mask, positive, self.threshold)}

    def update(self, batch: TokenBatch, ro: Any) -> dict[str, float]:
        """One AdamW step of BCE(mean_t logit_t, label), mean over rows. Data-parallel (``self.dist``): the row
        count and the metrics are summed over ranks and the gradients summed before the step (N ranks == 1)."""
        y = _labels(ro, batch)
        real = len(ro.correct)
        b = _global_sums(self.dist, [float(real)])[0]
        loss_sum = right = 0.0
        for rows in _chunks(real, self.micro_batch_size):
            mb = batch.select(rows)
            m = mb.response_mask.to(self.device)
            z = self.forward_logits(mb)
            s = (z * m).sum(-1) / m.sum(-1).clamp(min=1)
            loss = F.binary_cross_entropy_with_logits(s, y[rows].to(s.device), reduction="sum") / max(b, 1.0)
            loss.backward()
            loss_sum += float(loss.detach())
            right += float(((s.detach().cpu() > 0).float() == y[rows]).sum())
        gn = _clip_step(self.params, self.optimizer, self.grad_clip, self.dist)
        loss_sum, right = _global_sums(self.dist, [loss_sum, right])
        return {"rm_loss": loss_sum, "rm_acc": right / max(b, 1.0), "rm_grad_norm": gn}

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])


def make_prm(
    cfg: Recipe, *, init_model: str, stage: RLStage, stage_dir: Path, dist: Any | None = None
) -> ImplicitPRM | TokenRM:
    """The stage's online reward model (hook of r1cli.train.rl): OREAL's :class:`TokenRM` when
    ``rl.algorithm.policy_loss == "oreal"``, else PRIME's :class:`ImplicitPRM`; data-parallel over ``dist``."""
    from r1cli.engines.hf_rollout import load_model
    from r1cli.train.prompts import step_seed

    alg, pc = cfg.rl.algorithm, cfg.warmups.prm
    dtype = "float32" if cfg.rl.train.dtype == "float32" else "bfloat16"
    mbs = cfg.rl.train.micro_batch_size
    if alg.policy_loss == "oreal":
        if alg.advantage == "prime":
            raise ValueError(
                "rl.algorithm: advantage 'prime' needs PRIME's implicit PRM, but policy_loss 'oreal' selects "
                "OREAL's token-level RM; use e.g. advantage rloo with policy_loss oreal"
            )
        return TokenRM(
            load_model(init_model, dtype=dtype),
            lr=pc.lr,
            micro_batch_size=mbs,
            seed=step_seed(cfg.seed, stage.name, "token-rm"),
            dist=dist,
        )
    model = load_model(init_model, dtype=dtype)
    ref = load_model(init_model, dtype=dtype)
    return ImplicitPRM(
        model,
        ref,
        lr=pc.lr,
        beta=pc.beta,
        micro_batch_size=mbs,
        pass_beta="beta" not in alg.advantage_params,
        dist=dist,
    )
