"""Typer CLI. Modules here import torch only inside command functions (`r1 --help` stays fast)."""
