rule portfolio_mode:
    output:
        "requests/{run_id}/mode_{pmode}.json",
    log:
        "logs/portfolio_mode/{run_id}_{pmode}.json",
    wildcard_constraints:
        run_id=r"[0-9]{8}_[0-9]{6}_portfolio_[0-9a-f]{7}",
        pmode="[a-z_]+",
    run:
        with step_errors(log[0]):
            spec = config["portfolio"][wildcards.run_id]
            run_step("portfolio.step_portfolio_mode", {**spec, "mode": wildcards.pmode}, output[0])


rule publish_portfolio:
    input:
        portfolio_modes,
    output:
        "requests/{run_id}/published.json",
    log:
        "logs/publish_portfolio/{run_id}.json",
    wildcard_constraints:
        run_id=r"[0-9]{8}_[0-9]{6}_portfolio_[0-9a-f]{7}",
    run:
        with step_errors(log[0]):
            run_step("portfolio.step_publish_portfolio", config["requests"][wildcards.run_id], list(input),
                     output[0])
