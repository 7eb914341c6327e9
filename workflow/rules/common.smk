# Input functions: map a content key or run id to the paths it depends on.
from quantlab.commands.worker import run_step
from quantlab.commands.common import step_errors


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
    sim = sim_dir_of_request(wildcards)
    return [f"{sim}/{name}" for name in ("equity.parquet", "trades.parquet", "metrics.json", "equity.png")]
