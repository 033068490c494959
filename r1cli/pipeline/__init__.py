"""Orchestration: recipe -> run directory -> Snakemake DAG; profiles; status; resume."""
