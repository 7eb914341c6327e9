"""The public parameters of each command: one registry for the JSON Schema, the CLI and validation.

Every ``params`` key of a JSON request and every CLI flag comes from here. The JSON Schema in
``config/schemas/request.schema.json`` is generated from this module (``python -m
quantlab.contract.schema``) and a test keeps the two in sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantlab.engine import risk  # names, defaults, ranges of the risk controls (no numpy import)

INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")
SOURCES = ("auto", "sample", "file", "yfinance", "synthetic")
COMMANDS = ("run", "sweep", "forward", "portfolio", "data")
DEFAULT_STRATEGY = "rsi_ma_cross_v2"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # JSON type: string | number | integer | boolean | object
    default: Any = None
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    enum: tuple | None = None
    aliases: tuple[str, ...] = ()
    cli: bool = True  # exposed as a CLI flag
    extra: dict = field(default_factory=dict)  # more JSON Schema keywords

    def json_schema(self) -> dict:
        schema: dict[str, Any] = {"type": [self.type, "null"], "description": self.description}
        if self.default is not None:
            schema["default"] = self.default
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.exclusive_minimum is not None:
            schema["exclusiveMinimum"] = self.exclusive_minimum
        if self.enum is not None:
            schema["enum"] = [*self.enum, None]
        schema.update(self.extra)
        return schema


def _risk_spec(name: str) -> ParamSpec:
    """The request/CLI spec of an engine risk control (engine.risk holds its default and range)."""
    default = risk.DEFAULTS[name]
    if name == "size_mode":
        return ParamSpec(name, "string", default, risk.DESCRIPTIONS[name], enum=risk.SIZE_MODES)
    lo, hi = risk.RANGES[name]
    kind = "integer" if isinstance(default, int) else "number"
    if name == "position_size":
        return ParamSpec(name, kind, default, risk.DESCRIPTIONS[name], exclusive_minimum=lo, maximum=hi)
    return ParamSpec(name, kind, default, risk.DESCRIPTIONS[name], minimum=lo, maximum=hi)


# Engine risk controls: valid for every strategy, in runs, sweep bases and sweep grids.
RISK_PARAMS: tuple[ParamSpec, ...] = tuple(_risk_spec(name) for name in risk.RISK_KEYS)

RUN_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("ticker", "string", None, "Instrument symbol (sample data: ^GSPC/SPX, ^IXIC/NASDAQ). Default: "
              "the data_path file's name, else the bundled S&P 500 sample SPX (2017 if no window is given).",
              aliases=("symbol",), extra={"minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9^=._&/: -]+$"}),
    ParamSpec("start", "string", "2023-01-01", "First bar traded (inclusive), YYYY-MM-DD or ISO time, UTC.",
              aliases=("start_date",), extra={"minLength": 4, "maxLength": 40}),
    ParamSpec("end", "string", "2024-01-01", "End of the window (exclusive), YYYY-MM-DD or ISO time, UTC.",
              aliases=("end_date",), extra={"minLength": 4, "maxLength": 40}),
    ParamSpec("interval", "string", "1d", "Bar interval.", enum=INTERVALS),
    ParamSpec("source", "string", "auto", "Data source: auto = cache, then bundled sample, then yfinance.",
              enum=SOURCES),
    ParamSpec("data_path", "string", None, "CSV or Parquet file of OHLCV bars (source=file).",
              extra={"minLength": 1, "maxLength": 4096}),
    ParamSpec("seed", "integer", 7, "Seed of the synthetic source.", minimum=0, maximum=2**31 - 1),
    ParamSpec("adjust", "string", "auto", "Prices when the source has an adjusted close: auto = OHLC back-adjusted "
              "by adjusted/raw close (splits and dividends), splits_only = split steps only, none = raw "
              "(split-like jumps are warned about). See docs/data.md.", enum=("auto", "none", "splits_only")),
    ParamSpec("date_format", "string", None, "strptime format of a data file's text dates, e.g. %d/%m/%Y "
              "(needed when day and month are ambiguous).", extra={"minLength": 2, "maxLength": 64}),
    ParamSpec("strategy", "string", DEFAULT_STRATEGY, "Strategy registry name.",
              aliases=("strategy_name",), extra={"minLength": 1, "maxLength": 64}),
    ParamSpec("strategy_params", "object", None, "Parameters of the selected strategy.", aliases=("parameters",),
              cli=False),
    ParamSpec("fee", "number", 0.002, "Fee as a fraction of traded notional, per side.", minimum=0, maximum=0.1),
    ParamSpec("slippage_mode", "string", "fixed", "fixed (slippage_bps) or atr (k_atr x ATR/price).",
              enum=("fixed", "atr")),
    ParamSpec("slippage_bps", "number", 8.0, "Fixed slippage in basis points.", minimum=0, maximum=1000),
    ParamSpec("k_atr", "number", 0.05, "ATR slippage sensitivity.", minimum=0, maximum=10),
    ParamSpec("fill", "string", "next_open", "Fill at the next bar's open or at the signal bar's close.",
              enum=("next_open", "close")),
    ParamSpec("allow_short", "boolean", False, "Allow short positions (exit signals reverse to short)."),
    ParamSpec("initial_cash", "number", 10000.0, "Starting capital.", exclusive_minimum=0, maximum=1e15),
    *RISK_PARAMS,
    ParamSpec("risk_free_rate", "number", 0.0, "Annual risk-free rate (0.04 = 4 %): its per-bar rate is "
              "subtracted from the returns in sharpe_simple, sortino and alpha.", minimum=-0.5, maximum=1),
    ParamSpec("benchmark", "string", None, "Benchmark ticker of alpha, beta, tracking_error and information_ratio "
              "in a run (a sweep's leaderboard uses buy and hold of its ticker), loaded like the ticker over the "
              "same window and interval. Default: buy and hold of the run's own ticker.",
              extra={"minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9^=._&/: -]+$"}),
    ParamSpec("out_dir", "string", None, "Parent directory of the run directory (default outputs/runs).",
              aliases=("outdir",), extra={"minLength": 1, "maxLength": 4096}),
    ParamSpec("paper", "boolean", False, "Run as a paper session (outputs/paper_sessions)."),
)

# Flat strategy keys of the original tool: they keep working without strategy_params.
FLAT_STRATEGY_KEYS: tuple[ParamSpec, ...] = (
    ParamSpec("rsi_buy_max", "number", None, "rsi_ma_cross_v2: enter only when RSI is below this."),
    ParamSpec("rsi_sell_min", "number", None, "rsi_ma_cross_v2: exit when RSI is above this."),
    ParamSpec("cooldown_days", "integer", None, "rsi_ma_cross_v2: bars of no action after each trade."),
)

COMMAND_PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "run": RUN_PARAMS + (
        ParamSpec("robustness", "boolean", False, "PSR, minimum track record and a bootstrap Sharpe interval of "
                  "the run in machine_contract.robustness (docs/robustness.md).", cli=False),
    ) + FLAT_STRATEGY_KEYS,
    "sweep": (
        ParamSpec("config_path", "string", None, "Sweep experiment YAML file (or give the experiment inline).",
                  aliases=("sweep",), extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("out_dir", "string", None, "Parent directory of the sweep run directory.",
                  aliases=("sweep_outdir", "outdir"), extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("shards", "integer", None, "Number of shard jobs (default: from grid size and cores).",
                  minimum=1, maximum=10_000),
        ParamSpec("executor", "string", None, "Snakemake executor plugin (e.g. slurm, kubernetes, cluster-generic).",
                  extra={"pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}),
        ParamSpec("profile", "string", None, "Snakemake profile: a name under profiles/ or a directory.",
                  extra={"minLength": 1, "maxLength": 4096}),
        *(spec for spec in RUN_PARAMS if spec.name not in ("out_dir", "paper", "benchmark")),
        ParamSpec("param_grid", "object", None, "Inline experiment: param name -> list of values.", cli=False,
                  extra={"minProperties": 1, "additionalProperties": {"type": "array", "minItems": 1}}),
        ParamSpec("parameter_sets", "array", None, "Inline experiment: list of {label, parameters}.", cli=False,
                  extra={"minItems": 1, "items": {"type": "object", "required": ["label", "parameters"],
                                                  "properties": {"label": {"type": "string", "minLength": 1},
                                                                 "parameters": {"type": "object"}}}}),
        ParamSpec("objective", "string", None, "Ranking metric for parameter_sets/param_grid.", cli=False),
        ParamSpec("splits", "array", None, "Walk-forward splits: [{name, train{start,end}, test{start,end}}].",
                  cli=False),
        ParamSpec("selection", "object", None, "Walk-forward selection: {sort_by, ascending, top_k}.", cli=False),
        ParamSpec("constraints", "object", None, "Walk-forward constraints: {min_trades}.", cli=False),
        ParamSpec("robustness", "boolean", True, "Overfitting statistics (PSR, DSR, PBO, bootstrap CI, verdict) "
                  "in machine_contract.robustness, leaderboard psr / deflated_sharpe columns and the PBO "
                  "pictures; false skips them (and objective psr / deflated_sharpe). docs/robustness.md.",
                  cli=False),
    ),
    "forward": (
        ParamSpec("forward_eval", "string", None, "Sweep run directory to take the candidates from.",
                  aliases=("run_dir",), extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("forward_start", "string", None, "First bar traded (default: the sweep's end).",
                  extra={"minLength": 4, "maxLength": 40}),
        ParamSpec("forward_end", "string", None, "End of the forward window, exclusive (default: today).",
                  extra={"minLength": 4, "maxLength": 40}),
        ParamSpec("forward_outdir", "string", None, "The session directory: empty, or holding this same session "
                  "(default outputs/forward_runs/<session_id>).",
                  aliases=("out_dir",), extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("forward_metric", "string", "sharpe_simple", "Leaderboard metric that picks the candidates."),
        ParamSpec("forward_top_k", "integer", 1, "Number of candidates carried forward.", minimum=1, maximum=100),
        ParamSpec("resume_forward", "string", None, "A forward session directory to extend to forward_end.",
                  extra={"minLength": 1, "maxLength": 4096}),
    ),
    "portfolio": (
        ParamSpec("portfolio_report", "string", None, "Root directory of the forward sessions to aggregate.",
                  aliases=("forward_root",), extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("portfolio_compare", "string", None, "Root of forward sessions: every mode side by side.",
                  extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("portfolio_mode", "string", "equal_weight", "Allocation mode.",
                  enum=("equal_weight", "custom_weight", "inverse_vol", "raw_capital")),
        ParamSpec("portfolio_weights", "string", None, "JSON file {session_id: weight} (custom_weight).",
                  extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("portfolio_top_n", "integer", None, "Keep the best N sessions by the rank metric.", minimum=0,
                  maximum=100_000),
        ParamSpec("portfolio_rank_metric", "string", "total_return", "Metric ranking the sessions."),
        ParamSpec("portfolio_min_return", "number", None, "Keep sessions with total_return >= this."),
        ParamSpec("portfolio_max_drawdown", "number", None, "Keep sessions with max_drawdown >= this (e.g. -0.2).",
                  minimum=-1, maximum=0),
        ParamSpec("portfolio_include_tickers", "string", None, "Comma-separated tickers to keep."),
        ParamSpec("portfolio_exclude_tickers", "string", None, "Comma-separated tickers to drop."),
        ParamSpec("portfolio_include_strategies", "string", None, "Comma-separated strategies to keep."),
        ParamSpec("portfolio_exclude_strategies", "string", None, "Comma-separated strategies to drop."),
        ParamSpec("portfolio_latest_per_source_run", "boolean", False, "Keep the latest session per source sweep."),
        ParamSpec("out_dir", "string", None, "Parent of the portfolio directory (default outputs/portfolio).",
                  aliases=("portfolio_outdir",), extra={"minLength": 1, "maxLength": 4096}),
        ParamSpec("legs", "array", None, "A basket: [{label, ticker, weight, strategy?, parameters?}].", cli=False,
                  extra={"minItems": 1, "items": {"type": "object", "required": ["label", "ticker", "weight"], "properties": {
                      "label": {"type": "string"}, "ticker": {"type": "string"}, "weight": {"type": "number"},
                      "strategy": {"type": ["string", "null"]}, "parameters": {"type": ["object", "null"]}}}}),
        ParamSpec("normalize", "boolean", False, "Basket: rescale weights that do not sum to 1."),
        *(spec for spec in RUN_PARAMS if spec.name in ("start", "end", "interval", "source", "adjust", "fee",
                                                       "slippage_mode", "slippage_bps", "k_atr", "fill",
                                                       "allow_short", "initial_cash")),
    ),
}


# ``data`` (list | inspect | import): no workflow; the human CLI is ``main.py data ACTION`` (its own
# argparse in quantlab.commands.data), so these are JSON-only (cli=False).
_WINDOW = {spec.name: spec for spec in RUN_PARAMS if spec.name in ("start", "end", "adjust", "date_format")}
COMMAND_PARAMS["data"] = (
    ParamSpec("action", "string", None, "list | inspect | import.", enum=("list", "inspect", "import"), cli=False),
    ParamSpec("target", "string", None, "inspect: a ticker (bundled or imported) or a CSV/Parquet file.", cli=False,
              extra={"minLength": 1, "maxLength": 4096}),
    ParamSpec("file", "string", None, "import: the CSV/Parquet file to import.", cli=False,
              extra={"minLength": 1, "maxLength": 4096}),
    ParamSpec("ticker", "string", None, "import: the ticker run --ticker will use for the imported bars.", cli=False,
              aliases=("symbol",), extra={"minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9^=._&/: -]+$"}),
    ParamSpec("interval", "string", None, "Bar interval (default: inferred from the bars).", enum=INTERVALS,
              cli=False),
    ParamSpec("data_dir", "string", None, "list: also list the CSV/Parquet files under this directory.", cli=False,
              extra={"minLength": 1, "maxLength": 4096}),
    *(ParamSpec(**{**spec.__dict__, "default": None, "cli": False}) for spec in _WINDOW.values()),
)


def _given(name: str) -> dict:
    """JSON Schema: ``params.name`` is present and not null (null means "use the default")."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _any_given(*names: str) -> dict:
    return {"anyOf": [_given(n) for n in names]}


# Rules across parameters that main.py enforces, stated in the request schema too (so an agent's
# own validation rejects what main.py would): which inputs a command needs, which exclude each other.
COMMAND_RULES: dict[str, list[dict]] = {
    "data": [{**_given("action"), "description": "the data action: list, inspect (target) or import (file, ticker)"}],
    "sweep": [
        {"oneOf": [_any_given("config_path", "sweep"), _any_given("param_grid", "parameter_sets")],
         "description": "exactly one experiment: a YAML file (config_path) or an inline one "
                        "(param_grid or parameter_sets)"},
        {"not": {"allOf": [_given("param_grid"), _given("parameter_sets")]},
         "description": "param_grid or parameter_sets, not both"},
    ],
    "forward": [
        {**_any_given("forward_eval", "run_dir", "resume_forward"),
         "description": "a sweep run directory (forward_eval) or a session to resume (resume_forward)"},
    ],
    "portfolio": [
        {**_any_given("portfolio_report", "forward_root", "portfolio_compare", "legs"),
         "description": "a root of forward sessions (portfolio_report / portfolio_compare) or basket legs"},
    ],
}

# Accepted by every command: where lifecycle events are POSTed (like --signal-webhook), --force
# and html_report. They change how a request executes, never what it computes (no content key, run id or
# config.json sees them).
COMMON_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("signal_webhook", "string", None, "POST lifecycle events here (http/https), best effort.",
              extra={"minLength": 1, "maxLength": 2048}),
    ParamSpec("force", "boolean", False, "Recompute every step of this request even when its results are "
              "cached (same content keys; the store entries are overwritten), like --force.", cli=False),
    ParamSpec("html_report", "boolean", False, "Also write report.html (interactive, self-contained Bokeh page: "
              "docs/reports.md) beside report.json before the response, like --html-report. Off by default: "
              "Bokeh's import and the page add ~0.6 s or more to a request (benchmarks/bench_run.py --html).",
              cli=False),
)
for _command in COMMAND_PARAMS:
    COMMAND_PARAMS[_command] = COMMAND_PARAMS[_command] + COMMON_PARAMS


def spec_index(command: str) -> dict[str, ParamSpec]:
    """Map every accepted key (names and aliases) of a command to its spec."""
    index: dict[str, ParamSpec] = {}
    for spec in COMMAND_PARAMS[command]:
        index[spec.name] = spec
        for alias in spec.aliases:
            index[alias] = spec
    return index
