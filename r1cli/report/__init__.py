"""Run report: curves across RL stages, eval table beside published numbers, data funnel."""
