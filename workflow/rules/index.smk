from quantlab.commands.run.steps import step_refresh_index


rule refresh_index:
    input:
        "requests/{run_id}/{kind}/published.json",
    output:
        "requests/{run_id}/{kind}/index.json",
    log:
        f"{LOG_DIR}/refresh_index/{{run_id}}_{{kind}}.log",
    wildcard_constraints:
        kind="run|sweep|forward",
    run:
        step_refresh_index(
            full("requests", wildcards.run_id), input[0], output[0], log=log[0]
        )
