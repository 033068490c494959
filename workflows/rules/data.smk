# Data rules: base model, prepare, dedup/decontaminate, pass-rate filter (sharded fan-out + merge).


rule base_model:
    output:
        directory("base/model"),
    params:
        h=plan.hash("model", "seed"),
    threads: plan.threads(None)
    resources:
        **plan.resources(None),
    log:
        "logs/base_model.log",
    shell:
        f"{R1} model tiny --run . > {{log}} 2>&1"


rule prepare:
    output:
        "data/{split}.parquet",
    wildcard_constraints:
        split="prepared|test|sft",
    params:
        h=lambda wc: plan.prepare_hash(wc.split),
    log:
        "logs/prepare/{split}.log",
    shell:
        f"{R1} data prepare --run . --split {{wildcards.split}} > {{log}} 2>&1"


rule clean:
    input:
        "data/prepared.parquet",
    output:
        "data/clean.parquet",
    params:
        h=plan.hash("curation.dedup", "curation.decontaminate", "data.data_dir"),
    threads: plan.threads(None)
    resources:
        **plan.resources(None),
    log:
        "logs/clean.log",
    shell:
        f"{R1} data clean --run . > {{log}} 2>&1"


rule filter_shard:
    input:
        data=plan.pre_filter_data(),
        model=plan.model_dir(config["curation"]["filter"]["model"]),
    output:
        "data/passrates/shard-{i}-of-{n}.parquet",
    params:
        h=plan.filter_shard_hash(),
    threads: plan.threads("curation.filter")
    resources:
        **plan.resources("curation.filter"),
    log:
        "logs/filter/shard-{i}-of-{n}.log",
    shell:
        f"{R1} data filter --run . --shard {{wildcards.i}}/{{wildcards.n}} > {{log}} 2>&1"


rule filter_merge:
    input:
        plan.filter_shards(),
    output:
        passrates="data/passrates.parquet",
        filtered="data/filtered.parquet",
    params:
        h=plan.filter_merge_hash(),
    log:
        "logs/filter/merge.log",
    shell:
        f"{R1} data filter --run . --merge > {{log}} 2>&1"
