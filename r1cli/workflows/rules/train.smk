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
    shell:
        R1 + " train sft --run . " + LOG


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
    shell:
        R1 + " train rl --run . --stage {wildcards.stage} " + LOG


rule mine_hard:
    input:
        lambda wc: f"rl/{wc.stage}/DONE",
    output:
        "data/hard-{stage}.parquet",
    params:
        h=plan.hash("curation.mine_hard"),
    shell:
        R1 + " data mine-hard --run . --stage {wildcards.stage} " + LOG


rule drop_solved:
    input:
        done=lambda wc: f"rl/{wc.stage}/DONE",
        data=lambda wc: plan.rl_data(wc.stage),
    output:
        "data/unsolved-{stage}.parquet",
    shell:
        R1 + " data drop-solved --run . --stage {wildcards.stage} " + LOG


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
    shell:
        R1 + " train value --run . " + LOG


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
    shell:
        R1 + " long2short --run . " + LOG


rule limr_select:
    input:
        done=lambda wc: plan.limr_input(),
    output:
        "data/limr.parquet",
    params:
        h=plan.hash("curation.limr"),
    shell:
        R1 + " data limr --run . " + LOG
