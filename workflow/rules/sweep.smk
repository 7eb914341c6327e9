from quantlab.commands.sweep.steps import (
    shard_threads,
    step_merge_leaderboard,
    step_merge_walkforward,
    step_publish_sweep,
    step_sweep_shard,
    step_wf_select,
    step_wf_test,
)


rule sweep_shard:
    input:
        shard_bars,
    output:
        parquet="store/sweep/{family}/shards/{shard}.parquet",
        sidecar="store/sweep/{family}/shards/{shard}.json",
        summary="store/sweep/{family}/shards/{shard}.robust.npz",
    log:
        f"{LOG_DIR}/sweep_shard/{{family}}/{{shard}}.log",
    wildcard_constraints:
        family="[0-9a-f]{16}",
        shard="[0-9a-f]{16}",
    threads: shard_threads()
    run:
        step_sweep_shard(
            full("shards", wildcards.shard),
            input[0],
            output.parquet,
            output.sidecar,
            threads=threads,
            log=log[0],
        )


rule merge_leaderboard:
    input:
        shards=board_shards,
        bars=board_bars,
    output:
        board="store/sweep/{family}/boards/{board}/board.json",
        parquet="store/sweep/{family}/boards/{board}/leaderboard.parquet",
        csv="store/sweep/{family}/boards/{board}/leaderboard.csv",
        heatmap="store/sweep/{family}/boards/{board}/heatmap.png",
    log:
        f"{LOG_DIR}/merge_leaderboard/{{family}}/{{board}}.log",
    wildcard_constraints:
        family="[0-9a-f]{16}",
        board="[0-9a-f]{16}",
    run:
        step_merge_leaderboard(
            board_record(wildcards),
            list(input.shards),
            str(Path(output.board).parent),
            log=log[0],
        )


rule wf_select:
    input:
        shards=wf_train_shards,
        bars=wf_train_bars,
    output:
        "store/wf/{split}/selected.json",
    log:
        f"{LOG_DIR}/wf_select/{{split}}.log",
    wildcard_constraints:
        split="[0-9a-f]{16}",
    run:
        step_wf_select(
            full("wf_splits", wildcards.split),
            list(input.shards),
            output[0],
            log=log[0],
        )


rule wf_test:
    input:
        selected="store/wf/{split}/selected.json",
        bars=wf_test_bars,
    output:
        test="store/wf/{split}/test.json",
        equity="store/wf/{split}/test_equity.parquet",
    log:
        f"{LOG_DIR}/wf_test/{{split}}.log",
    wildcard_constraints:
        split="[0-9a-f]{16}",
    run:
        step_wf_test(
            full("wf_splits", wildcards.split),
            input.selected,
            input.bars,
            output.test,
            output.equity,
            log=log[0],
        )


rule merge_walkforward:
    input:
        wf_request_files,
    output:
        temp("requests/{run_id}/sweep/walkforward.json"),  # scratch: removed once published
    log:
        f"{LOG_DIR}/merge_walkforward/{{run_id}}.log",
    run:
        step_merge_walkforward(
            full("requests", wildcards.run_id),
            wf_grouped(wildcards, input),
            output[0],
            log=log[0],
        )


rule publish_sweep:
    input:
        sweep_merged,
    output:
        "requests/{run_id}/sweep/published.json",
    log:
        f"{LOG_DIR}/publish_sweep/{{run_id}}.log",
    run:
        step_publish_sweep(
            full("requests", wildcards.run_id), input[0], output[0], log=log[0]
        )


localrules:
    merge_leaderboard,
    wf_select,
    merge_walkforward,
    publish_sweep,
