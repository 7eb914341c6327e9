from quantlab.commands.run.steps import step_load_data


rule load_data:
    output:
        "store/data/{dkey}/bars.parquet",
    log:
        f"{LOG_DIR}/load_data/{{dkey}}.log",
    run:
        step_load_data(config["data"][wildcards.dkey], output[0], log=log[0])
