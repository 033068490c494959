"""r1: reproduce R1-style RL recipes for LLM reasoning as resumable pipelines."""

__version__ = "0.1.0"
