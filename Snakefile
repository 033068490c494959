# r1 pipeline DAG. `r1 pipeline` runs it with --directory <run dir> --configfile <run dir>/config.yaml; in a clone
# the same DAG runs with plain Snakemake (`r1 pipeline RECIPE --print-snakemake` prints the command):
#   snakemake --profile profiles/local --configfile runs/X/config.yaml --directory runs/X
# profiles/default (Snakemake's workflow profile, loaded automatically) holds the rerun triggers.
# No ML work happens here: every rule's shell is an `r1 ...` stage command that reads the frozen config, so a
# Slurm job runs the very same CLI. Paths follow ARCHITECTURE.md's run directory layout; each job writes its
# output to its own `log:` file under logs/ (parallel jobs never share one).
#
# `snakemake --lint` reports one thing, on purpose: no per-rule conda env or container. Every rule runs the r1
# package installed with the interpreter that runs Snakemake (R1 below); one torch/transformers stack serves all
# stages, and a container per rule would duplicate it fourteen times.
import shlex
import sys

from r1cli.pipeline.dag import Plan

plan = Plan(config)
# Thread count of the job reaches the stage command as R1_THREADS (torch.set_num_threads in r1). The rules' shell
# commands are f-strings: {R1} is filled in here, doubled braces ({{log}}, {{wildcards.stage}}) are Snakemake's.
R1 = f"R1_THREADS={{threads}} OMP_NUM_THREADS={{threads}} {shlex.quote(sys.executable)} -m r1cli"


include: "workflows/rules/data.smk"
include: "workflows/rules/train.smk"
include: "workflows/rules/eval.smk"


localrules:
    all,
    base_model,
    prepare,
    filter_merge,
    mine_hard,
    drop_solved,
    limr_select,
    report,


rule all:
    input:
        plan.final_targets(),
