from quantlab.commands.run.steps import step_plot, step_publish, step_publish_paper


rule plot_equity:
    input:
        "store/sim/{mkey}/equity.parquet",
    output:
        "store/sim/{mkey}/equity.png",
    log:
        f"{LOG_DIR}/plot_equity/{{mkey}}.log",
    run:
        step_plot(config["sim"][wildcards.mkey], input[0], output[0], log=log[0])


rule publish_run:
    input:
        published_inputs,
    output:
        "requests/{run_id}/run/published.json",
    log:
        f"{LOG_DIR}/publish_run/{{run_id}}.log",
    run:
        step_publish(
            config["requests"][wildcards.run_id],
            sim_dir_of_request(wildcards),
            output[0],
            log=log[0],
        )


rule publish_paper:
    input:
        published_inputs,
    output:
        "requests/{run_id}/paper/published.json",
    log:
        f"{LOG_DIR}/publish_paper/{{run_id}}.log",
    run:
        step_publish_paper(
            config["requests"][wildcards.run_id],
            sim_dir_of_request(wildcards),
            output[0],
            log=log[0],
        )
