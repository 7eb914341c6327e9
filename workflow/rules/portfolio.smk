from quantlab.commands.basket import step_basket_legs
from quantlab.commands.portfolio.steps import (
    step_portfolio_mode,
    step_publish_portfolio,
)


rule basket_legs:
    input:
        basket_sims,
    output:
        "requests/{run_id}/portfolio/legs.json",
    log:
        f"{LOG_DIR}/basket_legs/{{run_id}}.log",
    run:
        step_basket_legs(
            basket_of(wildcards), basket_sim_dirs(wildcards), output[0], log=log[0]
        )


rule portfolio_mode:
    input:
        portfolio_mode_inputs,
    output:
        "requests/{run_id}/portfolio/mode_{pmode}.json",
    log:
        f"{LOG_DIR}/portfolio_mode/{{run_id}}_{{pmode}}.log",
    wildcard_constraints:
        pmode="[a-z_]+",
    run:
        step_portfolio_mode(portfolio_mode_spec(wildcards), output[0], log=log[0])


rule publish_portfolio:
    input:
        portfolio_modes,
    output:
        "requests/{run_id}/portfolio/published.json",
    log:
        f"{LOG_DIR}/publish_portfolio/{{run_id}}.log",
    run:
        step_publish_portfolio(
            config["requests"][wildcards.run_id], list(input), output[0], log=log[0]
        )


localrules:
    basket_legs,
    portfolio_mode,
    publish_portfolio,
