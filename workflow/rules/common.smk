# Input functions: map a content key or run id to the paths it depends on.
from quantlab import store_layout
from quantlab.commands.sweep import spec as sweep_spec


def full(section, key):
    """The planned dict of a config entry (a sweep's long lists live in its spec file)."""
    return sweep_spec.full(config, section, key)


def bars_of_signals(wildcards):
    return f"store/data/{config['signals'][wildcards.skey]['data']}/bars.parquet"


def sim_inputs(wildcards):
    spec = config["sim"][wildcards.mkey]
    return {
        "bars": f"store/data/{spec['data']}/bars.parquet",
        "signals": f"store/signals/{spec['signals']}/signals.parquet",
    }


def sim_dir_of_request(wildcards):
    return f"store/sim/{config['requests'][wildcards.run_id]['keys']['sim']}"


def published_inputs(wildcards):
    return store_layout.sim_files(config["requests"][wildcards.run_id]["keys"]["sim"])


def shard_bars(wildcards):
    spec = config.get("shards", {}).get(wildcards.shard)
    # a shard reused from an earlier request has no spec here: it is up to date by construction
    return [f"store/data/{spec['data']}/bars.parquet"] if spec else []


def board_record(wildcards):
    """The record of the request that declared a grid board (commands/sweep/board.py)."""
    return full("requests", config["boards"][wildcards.board]["run_id"])


def board_shards(wildcards):
    return board_record(wildcards)["grid"]["shards"]


def grid_bars(grid):
    """The bars a grid's merge reads (it evaluates the selected combination again)."""
    return [f"store/data/{grid['data']}/bars.parquet"] if "data" in grid else []


def board_bars(wildcards):
    return grid_bars(board_record(wildcards)["grid"])


def wf_train_shards(wildcards):
    return config["wf_splits"][wildcards.split]["train"]["shards"]


def wf_train_bars(wildcards):
    return grid_bars(config["wf_splits"][wildcards.split]["train"])


def wf_test_bars(wildcards):
    return (
        f"store/data/{config['wf_splits'][wildcards.split]['test_data']}/bars.parquet"
    )


def wf_request_files(wildcards):
    return [
        p
        for s in config["requests"][wildcards.run_id]["splits"]
        for p in store_layout.wf_split_files(s)
    ]


def wf_grouped(wildcards, files):
    """(split, selected.json, test.json, test_equity.parquet) per split, in the request's order."""
    files = list(files)
    splits = config["requests"][wildcards.run_id]["splits"]
    return [(s, *files[3 * i : 3 * i + 3]) for i, s in enumerate(splits)]


def sweep_merged(wildcards):
    request = config["requests"][wildcards.run_id]
    if request["mode"] == "grid":
        return store_layout.board_files(request["grid"]["family"], request["board"])[0]
    return f"requests/{wildcards.run_id}/sweep/walkforward.json"


def forward_inputs(wildcards):
    request = config["requests"][wildcards.run_id]
    return [
        p
        for c in request["candidates"]
        for p in store_layout.sim_files(c["keys"]["sim"])
    ]


def forward_sim_dirs(wildcards):
    return [
        f"store/sim/{c['keys']['sim']}"
        for c in config["requests"][wildcards.run_id]["candidates"]
    ]


def portfolio_modes(wildcards):
    return [
        f"requests/{wildcards.run_id}/portfolio/mode_{m}.json"
        for m in config["requests"][wildcards.run_id]["modes"]
    ]


def basket_sims(wildcards):
    from quantlab.commands.basket import leg_sim_inputs

    return leg_sim_inputs(config["requests"][wildcards.run_id]["basket"]["legs"])


def portfolio_mode_inputs(wildcards):
    basket = config["portfolio"][wildcards.run_id].get("basket")
    return [f"requests/{wildcards.run_id}/portfolio/legs.json"] if basket else []


def basket_of(wildcards):
    return config["requests"][wildcards.run_id]["basket"]


def basket_sim_dirs(wildcards):
    return [f"store/sim/{leg['sim']}" for leg in basket_of(wildcards)["legs"]]


def portfolio_mode_spec(wildcards):
    spec = config["portfolio"][wildcards.run_id]
    return {**{k: v for k, v in spec.items() if k != "basket"}, "mode": wildcards.pmode}
