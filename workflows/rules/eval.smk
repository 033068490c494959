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
    log:
        "logs/eval/{model}/{bench}/{spec}.log",
    shell:
        f"{R1} eval --run . --model-name {{wildcards.model}} --benchmarks {{wildcards.bench}} > {{log}} 2>&1"


rule report:
    input:
        plan.report_inputs(),
    output:
        "report/index.html",
    log:
        "logs/report.log",
    shell:
        f"{R1} report --run . > {{log}} 2>&1"
