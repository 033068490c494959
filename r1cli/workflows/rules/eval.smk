# Evaluation fan-out over (model x benchmark) and the report. The sampling spec is hashed into the path.


rule eval:
    input:
        model=lambda wc: plan.model_dir(wc.model),
        data=lambda wc: plan.benchmark_input(wc.bench),
    output:
        "eval/{model}/{bench}/{spec}/metrics.json",
    params:
        h=plan.hash("eval"),
    threads: plan.threads("eval")
    resources:
        **plan.resources("eval"),
    shell:
        R1 + " eval --run . --model-name {wildcards.model} --benchmarks {wildcards.bench} " + LOG


rule report:
    input:
        plan.report_inputs(),
    output:
        "report/index.html",
    shell:
        R1 + " report --run . " + LOG
