"""The notebook API: ``quantlab.run``, ``quantlab.sweep``, ``quantlab.forward`` (docs/python-api.md).

Each builds the JSON request ``main.py --json-request`` would get, validates it with the same
parser and executes it through the same command registry, workflow and store
(``commands.registry.dispatch``): a run made here and one made by the CLI with the same
parameters share content keys, and their metrics.json and trades.csv are byte for byte the same.

Keyword arguments are request parameters (``fee``, ``initial_cash``, ``risk_free_rate``,
``benchmark`` ... see ``python main.py --schema run``) or, for any other name, parameters of the
strategy (``fast=10, slow=50``); in :func:`sweep` a strategy parameter given a list, tuple or
range is a grid axis (``fast=range(5, 30, 5)``). Errors raise the CLI's exceptions
(``quantlab.errors.ConfigError`` = exit 2, ``DataError`` = 3, ``StrategyError`` = 4).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["Result", "run", "sweep", "forward", "request"]

_GRID_TYPES = (list, tuple, range)


class Result:
    """A finished request: its envelope fields plus lazy views of the result directory."""

    def __init__(self, command: str, result: dict, warnings: list[str]):
        self.command = command
        self.result = result
        self.warnings = list(warnings)
        self.run_id: str | None = result.get("run_id")
        self.path = Path(result["artifacts_path"]) if result.get("artifacts_path") else None
        self.report_path = Path(result["report_path"]) if result.get("report_path") else None
        self.summary: dict | None = result.get("summary")

    def __repr__(self) -> str:
        return f"<quantlab.Result {self.command} {self.run_id} summary={self.summary}>"

    def _file(self, name: str) -> Path:
        path = self.path / name if self.path else None
        if path is None or not path.is_file():
            from quantlab.errors import ConfigError

            raise ConfigError(f"this {self.command} result has no {name}")
        return path

    @property
    def metrics(self) -> dict:
        """metrics.json's ``metrics`` (a run, a forward session) or the whole file (a sweep)."""
        doc = json.loads(self._file("metrics.json").read_text())
        return doc.get("metrics", doc)

    @property
    def trades(self):
        """trades.csv as a pandas DataFrame (entry and exit times parsed, UTC)."""
        import pandas as pd

        return pd.read_csv(self._file("trades.csv"), parse_dates=["entry_time", "exit_time"])

    @property
    def equity(self):
        """equity.parquet as a pandas DataFrame: timestamp, close, equity, position, returns,
        drawdown, benchmark_equity."""
        import pandas as pd

        return pd.read_parquet(self._file("equity.parquet"))

    @property
    def leaderboard(self):
        """A sweep's leaderboard.csv as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self._file("leaderboard.csv"))

    def plot(self, show: bool | None = None):
        """The interactive Bokeh figure of this result (``quantlab.reports`` when present: the
        report.html panels; else equity vs benchmark and drawdown). ``show`` (default: when
        running in a Jupyter kernel) also displays it inline."""
        from quantlab.plotting import result_figure

        layout = result_figure(self.path)
        if show if show is not None else _in_notebook():
            from bokeh.io import output_notebook
            from bokeh.io import show as bokeh_show

            output_notebook(hide_banner=True)
            bokeh_show(layout)
        return layout


def _in_notebook() -> bool:
    import sys

    shell = sys.modules.get("IPython")
    ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def _split(command: str, kwargs: dict, *, grid: bool = False) -> tuple[dict, dict, dict]:
    """(request params, strategy params, grid axes) of keyword arguments."""
    from quantlab.contract.params import spec_index

    known = spec_index(command)
    params, strategy, axes = {}, {}, {}
    for key, value in kwargs.items():
        if value is None:
            continue
        if key in known:
            params[key] = value
        elif grid and isinstance(value, _GRID_TYPES):
            axes[key] = list(value)
        else:
            strategy[key] = value
    return params, strategy, axes


def request(command: str, params: dict, *, force: bool = False, request_id: str | None = None) -> Result:
    """Execute one request (``{"command": command, "params": params}``) as main.py would."""
    from quantlab.commands.registry import dispatch
    from quantlab.contract.lifecycle import print_warnings
    from quantlab.contract.request import parse_json_request

    payload = {"schema_version": "1.0", "command": command, "request_id": request_id, "params": params}
    req = parse_json_request(json.dumps(payload))
    opts = _options(force=bool(force or req.params.pop("force", False)))
    print_warnings(req.warnings)
    result = dispatch(req, opts)
    late = [w for w in (result.get("warnings") or []) if w not in req.warnings]
    print_warnings(late)
    return Result(command, result, list(req.warnings) + late)


def _options(force: bool):
    """main.py's parsed options with their defaults (no flags), ``force`` set."""
    from quantlab.cli import build_parser

    opts = build_parser().parse_args([])
    opts.force = force
    return opts


def run(ticker: str | None = None, strategy: str | None = None, start: str | None = None,
        end: str | None = None, *, force: bool = False, **kwargs: Any) -> Result:
    """One backtest: ``quantlab.run(ticker="SPX", strategy="sma_crossover", start="2015-01-01",
    end="2018-01-01", fee=0.001, fast=10, slow=50)``."""
    params, strategy_params, _ = _split("run", {"ticker": ticker, "strategy": strategy, "start": start,
                                                "end": end, **kwargs})
    if strategy_params:
        params["strategy_params"] = {**(params.get("strategy_params") or {}), **strategy_params}
    return request("run", params, force=force)


def sweep(ticker: str | None = None, strategy: str | None = None, start: str | None = None,
          end: str | None = None, *, force: bool = False, **kwargs: Any) -> Result:
    """A grid (or, with ``splits``, walk-forward) sweep: strategy parameters given lists or ranges
    are the grid (``fast=range(5, 30, 5), slow=[50, 100]``), scalars are fixed; ``param_grid``,
    ``parameter_sets``, ``objective``, ``splits`` ... are the sweep request's own."""
    params, fixed, axes = _split("sweep", {"ticker": ticker, "strategy": strategy, "start": start, "end": end,
                                           **kwargs}, grid=True)
    if axes:
        params["param_grid"] = {**(params.get("param_grid") or {}), **axes}
    if fixed:
        params["strategy_params"] = {**(params.get("strategy_params") or {}), **fixed}
    return request("sweep", params, force=force)


def forward(source: "Result | str | os.PathLike", *, force: bool = False, **kwargs: Any) -> Result:
    """A forward (out-of-sample) session of a sweep's best candidates: ``source`` is a sweep
    :class:`Result` or its directory; keyword arguments are the forward request's
    (``forward_end``, ``forward_top_k`` ...)."""
    path = source.path if isinstance(source, Result) else Path(source)
    params, unknown, _ = _split("forward", kwargs)
    if unknown:
        from quantlab.errors import ConfigError

        raise ConfigError(f"forward takes no strategy parameters: {', '.join(sorted(unknown))}")
    return request("forward", {"forward_eval": str(path), **params}, force=force)
