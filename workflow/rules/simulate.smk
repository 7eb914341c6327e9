from quantlab.commands.run.steps import step_score, step_simulate


rule simulate:
    input:
        unpack(sim_inputs),
    output:
        equity="store/sim/{mkey}/equity.parquet",
        trades="store/sim/{mkey}/trades.parquet",
        trades_csv="store/sim/{mkey}/trades.csv",
    log:
        f"{LOG_DIR}/simulate/{{mkey}}.log",
    run:
        step_simulate(
            config["sim"][wildcards.mkey],
            input.bars,
            input.signals,
            output.equity,
            output.trades,
            output.trades_csv,
            log=log[0],
        )


rule score:
    input:
        equity="store/sim/{mkey}/equity.parquet",
        trades="store/sim/{mkey}/trades.parquet",
    output:
        "store/sim/{mkey}/metrics.json",
    log:
        f"{LOG_DIR}/score/{{mkey}}.log",
    run:
        step_score(
            config["sim"][wildcards.mkey],
            input.equity,
            input.trades,
            output[0],
            log=log[0],
        )
