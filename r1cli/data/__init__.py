"""Data stages: prepare, dedup, decontaminate, pass-rate filter, LIMR, hard-prompt mining."""
