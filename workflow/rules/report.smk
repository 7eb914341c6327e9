rule plot_equity:
    input:
        "store/sim/{mkey}/equity.parquet",
    output:
        "store/sim/{mkey}/equity.png",
    log:
        "logs/plot_equity/{mkey}.json",
    run:
        with step_errors(log[0]):
            run_step("step_plot", config["sim"][wildcards.mkey], input[0], output[0])


rule publish_run:
    input:
        published_inputs,
    output:
        "requests/{run_id}/published.json",
    log:
        "logs/publish_run/{run_id}.json",
    wildcard_constraints:
        run_id=r"[0-9]{8}_[0-9]{6}_run_[0-9a-f]{7}",
    run:
        with step_errors(log[0]):
            run_step("step_publish", config["requests"][wildcards.run_id],
                                   sim_dir_of_request(wildcards), output[0])


rule publish_paper:
    input:
        published_inputs,
    output:
        "requests/{run_id}/published.json",
    log:
        "logs/publish_paper/{run_id}.json",
    wildcard_constraints:
        run_id=r"[0-9]{8}_[0-9]{6}_paper_[0-9a-f]{7}",
    run:
        with step_errors(log[0]):
            run_step("step_publish_paper", config["requests"][wildcards.run_id],
                     sim_dir_of_request(wildcards), output[0])
