# Warmup and RL rules. Training checkpoints live in <stage>/checkpoints, outside the declared outputs
# (Snakemake deletes the outputs of a failed job), so a rerun resumes from the newest complete checkpoint.


rule sft:
    input:
        data=plan.sft_data(),
        model=plan.model_dir("base"),
    output:
        directory("warmup/sft/model"),
    params:
        h=plan.hash("warmups.sft", "seed", "template"),
    threads: plan.threads("warmups.sft")
    resources:
        **plan.resources("warmups.sft"),
    log:
        "logs/warmup/sft.log",
    shell:
        f"{R1} train sft --run . > {{log}} 2>&1"


rule rl_stage:
    input:
        data=lambda wc: plan.rl_data(wc.stage),
        model=lambda wc: plan.rl_init_model(wc.stage),
        extra=lambda wc: plan.rl_extra_inputs(wc.stage),
    output:
        model=directory("rl/{stage}/model"),
        done="rl/{stage}/DONE",
    params:
        h=lambda wc: plan.rl_hash(wc.stage),
    threads: lambda wc: plan.stage_threads(wc.stage)
    resources:
        **plan.stage_resources(),
    log:
        "logs/rl/{stage}.log",
    shell:
        f"{R1} train rl --run . --stage {{wildcards.stage}} > {{log}} 2>&1"


rule mine_hard:
    input:
        lambda wc: f"rl/{wc.stage}/DONE",
    output:
        "data/hard-{stage}.parquet",
    params:
        h=plan.hash("curation.mine_hard"),
    log:
        "logs/mine_hard/{stage}.log",
    shell:
        f"{R1} data mine-hard --run . --stage {{wildcards.stage}} > {{log}} 2>&1"


rule drop_solved:
    input:
        done=lambda wc: f"rl/{wc.stage}/DONE",
        data=lambda wc: plan.rl_data(wc.stage),
    output:
        "data/unsolved-{stage}.parquet",
    log:
        "logs/drop_solved/{stage}.log",
    shell:
        f"{R1} data drop-solved --run . --stage {{wildcards.stage}} > {{log}} 2>&1"


rule value_warmup:
    input:
        data=plan.train_data(),
        model=plan.start_model(),
    output:
        directory("warmup/value/model"),
    params:
        h=plan.hash("warmups.value", "rl.reward", "seed", "rl.train.critic_init"),
    threads: plan.threads("warmups.value")
    resources:
        **plan.resources("warmups.value"),
    log:
        "logs/warmup/value.log",
    shell:
        f"{R1} train value --run . > {{log}} 2>&1"


rule long2short:
    input:
        model=plan.model_dir("final"),
        data=plan.train_data(),
    output:
        directory("long2short/model"),
    params:
        h=plan.hash("long2short", "seed"),
    threads: plan.threads("long2short")
    resources:
        **plan.resources("long2short"),
    log:
        "logs/long2short.log",
    shell:
        f"{R1} long2short --run . > {{log}} 2>&1"


rule limr_select:
    input:
        done=lambda wc: plan.limr_input(),
    output:
        "data/limr.parquet",
    params:
        h=plan.hash("curation.limr"),
    log:
        "logs/limr.log",
    shell:
        f"{R1} data limr --run . > {{log}} 2>&1"
