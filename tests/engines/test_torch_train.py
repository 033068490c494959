"""TorchTrainer optimizer choice (``rl.train.optimizer``): AdamW (default) and Adafactor (TOPR) on the tiny
model, CPU; a resumed trainer takes exactly the step an uninterrupted one takes."""

from __future__ import annotations

import copy
import io
import random
from pathlib import Path

import pytest
import torch

from r1cli.engines.batch import build_batch
from r1cli.engines.torch_train import OPTIMIZERS, TorchTrainer, make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(path: Path):  # noqa: ANN202
    from r1cli.engines.hf_rollout import load_model

    return load_model(str(path), dtype="float32")


def _batch(seed: int):  # noqa: ANN202
    rng = random.Random(seed)
    prompts = [[rng.randrange(10, 200) for _ in range(rng.randint(2, 6))] for _ in range(4)]
    responses = [[rng.randrange(10, 200) for _ in range(rng.randint(1, 5))] for _ in range(4)]
    return build_batch(prompts, responses, pad_id=0)


def _train_step(tr: TorchTrainer, seed: int) -> float:
    """One optimizer step on a fixed objective (mean response log-prob, maximised); returns the grad norm."""
    batch = _batch(seed)
    logp, _ = tr.response_logprobs(batch)
    m = batch.response_mask
    loss = -(logp * m).sum() / m.sum()
    loss.backward()
    return tr.step()


def _params(tr: TorchTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr.model.named_parameters()}


def _trainer(model, optimizer: str) -> TorchTrainer:  # noqa: ANN001
    return TorchTrainer(model, lr=1e-2, weight_decay=0.01, schedule="cosine", warmup_steps=1, total_steps=4,
                        optimizer=optimizer)


def test_optimizer_by_name() -> None:
    p = [torch.nn.Parameter(torch.zeros(3, 2))]
    assert OPTIMIZERS == ("adamw", "adafactor")
    assert isinstance(make_optimizer("adamw", p, lr=1e-3), torch.optim.AdamW)
    af = make_optimizer("adafactor", p, lr=1e-3, betas=(0.5, 0.5), weight_decay=0.1)
    assert isinstance(af, torch.optim.Adafactor)
    assert af.param_groups[0]["lr"] == 1e-3 and af.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="adamw, adafactor"):
        make_optimizer("sgd", p, lr=1e-3)


def test_unknown_optimizer_is_rejected(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'lion'.*adamw, adafactor"):
        TorchTrainer(_model(tiny_model), lr=1e-3, optimizer="lion")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_step_changes_weights_and_resume_is_exact(tiny_model: Path, optimizer: str) -> None:
    """A step moves the weights; state_dict -> fresh trainer -> load_state_dict (through torch.save bytes,
    as a checkpoint does) takes the same next step, bit for bit."""
    tr = _trainer(_model(tiny_model), optimizer)
    assert type(tr.optimizer).__name__.lower() == optimizer
    before = _params(tr)
    gn = _train_step(tr, seed=0)
    assert gn > 0
    after = _params(tr)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(moved) > len(before) // 2, moved
    _train_step(tr, seed=1)

    buf = io.BytesIO()
    torch.save(copy.deepcopy(tr.state_dict()), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=False)
    if optimizer == "adafactor":  # factored second moments for matrices, no first moment
        states = list(state["optimizer"]["state"].values())
        assert not any("exp_avg" in st for st in states)
        assert any({"row_var", "col_var"} <= set(st) for st in states)
    resumed = _trainer(_model(tiny_model), optimizer)
    resumed.load_state_dict(state)
    assert resumed.lr == tr.lr

    gn_a = _train_step(tr, seed=2)
    gn_b = _train_step(resumed, seed=2)
    assert gn_a == gn_b
    assert tr.lr == resumed.lr
    a, b = _params(tr), _params(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_adafactor_differs_from_adamw(tiny_model: Path) -> None:
    """The choice takes effect: the same step from the same weights lands elsewhere."""
    runs = {}
    for name in OPTIMIZERS:
        tr = _trainer(_model(tiny_model), name)
        _train_step(tr, seed=0)
        runs[name] = _params(tr)
    assert any(not torch.equal(runs["adamw"][k], runs["adafactor"][k]) for k in runs["adamw"])


def test_entropy_is_differentiable_on_both_logit_paths(tiny_model: Path) -> None:
    """An entropy bonus needs d(entropy)/d(weights): the one-matmul path (small vocab x tokens) must give the
    same entropy and gradient as the chunked path (regression: the direct path once detached it)."""
    m = _model(tiny_model)
    with torch.no_grad():  # the embedded model starts uniform (zero entropy gradient): perturb its head
        m.get_output_embeddings().weight.add_(0.05 * torch.randn_like(m.get_output_embeddings().weight))
    batch = _batch(3)
    out = []
    for direct_max in (1 << 40, 0):
        tr = TorchTrainer(copy.deepcopy(m), lr=1e-3)
        tr.direct_logits_max = direct_max
        _, ent = tr.response_logprobs(batch, 1.0, with_entropy=True)
        assert ent is not None and ent.requires_grad
        (ent * batch.response_mask).sum().backward()
        g = torch.cat([p.grad.flatten() for p in tr.model.parameters() if p.grad is not None])
        out.append((ent.detach(), g))
    (e1, g1), (e2, g2) = out
    assert torch.allclose(e1, e2, atol=1e-5)
    assert float(g1.norm()) > 0 and torch.allclose(g1, g2, atol=1e-5, rtol=1e-4)
