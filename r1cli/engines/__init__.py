"""Engines: rollout (hf, vllm) and training (torch, deepspeed). Imported lazily; know nothing of recipes."""
