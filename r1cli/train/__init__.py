"""Training stages: SFT cold start, value pretraining, RL stages."""
