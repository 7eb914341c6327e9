from quantlab.commands.run.steps import step_signals


rule signals:
    input:
        bars_of_signals,
    output:
        "store/signals/{skey}/signals.parquet",
    log:
        f"{LOG_DIR}/signals/{{skey}}.log",
    run:
        step_signals(config["signals"][wildcards.skey], input[0], output[0], log=log[0])
