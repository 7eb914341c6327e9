rule forward_session:
    input:
        forward_inputs,
    output:
        "requests/{run_id}/published.json",
    log:
        "logs/forward_session/{run_id}.json",
    wildcard_constraints:
        run_id=r"[0-9]{8}_[0-9]{6}_forward_[0-9a-f]{7}",
    run:
        with step_errors(log[0]):
            run_step("forward.step_forward_session", config["requests"][wildcards.run_id],
                     forward_sim_dirs(wildcards), output[0])


localrules:
    forward_session,
