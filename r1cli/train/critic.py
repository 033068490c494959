"""PPO critic for the ``gae`` / ``vapo_gae`` estimators: a copy of the policy's transformer backbone with a
scalar value head (``nn.Linear(hidden, 1)``), trained with the clipped value loss (``r1cli.algos.value_loss``).

Alignment: the value of the state *before* response token t is read from the hidden state at position
``prompt_len - 1 + t`` — the same position whose logits give ``log π(y_t)`` in
``TorchTrainer.response_logprobs`` — so ``values[:, t]`` is V(s_t) with s_t = prompt + y_<t.

Initialisation order (:func:`make_critic`): the value warm-up's export ``<run>/warmup/value/model`` for the first
RL stage when ``warmups.value.enabled`` (VC-PPO / VAPO value pretraining); else the previous RL stage's export
``<run>/rl/<prev>/critic``; else a fresh critic: from ``rl.train.critic_init`` when set (e.g. a reward model, as
VAPO initialises its value model from one; :func:`critic_init_path`), otherwise from the stage's init (policy)
model. A fresh critic keeps the value head of a critic export (:func:`is_critic_dir`) and gets a zero-initialised
head otherwise (V ≡ 0 at start; the backbone of a causal LM or reward model dir, its own heads unused). The value
warm-up (r1cli.train.value) starts from the same fresh critic. ``critic_init`` must share the policy's tokenizer:
the critic reads the policy's token ids.

Export format (:meth:`Critic.export`, :func:`load_critic`): an HF model dir of the backbone's causal LM
(``save_pretrained``, so any HF loader reads it) plus ``value_head.pt`` (the head's state dict) and
``critic.json`` (hidden size, head dtype). The LM head rides along unused: it keeps the dir a normal HF model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from r1cli.config import Recipe
from r1cli.config.schema import RLStage
from r1cli.engines.batch import TokenBatch

VALUE_HEAD = "value_head.pt"
CRITIC_META = "critic.json"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def hidden_size(model: Any) -> int:
    cfg = model.config
    h = getattr(cfg, "hidden_size", None)
    if h is None and hasattr(cfg, "get_text_config"):
        h = getattr(cfg.get_text_config(), "hidden_size", None)
    if h is None:
        raise ValueError(f"cannot read hidden_size from the config of {type(model).__name__}")
    return int(h)


def backbone_of(model: Any) -> Any:
    """The transformer body of a causal LM (no LM head)."""
    return model.get_decoder() if hasattr(model, "get_decoder") else model.model


def backbone_hidden(model: Any, batch: TokenBatch) -> Tensor:
    """Last hidden states ``(B, P+R, H)`` of the causal LM's body for a padded prompt+response batch."""
    return backbone_of(model)(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    ).last_hidden_state


def is_critic_dir(path: str | Path) -> bool:
    return (Path(path) / VALUE_HEAD).is_file()


def load_critic(path: str | Path, dtype: str = "float32", device: str = "cpu") -> tuple[Any, nn.Linear]:
    """Read a critic export: (causal LM whose body is the critic's backbone, value head)."""
    from r1cli.engines.hf_rollout import load_model

    path = Path(path)
    if not is_critic_dir(path):
        raise FileNotFoundError(f"{path}: not a critic export (no {VALUE_HEAD})")
    model = load_model(str(path), dtype=dtype, device=device)
    head = nn.Linear(hidden_size(model), 1)
    head.load_state_dict(torch.load(path / VALUE_HEAD, map_location="cpu", weights_only=True))
    return model, head.to(device)


def zero_head(hidden: int) -> nn.Linear:
    head = nn.Linear(hidden, 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class Critic:
    """Value model V(s_t) for every response token of a batch; its own AdamW.

    ``micro_batch_size`` rows per forward/backward. ``update`` makes ``epochs`` passes over the batch; each pass
    takes one optimizer step per mini-batch of consecutive rows: ``mini_batch_size`` rows each, or, with
    ``mini_batches`` = k (``rl.train.critic_mini_batches``; ORZ uses 12), ⌈B/k⌉ rows each for a batch of B rows,
    the last one possibly smaller (10 rows, k = 3: 4 + 4 + 2). That is k steps as a rule, fewer when ⌈B/k⌉
    rows cover the batch sooner (10 rows, k = 6: 5 steps of 2), never more than k nor more than B. At most one
    of the two may be set; neither: one step on the whole batch. The loss of a step is the token-mean over its
    rows' valid tokens (micro-batch losses are summed with the step's token count as denominator, so
    accumulation equals one step on the mini-batch)."""

    def __init__(  # noqa: PLR0913 - mirrors rl.train critic keys one to one
        self,
        model: Any,
        head: nn.Linear,
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        micro_batch_size: int = 64,
        value_clip: float | None = 0.2,
        epochs: int = 1,
        mini_batch_size: int | None = None,
        mini_batches: int | None = None,
        device: str | None = None,
        dist: Any | None = None,
    ) -> None:
        #: data-parallel ranks (r1cli.engines.dist.Dist) or None: see :meth:`update`
        self.dist = dist if dist is not None and dist.world > 1 else None
        if mini_batch_size is not None and mini_batches is not None:
            raise ValueError(
                f"set mini_batch_size ({mini_batch_size}) or mini_batches ({mini_batches}), not both: they are "
                "two ways to size the critic's optimizer steps"
            )
        if mini_batches is not None and int(mini_batches) < 1:
            raise ValueError(f"mini_batches must be >= 1, got {mini_batches}")
        self.device = device or default_device()
        self.model = model.to(self.device)
        self.head = head.to(self.device).float()
        self.model.train()
        # only the body and the head are optimised; the LM head (if untied) gets no gradient
        body = backbone_of(self.model)
        self._params = [p for p in body.parameters() if p.requires_grad] + list(self.head.parameters())
        self.optimizer = torch.optim.AdamW(self._params, lr=lr, betas=betas, weight_decay=weight_decay)
        self.grad_clip = grad_clip
        self.micro_batch_size = max(1, int(micro_batch_size))
        self.value_clip = value_clip
        self.epochs = max(1, int(epochs))
        if mini_batch_size is not None and int(mini_batch_size) < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
        self.mini_batch_size = None if mini_batch_size is None else int(mini_batch_size)
        self.mini_batches = None if mini_batches is None else int(mini_batches)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step_rows(self, rows: int) -> int:
        """Rows per optimizer step for a batch of ``rows`` rows (see the class docstring)."""
        if self.mini_batch_size is not None:
            return self.mini_batch_size
        if self.mini_batches is not None:
            return max(1, math.ceil(rows / self.mini_batches))
        return max(1, rows)

    # --- forward -------------------------------------------------------------------------------------------
    def forward_values(self, batch: TokenBatch) -> Tensor:
        """Values (B, R) with gradient, zero on masked positions."""
        batch = batch.to(self.device)
        p, r = batch.prompt_len, batch.response_ids.size(1)
        h = backbone_hidden(self.model, batch)[:, p - 1 : p - 1 + r, :]
        v = self.head(h.float()).squeeze(-1)
        return v * batch.response_mask.to(v.dtype)

    @torch.no_grad()
    def values(self, batch: TokenBatch) -> Tensor:
        """No-grad values (B, R) of the states before each response token (on CPU), 0 on masked positions."""
        was = self.model.training
        self.model.eval()
        try:
            out = [
                self.forward_values(batch.select(list(range(i, min(len(batch), i + self.micro_batch_size)))))
                for i in range(0, len(batch), self.micro_batch_size)
            ]
        finally:
            self.model.train(was)
        return torch.cat(out).cpu()

    # --- optimisation --------------------------------------------------------------------------------------
    def update(
        self,
        batch: TokenBatch,
        *,
        returns: Tensor,
        old_values: Tensor,
        mask: Tensor,
        order: list[int] | None = None,
        global_rows: int | None = None,
    ) -> dict[str, float]:
        """``epochs`` passes of the clipped value loss, one optimizer step per mini-batch (``mini_batch_size``
        or ``mini_batches``, see the class); ``critic_steps`` counts them over all passes (mini-batches without a
        valid token take no step).

        Data-parallel (``self.dist`` with several ranks): this rank holds rows ``order`` (their indices in the
        step's global batch of ``global_rows`` rows, ascending); mini-batches are slices of the global order,
        their token denominators and every metric are summed over ranks and gradients are summed before the
        step, so N ranks update exactly as one rank with the whole batch.

        Metrics: ``value_loss`` (½·squared error of the first pass, token-mean), ``explained_var`` =
        1 − Var(R − V)/Var(R) of the first-pass predictions (each made before the step on its own mini-batch,
        so on rollouts not yet trained on), ``value_mean``, ``return_mean``, ``vf_clipfrac``,
        ``critic_grad_norm`` (mean over steps), ``critic_steps``."""
        from r1cli.algos import value_loss

        b = len(batch)
        if tuple(returns.shape) != tuple(mask.shape) or tuple(old_values.shape) != tuple(mask.shape):
            raise ValueError(
                f"returns {tuple(returns.shape)}, old_values {tuple(old_values.shape)} and mask "
                f"{tuple(mask.shape)} must have the same shape"
            )
        order = list(range(b)) if order is None else list(order)
        gb = b if global_rows is None else int(global_rows)
        mask = mask.float()
        total = self._sum([float(mask.sum())])[0]
        if total == 0:
            return {"value_loss": 0.0, "explained_var": 0.0, "value_mean": 0.0, "critic_grad_norm": 0.0}
        mbs = self.micro_batch_size
        step_rows = self.step_rows(gb)
        first_v = torch.zeros_like(mask)
        loss_sum = clip_sum = 0.0
        norms: list[float] = []
        for epoch in range(self.epochs):
            for s0 in range(0, gb, step_rows):
                local = [i for i, g in enumerate(order) if s0 <= g < s0 + step_rows]
                step_total = self._sum([float(mask[local].sum()) if local else 0.0])[0]
                if step_total == 0:
                    continue
                for i in range(0, len(local), mbs):
                    rows = local[i : i + mbs]
                    m = mask[rows].to(self.device)
                    v = self.forward_values(batch.select(rows))
                    lmat, vm = value_loss(
                        values=v,
                        old_values=old_values[rows].to(self.device),
                        returns=returns[rows].to(self.device),
                        mask=m,
                        clip_range=self.value_clip,
                    )
                    loss = (lmat * m).sum() / step_total
                    loss.backward()
                    if epoch == 0:
                        first_v[rows] = v.detach().cpu().float()
                        with torch.no_grad():
                            se = 0.5 * ((v.detach() - returns[rows].to(self.device)) ** 2 * m).sum()
                        loss_sum += float(se)
                        clip_sum += vm["vf_clipfrac"] * float(m.sum())
                norms.append(self._step())
        r = returns.float()
        d = r - first_v
        sums = self._sum([loss_sum, clip_sum, float((first_v * mask).sum()), float((r * mask).sum()),
                          float((d * mask).sum()), float((d * d * mask).sum()), float((r * r * mask).sum())])
        loss_sum, clip_sum, v_sum, r_sum, d1, d2, r2 = sums
        var_d = d2 / total - (d1 / total) ** 2
        var_r = r2 / total - (r_sum / total) ** 2
        return {
            "value_loss": loss_sum / total,
            "explained_var": 1.0 - var_d / var_r if var_r > 1e-12 else 0.0,
            "value_mean": v_sum / total,
            "return_mean": r_sum / total,
            "vf_clipfrac": clip_sum / total,
            "critic_grad_norm": sum(norms) / max(1, len(norms)),
            "critic_lr": self.lr,
            "critic_steps": float(len(norms)),
        }

    def _sum(self, values: list[float]) -> list[float]:
        return self.dist.sum(values) if self.dist is not None else values

    def _step(self) -> float:
        if self.dist is not None:
            self.dist.all_reduce_grads(self._params)
        if self.grad_clip:
            gn = float(torch.nn.utils.clip_grad_norm_(self._params, self.grad_clip))
        else:
            grads = [p.grad.norm() for p in self._params if p.grad is not None]
            gn = float(torch.norm(torch.stack(grads))) if grads else 0.0
        if math.isfinite(gn):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return gn

    # --- state ---------------------------------------------------------------------------------------------
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

    def export(self, out: str | Path, tokenizer: Any | None = None) -> None:
        """Atomic HF-format backbone + ``value_head.pt`` + ``critic.json`` (see module docstring); rank 0 writes."""
        from r1cli.utils.io import atomic_dir

        if self.dist is not None and not self.dist.is_main:
            self.dist.barrier()
            return
        with atomic_dir(out) as tmp:
            self.model.save_pretrained(tmp)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            torch.save({k: v.detach().cpu() for k, v in self.head.state_dict().items()}, tmp / VALUE_HEAD)
            (tmp / CRITIC_META).write_text(
                json.dumps({"hidden_size": int(self.head.in_features), "head_dtype": "float32"})
            )
        if self.dist is not None:
            self.dist.barrier()


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """1 − Var(R − V) / Var(R) over the valid tokens (population variances); 0 when Var(R) = 0."""
    m = mask.float()
    n = float(m.sum())
    if n == 0:
        return 0.0
    r = returns.float()
    d = r - values.float()

    def var(x: Tensor) -> float:
        mu = float((x * m).sum()) / n
        return float((((x - mu) ** 2) * m).sum()) / n

    vr = var(r)
    return 1.0 - var(d) / vr if vr > 0 else 0.0


def critic_init_path(cfg: Recipe, run: str | Path | None) -> str | None:
    """``rl.train.critic_init`` as a loadable path/id, None when unset. A relative path that exists inside the
    run dir ``run`` is taken from there (like other model paths of a recipe); anything else is returned as
    written (an absolute path, a path relative to the working directory, or a hub id)."""
    name = cfg.rl.train.critic_init
    if name is None:
        return None
    p = Path(name)
    if run is not None and not p.is_absolute() and (Path(run) / p).exists():
        return str(Path(run) / p)
    return name


def fresh_critic(path: str, dtype: str = "float32", device: str = "cpu") -> tuple[Any, nn.Linear, str]:
    """A critic that starts at ``path``: ``(causal LM whose body is the backbone, value head, head origin)``.
    A critic export keeps its value head (``"value head of the export"``); any other model dir or id (a policy,
    a causal LM, a reward model) loads as a causal LM and gets :func:`zero_head` (``"zero head"``)."""
    from r1cli.engines.hf_rollout import load_model

    if is_critic_dir(path):
        model, head = load_critic(path, dtype=dtype, device=device)
        return model, head, "value head of the export"
    model = load_model(path, dtype=dtype, device=device)
    return model, zero_head(hidden_size(model)).to(device), "zero head"


def critic_source(cfg: Recipe, *, init_model: str, stage: RLStage, stage_dir: Path) -> tuple[str, str]:
    """Where the stage's critic starts: ("warmup" | "previous" | "critic_init" | "init", path). See the module
    docstring; ``critic_init`` (``rl.train.critic_init``) replaces ``init`` (the policy's init model)."""
    from r1cli.config.rundir import RunDir

    run = Path(stage_dir).parent.parent
    rd = RunDir(run)
    names = [s.name for s in cfg.rl.stages]
    idx = names.index(stage.name) if stage.name in names else -1
    if cfg.warmups.value.enabled and idx == 0:
        p = rd.warmup("value") / "model"
        if not is_critic_dir(p):
            raise FileNotFoundError(
                f"{p}: warmups.value.enabled but no pretrained critic there (run `r1 train value --run {run}`)"
            )
        return "warmup", str(p)
    if idx > 0:
        p = rd.rl(names[idx - 1]) / "critic"
        if is_critic_dir(p):
            return "previous", str(p)
    init = critic_init_path(cfg, run)
    if init is not None:
        return "critic_init", init
    return "init", init_model


def make_critic(cfg: Recipe, *, init_model: str, stage: RLStage, stage_dir: Path, dist: Any | None = None) -> Critic:
    """The RL stage's critic (hook of r1cli.train.rl); lr = rl.train.critic_lr or 5x the policy lr; optimizer
    steps per pass from rl.train.critic_mini_batches (None: one on all of the step's rollouts)."""
    from r1cli.utils.progress import log

    tr = cfg.rl.train
    dtype = "float32" if tr.dtype == "float32" else "bfloat16"
    kind, path = critic_source(cfg, init_model=init_model, stage=stage, stage_dir=stage_dir)
    if kind in ("init", "critic_init"):
        model, head, origin = fresh_critic(path, dtype=dtype)
        log(f"critic: initialised from {kind} ({path}), {origin}")
    else:
        model, head = load_critic(path, dtype=dtype)
        log(f"critic: initialised from {kind} ({path})")
    policy_lr = stage.lr or tr.lr
    return Critic(
        model,
        head,
        lr=tr.critic_lr if tr.critic_lr is not None else 5.0 * policy_lr,
        betas=tuple(tr.betas),  # type: ignore[arg-type]
        weight_decay=tr.weight_decay,
        grad_clip=tr.grad_clip,
        micro_batch_size=tr.micro_batch_size,
        value_clip=cfg.rl.algorithm.value_clip,
        epochs=cfg.rl.algorithm.ppo_epochs,
        mini_batches=tr.critic_mini_batches,
        dist=dist,
    )
