from quantlab.commands.forward.steps import step_forward_session


rule forward_session:
    input:
        forward_inputs,
    output:
        "requests/{run_id}/forward/published.json",
    log:
        f"{LOG_DIR}/forward_session/{{run_id}}.log",
    run:
        step_forward_session(
            config["requests"][wildcards.run_id],
            forward_sim_dirs(wildcards),
            output[0],
            log=log[0],
        )


localrules:
    forward_session,
