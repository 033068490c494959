"""Critic (PPO value model), PRIME implicit PRM and OREAL token RM on the untrained tiny model (CPU, fast)."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from r1cli.engines.batch import build_batch
from r1cli.train.critic import (
    Critic,
    critic_source,
    explained_variance,
    hidden_size,
    is_critic_dir,
    load_critic,
    make_critic,
    zero_head,
)
from r1cli.train.prm import ImplicitPRM, TokenRM, make_prm

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(path: Path):  # noqa: ANN202
    from r1cli.engines.hf_rollout import load_model

    return load_model(str(path), dtype="float32")


def _batch(seed: int = 0, rows: int = 4):  # noqa: ANN202
    rng = random.Random(seed)
    prompts = [[rng.randrange(10, 200) for _ in range(rng.randint(2, 6))] for _ in range(rows)]
    responses = [[rng.randrange(10, 200) for _ in range(rng.randint(1, 5))] for _ in range(rows)]
    return prompts, responses, build_batch(prompts, responses, pad_id=0)


def _cfg(**sets: object):  # noqa: ANN202
    from r1cli.config import resolve

    return resolve("tiny", [f"{k}={v}" for k, v in sets.items()])


# ------------------------------------------------------------------------------------------------ critic


def test_critic_values_alignment_and_masking(tiny_model: Path) -> None:
    model = _model(tiny_model)
    torch.manual_seed(0)
    head = torch.nn.Linear(hidden_size(model), 1)
    critic = Critic(model, head, lr=1e-3, micro_batch_size=3, device="cpu")
    prompts, responses, batch = _batch()
    v = critic.values(batch)
    assert v.shape == batch.response_mask.shape
    assert torch.all(v[batch.response_mask == 0] == 0)
    body = model.get_decoder()
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        ids = torch.tensor([p + r])
        with torch.no_grad():
            h = body(input_ids=ids, use_cache=False).last_hidden_state[0]
            # V(s_t) is read at the position of the last token before response token t
            want = head(h[len(p) - 1 : len(p) - 1 + len(r)]).squeeze(-1)
        torch.testing.assert_close(v[i, : len(r)], want, atol=1e-4, rtol=1e-4)


def test_explained_variance_hand_values() -> None:
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    ret = torch.tensor([[1.0, 1.0, 9.0], [0.0, 0.0, 9.0]])  # masked 9s must not count
    assert explained_variance(ret, ret, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(ret, 0.5), ret, mask) == pytest.approx(0.0)
    # V = 0.75 on the 1-rows, 0.25 on the 0-rows: residual var 0.0625, Var(R) = 0.25 -> 0.75
    v = torch.tensor([[0.75, 0.75, 0.0], [0.25, 0.25, 0.0]])
    assert explained_variance(v, ret, mask) == pytest.approx(0.75)
    assert explained_variance(v, torch.zeros_like(ret), mask) == 0.0  # constant target


def test_critic_update_fits_returns(tiny_model: Path) -> None:
    """Returns that depend on the prompt: the value loss falls and the explained variance becomes positive."""
    torch.manual_seed(0)
    model = _model(tiny_model)
    critic = Critic(model, zero_head(hidden_size(model)), lr=1e-3, micro_batch_size=4, value_clip=None,
                    device="cpu")
    prompts, responses, batch = _batch(seed=1, rows=8)
    mask = batch.response_mask
    target = torch.tensor([float(p[-1] % 2) for p in prompts])[:, None] * mask
    first = None
    for _ in range(25):
        old = critic.values(batch)
        m = critic.update(batch, returns=target, old_values=old, mask=mask)
        first = first if first is not None else m
    assert first["value_loss"] == pytest.approx(0.5 * float((target**2 * mask).sum() / mask.sum()))
    assert first["explained_var"] == pytest.approx(0.0, abs=1e-6)  # zero head: V = 0
    assert m["value_loss"] < 0.3 * first["value_loss"]
    assert m["explained_var"] > 0.5
    assert set(m) >= {"value_loss", "explained_var", "value_mean", "critic_grad_norm"}


def test_critic_clipped_update_moves_at_most_clip(tiny_model: Path) -> None:
    model = _model(tiny_model)
    critic = Critic(model, zero_head(hidden_size(model)), lr=1e-1, value_clip=0.2, device="cpu")
    _, _, batch = _batch(seed=2)
    mask = batch.response_mask
    old = critic.values(batch)
    m = critic.update(batch, returns=5.0 * mask, old_values=old, mask=mask)
    assert m["critic_grad_norm"] > 0
    new = critic.values(batch)
    assert float((new - old).abs().max()) > 0


def test_critic_export_roundtrip(tiny_model: Path, tmp_path: Path) -> None:
    model = _model(tiny_model)
    torch.manual_seed(3)
    critic = Critic(model, torch.nn.Linear(hidden_size(model), 1), lr=1e-3, device="cpu")
    _, _, batch = _batch(seed=3)
    v = critic.values(batch)
    critic.export(tmp_path / "critic")
    assert is_critic_dir(tmp_path / "critic") and (tmp_path / "critic" / "config.json").exists()
    m2, h2 = load_critic(tmp_path / "critic")
    torch.testing.assert_close(Critic(m2, h2, lr=1e-3, device="cpu").values(batch), v)
    # state dict round trip incl. optimizer
    st = critic.state_dict()
    c3 = Critic(_model(tiny_model), zero_head(hidden_size(model)), lr=1e-3, device="cpu")
    c3.load_state_dict(st)
    torch.testing.assert_close(c3.values(batch), v)


def test_make_critic_initialisation_order(tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    two = [
        "rl.stages=[{name: s1, steps: 1, max_response: 8}, {name: s2, steps: 1, max_response: 8}]",
        "rl.algorithm.advantage=gae",
    ]
    from r1cli.config import resolve

    cfg = resolve("tiny", [*two, "warmups.value.enabled=true"])
    s1, s2 = cfg.rl.stages
    with pytest.raises(FileNotFoundError, match="warmup/value/model"):
        critic_source(cfg, init_model=str(tiny_model), stage=s1, stage_dir=run / "rl" / "s1")
    model = _model(tiny_model)
    torch.manual_seed(4)
    Critic(model, torch.nn.Linear(hidden_size(model), 1), lr=1e-3, device="cpu").export(
        run / "warmup" / "value" / "model"
    )
    assert critic_source(cfg, init_model=str(tiny_model), stage=s1, stage_dir=run / "rl" / "s1")[0] == "warmup"
    # stage 2: previous stage's critic if exported, else the init model with a zero head
    assert critic_source(cfg, init_model=str(tiny_model), stage=s2, stage_dir=run / "rl" / "s2")[0] == "init"
    c = make_critic(cfg, init_model=str(tiny_model), stage=s2, stage_dir=run / "rl" / "s2")
    _, _, batch = _batch()
    assert float(c.values(batch).abs().max()) == 0.0
    c.export(run / "rl" / "s1" / "critic")
    assert critic_source(cfg, init_model=str(tiny_model), stage=s2, stage_dir=run / "rl" / "s2")[0] == "previous"
    no_warm = resolve("tiny", two)
    c1 = make_critic(no_warm, init_model=str(tiny_model), stage=s1, stage_dir=run / "rl" / "s1")
    assert c1.lr == pytest.approx(5 * no_warm.rl.train.lr)  # default critic lr = 5x policy lr


def test_make_critic_from_critic_init(tiny_model: Path, tmp_path: Path) -> None:
    """rl.train.critic_init replaces the policy's init model as a fresh critic's start: a plain causal LM dir
    (here a perturbed copy of the tiny model, relative to the run dir) gives its backbone and a zero head; a
    critic export keeps its value head; a previous stage's critic still wins. critic_mini_batches reaches the
    critic."""
    from r1cli.config import resolve

    run = tmp_path / "run"
    two = [
        "rl.stages=[{name: s1, steps: 1, max_response: 8}, {name: s2, steps: 1, max_response: 8}]",
        "rl.algorithm.advantage=gae",
    ]
    rm = _model(tiny_model)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in rm.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rm.save_pretrained(run / "models" / "rm")
    want = {k: v.detach().clone() for k, v in rm.state_dict().items()}

    cfg = resolve("tiny", [*two, "rl.train.critic_init=models/rm", "rl.train.critic_mini_batches=3"])
    s1, s2 = cfg.rl.stages
    kind, path = critic_source(cfg, init_model=str(tiny_model), stage=s1, stage_dir=run / "rl" / "s1")
    assert (kind, path) == ("critic_init", str(run / "models" / "rm"))
    c = make_critic(cfg, init_model=str(tiny_model), stage=s1, stage_dir=run / "rl" / "s1")
    got = c.model.state_dict()
    start = _model(tiny_model).state_dict()
    assert any(not torch.equal(start[k], want[k]) for k in want)
    for k, v in want.items():
        assert torch.equal(got[k], v), k
    assert float(c.head.weight.detach().abs().sum() + c.head.bias.detach().abs().sum()) == 0.0
    assert c.mini_batches == 3 and c.mini_batch_size is None
    assert resolve("tiny", two).rl.train.critic_mini_batches is None

    # a critic export as critic_init (absolute path): its value head comes along
    torch.manual_seed(6)
    exported = Critic(_model(tiny_model), torch.nn.Linear(hidden_size(rm), 1), lr=1e-3, device="cpu")
    exported.export(tmp_path / "critic-export")
    cfg2 = resolve("tiny", [*two, f"rl.train.critic_init={tmp_path / 'critic-export'}"])
    c2 = make_critic(cfg2, init_model=str(tiny_model), stage=s1, stage_dir=run / "rl" / "s1")
    _, _, batch = _batch()
    torch.testing.assert_close(c2.values(batch), exported.values(batch))

    # stage 2 continues the previous stage's critic when there is one
    assert critic_source(cfg, init_model=str(tiny_model), stage=s2, stage_dir=run / "rl" / "s2")[0] == "critic_init"
    c.export(run / "rl" / "s1" / "critic")
    assert critic_source(cfg, init_model=str(tiny_model), stage=s2, stage_dir=run / "rl" / "s2")[0] == "previous"


# ------------------------------------------------------------------------------------------------ PRIME


def test_prime_ce_update_moves_implicit_reward_toward_label(tiny_model: Path) -> None:
    prm = ImplicitPRM(_model(tiny_model), _model(tiny_model), lr=1e-3, beta=0.5, device="cpu")
    _, _, batch = _batch(seed=5, rows=4)
    ro = SimpleNamespace(correct=[True, False, True, False])
    r0 = prm.implicit_reward(batch)
    torch.testing.assert_close(r0, torch.zeros(4))  # PRM == reference at start: r = 0
    inputs = prm.advantage_inputs(batch, ro, None)
    assert inputs["beta"] == 0.5 and inputs["prm_logp"].shape == batch.response_mask.shape
    for _ in range(5):
        m = prm.update(batch, ro)
    r = prm.implicit_reward(batch)
    assert bool((r[[0, 2]] > 0).all()) and bool((r[[1, 3]] < 0).all())
    assert m["prm_acc"] == 1.0 and m["prm_loss"] < float(torch.log(torch.tensor(2.0)))
    # its inputs feed the `prime` estimator
    from r1cli.algos import ADVANTAGES

    out = ADVANTAGES["prime"](rewards=torch.tensor([1.0, 0.0, 1.0, 0.0]), mask=batch.response_mask,
                              index=[0, 0, 1, 1], **prm.advantage_inputs(batch, ro, None))
    assert torch.isfinite(out.advantages).all()
    assert torch.all(out.advantages[batch.response_mask == 0] == 0)


def test_make_prm_selects_kind(tiny_model: Path, tmp_path: Path) -> None:
    cfg = _cfg(**{"rl.algorithm.advantage": "prime", "warmups.prm.beta": 0.1})
    st = cfg.rl.stages[0]
    prm = make_prm(cfg, init_model=str(tiny_model), stage=st, stage_dir=tmp_path / "rl" / "s1")
    assert isinstance(prm, ImplicitPRM) and prm.beta == 0.1
    cfg2 = _cfg(**{"rl.algorithm.advantage": "rloo", "rl.algorithm.policy_loss": "oreal",
                   "warmups.prm.enabled": "true"})
    assert isinstance(make_prm(cfg2, init_model=str(tiny_model), stage=st, stage_dir=tmp_path), TokenRM)
    bad = _cfg(**{"rl.algorithm.advantage": "prime", "rl.algorithm.policy_loss": "oreal"})
    with pytest.raises(ValueError, match="prime"):
        make_prm(bad, init_model=str(tiny_model), stage=st, stage_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ OREAL


def test_oreal_token_rm_weights_and_update(tiny_model: Path) -> None:
    torch.manual_seed(6)
    rm = TokenRM(_model(tiny_model), lr=1e-3, device="cpu")
    _, _, batch = _batch(seed=6, rows=6)
    ro = SimpleNamespace(correct=[True, False, True, False, True, False])
    assert rm.advantage_inputs(batch, ro, None) == {}
    w = rm.loss_inputs(batch, ro)["token_weights"]
    assert w.shape == batch.response_mask.shape
    assert float(w.min()) >= 0.0 and float(w.max()) <= 1.0
    assert torch.all(w[batch.response_mask == 0] == 0)
    first = rm.update(batch, ro)
    for _ in range(15):
        m = rm.update(batch, ro)
    assert m["rm_loss"] < first["rm_loss"] and m["rm_acc"] == 1.0
    # a trained RM gives correct rows mostly high weights, and wrong rows high "negative" weights too
    w2 = rm.loss_inputs(batch, ro)["token_weights"]
    assert float((w2 * batch.response_mask).sum()) > float((w * batch.response_mask).sum())
    # the weights plug into the oreal policy loss
    from r1cli.algos import POLICY_LOSSES

    lp = torch.randn_like(w2, requires_grad=True)
    loss, _ = POLICY_LOSSES["oreal"](logp=lp, old_logp=lp.detach(), advantages=torch.ones_like(w2),
                                     mask=batch.response_mask, token_weights=w2)
    loss.sum().backward()
    assert lp.grad is not None
    st = rm.state_dict()
    rm2 = TokenRM(_model(tiny_model), lr=1e-3, device="cpu")
    rm2.load_state_dict(st)
    torch.testing.assert_close(rm2.token_logits(batch), rm.token_logits(batch))


def test_oreal_token_rm_reads_the_position_that_predicts_each_token(tiny_model: Path) -> None:
    """The RM logit of response token t comes from the hidden state at prompt_len - 1 + t (the same slice as
    the log-probs): it is head(h[p - 1 + t]) and does not depend on token t itself (causal model)."""
    from r1cli.train.critic import backbone_hidden

    torch.manual_seed(0)
    rm = TokenRM(_model(tiny_model), device="cpu")
    prompts = [[11, 12, 13], [21, 22]]
    responses = [[31, 32, 33, 34], [41, 42, 43]]
    batch = build_batch(prompts, responses, pad_id=0)
    z = rm.token_logits(batch)
    p = batch.prompt_len
    with torch.no_grad():
        h = backbone_hidden(rm.model, batch)
        want = rm.head(h[:, p - 1 : p - 1 + 4, :].float()).squeeze(-1) * batch.response_mask
    torch.testing.assert_close(z, want)
    # change only the last response token of row 0: its own logit is unchanged, as are all earlier ones
    responses2 = [[31, 32, 33, 99], [41, 42, 43]]
    z2 = rm.token_logits(build_batch(prompts, responses2, pad_id=0))
    torch.testing.assert_close(z2, z)
    # change the first response token: from token 1 on the logits move, token 0's does not
    z3 = rm.token_logits(build_batch(prompts, [[77, 32, 33, 34], [41, 42, 43]], pad_id=0))
    torch.testing.assert_close(z3[0, 0], z[0, 0])
    assert not torch.allclose(z3[0, 1:], z[0, 1:])
