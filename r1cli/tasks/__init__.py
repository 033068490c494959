"""Core: built-in synthetic tasks (pure generators, no I/O) — used by data prepare and the tiny tokenizer."""
