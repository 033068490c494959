"""The embedded tiny model: a ~1M-parameter Qwen3- or Llama-type causal LM with a BPE tokenizer trained
offline on the task text, built deterministically from a seed and saved in HF format.

Pitfalls handled (ML-STACK-NOTES §2): not ``qwen2`` (AutoTokenizer would swap the tokenizer class); the
think/answer tags are *normal* added tokens so ``skip_special_tokens`` never strips them; digits are
always single tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(tasks: list[str], vocab_size: int, seed: int = 0) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from r1cli.tasks.synth import corpus

    text: list[str] = []
    for t in tasks:
        text.extend(corpus(t, seed=seed))
    # Extra generic text so that prompts of other templates tokenise to something sensible.
    text.extend(
        ["Question: Answer: Let's think step by step and output the final answer within \\boxed{}."] * 10
    )
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(text, trainer=trainer)
    tok.add_tokens(TAGS)  # normal (non-special) tokens: never stripped by decode
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        bos_token=None,
        additional_special_tokens=["<|endoftext|>", "<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_tiny(
    out: str | Path,
    *,
    seed: int = 0,
    arch: str = "qwen3",
    hidden_size: int = 128,
    intermediate_size: int = 512,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    head_dim: int = 32,
    max_positions: int = 256,
    vocab_size: int = 384,
    tasks: list[str] | None = None,
) -> dict[str, Any]:
    """Build and save the tiny model + tokenizer into ``out`` (atomically). Returns a summary."""
    import torch
    from transformers import AutoModelForCausalLM

    from r1cli.utils.io import atomic_dir, atomic_write_json

    tasks = tasks or ["addition", "countdown"]
    tok = build_tokenizer(tasks, vocab_size, seed=seed)
    common = dict(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    if arch == "qwen3":
        from transformers import Qwen3Config

        cfg = Qwen3Config(head_dim=head_dim, **common)
    elif arch == "llama":
        from transformers import LlamaConfig

        cfg = LlamaConfig(head_dim=head_dim, **common)
    else:
        raise ValueError(f"tiny model arch must be qwen3 or llama, got {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = None
    n_params = sum(p.numel() for p in model.parameters())
    summary = {"arch": arch, "params": n_params, "vocab_size": len(tok), "seed": seed, "tasks": tasks}
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "r1_tiny.json", summary)
    return summary

