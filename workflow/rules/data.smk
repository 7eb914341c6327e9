rule load_data:
    output:
        "store/data/{dkey}/bars.parquet",
    log:
        "logs/load_data/{dkey}.json",
    run:
        with step_errors(log[0]):
            run_step("step_load_data", config["data"][wildcards.dkey], output[0])
