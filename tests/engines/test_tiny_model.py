from __future__ import annotations

from pathlib import Path

import torch

from r1cli.engines.tiny_model import build_tiny


def test_tiny_loads_with_auto_classes(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    n = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < n < 2e6
    assert model.config.model_type == "qwen3"
    # digits are single tokens; tags survive a decode that skips special tokens
    text = "<think>7+5+0=12</think><answer>432</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.convert_ids_to_tokens(tok("432", add_special_tokens=False)["input_ids"]) == ["4", "3", "2"]
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "Q: 1+2="}], tokenize=False, add_generation_prompt=True
    )
    assert chat.endswith("<|im_start|>assistant\n")


def test_reloaded_tokenizer_matches_raw(tiny_model: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    for s in ["Q: 47+385=", "<think>0+3+1=4</think><answer>7</answer>", "Using the numbers [1, 2]"]:
        assert tok(s, add_special_tokens=False)["input_ids"] == raw.encode(s, add_special_tokens=False).ids


def test_deterministic_from_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build_tiny(
        a,
        seed=3,
        num_layers=1,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        num_kv_heads=1,
        head_dim=16,
    )
    build_tiny(
        b,
        seed=3,
        num_layers=1,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        num_kv_heads=1,
        head_dim=16,
    )
    build_tiny(
        c,
        seed=4,
        num_layers=1,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        num_kv_heads=1,
        head_dim=16,
    )
    from safetensors.torch import load_file

    wa, wb, wc = (load_file(str(p / "model.safetensors")) for p in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
