"""The human command line: one parser built from the parameter registry, plus ``--check``.

    python main.py run --ticker SPX --start 2017-01-01 --end 2018-01-01 --strategy sma_crossover \
        --param fast=10 --param slow=50
    python main.py --ticker SPX --start 2017-01-01 --end 2018-01-01     (original flat flags = run)

Every run parameter is a flag under both spellings (``--slippage-bps`` and ``--slippage_bps``).
Flags of commands that are not available yet are recognised and refused with exit 2, so nothing
silently falls back to a default backtest.
"""

from __future__ import annotations

import argparse
import json
import sys

from quantlab import __version__
from quantlab.contract.params import COMMANDS, FLAT_STRATEGY_KEYS, RUN_PARAMS
from quantlab.errors import ConfigError

UNAVAILABLE_FLAGS: tuple[str, ...] = ()
# Read-only inspection of run and paper-session directories (quantlab.inspect_cli handles them).
INSPECTION_FLAGS = (
    "runs_list", "runs_show", "runs_best", "compare", "runs_reindex", "paper_sessions_list", "paper_sessions_show",
    "paper_sessions_health", "paper_sessions_alerts", "paper_sessions_index",
)


# Flags that take a count: an integer >= 1 (0 would make Snakemake wait forever for a core).
COUNT_FLAGS = ("cores", "jobs")


class UsageError(ConfigError):
    """A flag argparse could not parse or a count flag out of range (exit 2). ``main.py`` turns it
    into the usual failure (one ERROR line; under ``--json-request`` also the failure envelope and
    ``SESSION_FAILED``)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other invalid input
        raise UsageError(f"{message} (see --help)")

    def parse_known_args(self, args=None, namespace=None):
        opts, rest = super().parse_known_args(args, namespace)
        for name in COUNT_FLAGS:
            value = getattr(opts, name, None)
            if value is not None and value < 1:
                self.error(f"--{name} must be ≥ 1, got {value}")
        return opts, rest


class _CommandHelp(argparse.Action):
    """``-h/--help``: the help of the command given before it (``run --help``), else the global one."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        command = getattr(namespace, "command", None)
        (build_parser(command) if command else parser).print_help()
        parser.exit()


def _flags(name: str) -> list[str]:
    flags = [f"--{name}"]
    if "_" in name:
        flags.append(f"--{name.replace('_', '-')}")
    return flags


# Flag groups each command's own help (``main.py run --help``) lists.
COMMAND_GROUPS = {"run": ("machine", "run"), "sweep": ("machine", "sweep"), "forward": ("machine", "forward"),
                  "portfolio": ("machine", "portfolio"), "report": ("machine", "report")}
COMMAND_TARGETS = {"run": None, "sweep": "experiment YAML", "forward": "sweep run directory",
                   "portfolio": "root of the forward sessions", "report": "run directory (or a root of runs)"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with ``command``, a parser for that command's help only (its own flags)."""
    prog = f"main.py {command}" if command else "main.py"
    p = _Parser(prog=prog, description="QuantLab: reproducible strategy research.", add_help=False,
                formatter_class=argparse.HelpFormatter, allow_abbrev=False)
    p.add_argument("-h", "--help", action=_CommandHelp, help="show this help (COMMAND --help: that command's)")

    def shown(group: str) -> bool:
        return command is None or group in COMMAND_GROUPS[command]

    if command is None:
        p.add_argument("command", nargs="?", choices=(*COMMANDS, "report"), help="command (default: run)")
        p.add_argument("target", nargs="?", help="sweep: experiment YAML; report: run directory")
    elif COMMAND_TARGETS[command]:
        p.add_argument("target", nargs="?", help=COMMAND_TARGETS[command])
    m = p.add_argument_group("machine contract")
    m.add_argument("--json-request", dest="json_request", metavar="JSON", help="Stepbit v1 JSON request")
    m.add_argument("--signal-file", dest="signal_file", metavar="PATH", help="append lifecycle events (JSONL)")
    m.add_argument("--signal-webhook", dest="signal_webhook", metavar="URL", help="POST lifecycle events")
    m.add_argument("--version", action="store_true", help="print the version and exit")
    m.add_argument("--check", action="store_true", help="print a JSON health summary and exit 0/2")
    m.add_argument("--schema", nargs="?", const="", default=None, metavar="COMMAND",
                   help="print the JSON Schema of a request (all commands, or one)")
    m.add_argument("--list-strategies", dest="list_strategies", action="store_true",
                   help="print the strategy registry (names, params, ranges, defaults) as JSON")
    m.add_argument("--list-metrics", dest="list_metrics", action="store_true",
                   help="print the metric registry (names, direction, in sweeps or run-only, meaning) as JSON")
    m.add_argument("--dry-run", dest="dry_run", action="store_true", help="show stale steps, run nothing")
    m.add_argument("--force", action="store_true",
                   help="recompute every step of the request even when cached (JSON: params.force)")
    m.add_argument("--html-report", dest="html_report", action="store_true",
                   help="also write the interactive report.html beside report.json (JSON: params.html_report)")
    m.add_argument("--verbose", action="store_true", help="show Snakemake's output on stderr")
    m.add_argument("--cores", type=int, default=2, help="cores Snakemake may use, >= 1 (default 2)")
    m.add_argument("--executor", help="Snakemake executor plugin for sweeps (slurm, kubernetes, cluster-generic)")
    m.add_argument("--profile", help="Snakemake profile: a name under profiles/ or a directory")
    m.add_argument("--jobs", type=int, default=64,
                   help="jobs submitted at once with --executor/--profile, >= 1 (default 64)")
    if shown("run"):
        _add_run_flags(p)
    if shown("sweep"):
        _add_sweep_flags(p)
    if shown("portfolio"):
        _add_portfolio_flags(p)
    if shown("forward"):
        _add_forward_flags(p)
    if command is None:
        _add_inspection_flags(p)
        legacy = p.add_argument_group("other commands (not available in this version)")
        for name in UNAVAILABLE_FLAGS:
            legacy.add_argument(*_flags(name), dest=f"legacy_{name}", nargs="?", const=True, default=None,
                                help=argparse.SUPPRESS)
    if shown("report"):
        p.add_argument("--report", dest="legacy_report", nargs="?", const=True, default=None, metavar="RUN_DIR",
                       help="rebuild report.json and run_report.md of a run directory")
    return p


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("run parameters")
    for spec in RUN_PARAMS + FLAT_STRATEGY_KEYS:
        if not spec.cli:
            continue
        flags = _flags(spec.name) + [f for a in spec.aliases for f in _flags(a)]
        if spec.type == "boolean":
            r.add_argument(*flags, dest=spec.name, action="store_const", const=True, default=None,
                           help=spec.description.replace("%", "%%"))
        else:
            default = f" (default {spec.default})" if spec.default is not None else ""
            r.add_argument(*flags, dest=spec.name, default=None, metavar=spec.type.upper(),
                           help=f"{spec.description}{default}".replace("%", "%%"))  # argparse formats help
    r.add_argument("--param", dest="param", action="append", default=[], metavar="KEY=VALUE",
                   help="a strategy parameter (repeatable)")
    r.add_argument("--strategy-params", dest="strategy_params", metavar="JSON",
                   help="strategy parameters as a JSON object")
    r.add_argument("--request-id", dest="request_id", help="caller's tracking id")


def _add_sweep_flags(p: argparse.ArgumentParser) -> None:
    sw = p.add_argument_group("sweep")
    sw.add_argument("--sweep", dest="sweep_config", metavar="YAML", help="run the sweep experiment in YAML")
    sw.add_argument("--sweep-outdir", "--sweep_outdir", dest="sweep_outdir", metavar="DIR",
                    help="parent directory of the sweep run directory (default outputs/runs)")
    sw.add_argument("--shards", type=str, default=None, help="number of shard jobs (default: automatic)")


def _add_portfolio_flags(p: argparse.ArgumentParser) -> None:
    pf = p.add_argument_group("portfolio")
    pf.add_argument("--portfolio-report", "--portfolio_report", dest="portfolio_report", metavar="ROOT",
                    help="aggregate the forward sessions under ROOT")
    pf.add_argument("--portfolio-compare", "--portfolio_compare", dest="portfolio_compare", metavar="ROOT",
                    help="every allocation mode side by side")
    for name, meta in (("mode", "MODE"), ("weights", "JSON_FILE"), ("top_n", "N"), ("rank_metric", "METRIC"),
                       ("min_return", "X"), ("max_drawdown", "X"), ("include_tickers", "LIST"),
                       ("exclude_tickers", "LIST"), ("include_strategies", "LIST"), ("exclude_strategies", "LIST"),
                       ("outdir", "DIR")):
        pf.add_argument(f"--portfolio-{name.replace('_', '-')}", f"--portfolio_{name}", dest=f"portfolio_{name}",
                        metavar=meta)
    pf.add_argument("--portfolio-latest-per-source-run", "--portfolio_latest_per_source_run",
                    dest="portfolio_latest_per_source_run", action="store_const", const=True, default=None)


def _add_forward_flags(p: argparse.ArgumentParser) -> None:
    fw = p.add_argument_group("forward")
    fw.add_argument("--forward-eval", "--forward_eval", dest="forward_eval", metavar="RUN_DIR",
                    help="evaluate a sweep's best parameters on a later window")
    fw.add_argument("--forward-start", "--forward_start", dest="forward_start", metavar="DATE")
    fw.add_argument("--forward-end", "--forward_end", dest="forward_end", metavar="DATE")
    fw.add_argument("--forward-outdir", "--forward_outdir", dest="forward_outdir", metavar="DIR")
    fw.add_argument("--forward-metric", "--forward_metric", dest="forward_metric", metavar="METRIC")
    fw.add_argument("--forward-top-k", "--forward_top_k", dest="forward_top_k", metavar="K")
    fw.add_argument("--resume-forward", "--resume_forward", dest="resume_forward", metavar="SESSION_DIR",
                    help="extend a forward session to --forward-end")


def _add_inspection_flags(p: argparse.ArgumentParser) -> None:
    ins = p.add_argument_group("inspection (read-only)")
    ins.add_argument("--runs-list", "--runs_list", "--list-runs", dest="runs_list", metavar="ROOT",
                     help="list the runs under ROOT (a table; JSON with --json)")
    ins.add_argument("--runs-show", "--runs_show", dest="runs_show", metavar="RUN_DIR", help="show one run")
    ins.add_argument("--runs-best", "--runs_best", "--best-from", dest="runs_best", metavar="ROOT",
                     help="the run with the best --metric under ROOT")
    ins.add_argument("--metric", default="sharpe_simple",
                     help="metric for --runs-best/--compare (default sharpe_simple)")
    ins.add_argument("--ascending", action="store_const", const=True, default=None,
                     help="lower --metric is better (default: the metric's own direction, see --list-metrics)")
    ins.add_argument("--descending", dest="ascending", action="store_const", const=False,
                     help="higher --metric is better")
    ins.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="side-by-side metrics of runs")
    ins.add_argument("--runs-reindex", "--runs_reindex", dest="runs_reindex", metavar="ROOT",
                     help="rebuild ROOT's runs catalog and runs_index.* from its run directories")
    ins.add_argument("--json", dest="as_json", action="store_true", help="JSON output for inspection commands")
    ins.add_argument("--paper-sessions-list", dest="paper_sessions_list", metavar="ROOT")
    ins.add_argument("--paper-sessions-show", dest="paper_sessions_show", metavar="SESSION_DIR")
    ins.add_argument("--paper-sessions-health", dest="paper_sessions_health", metavar="ROOT")
    ins.add_argument("--paper-sessions-alerts", dest="paper_sessions_alerts", metavar="ROOT")
    ins.add_argument("--paper-sessions-index", dest="paper_sessions_index", metavar="ROOT")
    ins.add_argument("--paper-stale-minutes", dest="paper_stale_minutes", default="60", metavar="N",
                     help="a running session without a heartbeat for N minutes is stale (default 60)")


def _param_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def request_from_cli(opts):
    """Turn parsed flags into the same Request a JSON payload would give."""
    from quantlab.contract.request import Request, normalise_params

    for name in UNAVAILABLE_FLAGS:
        if getattr(opts, f"legacy_{name}", None) is not None:
            raise ConfigError(f"--{name.replace('_', '-')} is not available in this version")
    command = opts.command or "run"
    if opts.legacy_report is not None or command == "report":
        target = opts.legacy_report if isinstance(opts.legacy_report, str) else opts.target
        if not target:
            raise ConfigError("report needs a run directory: python main.py report RUN_DIR")
        return Request(command="report", params={"run_dir": target}, request_id=opts.request_id, origin="cli")
    if opts.sweep_config is not None or command == "sweep":
        config_path = opts.sweep_config or opts.target
        if not config_path:
            raise ConfigError("sweep needs an experiment file: python main.py sweep CONFIG.yaml")
        raw = {"config_path": config_path, "out_dir": opts.sweep_outdir or getattr(opts, "out_dir", None),
               "shards": opts.shards}
        return _given_request("sweep", raw, opts)
    if opts.portfolio_report is not None or opts.portfolio_compare is not None or command == "portfolio":
        keys = ("portfolio_report", "portfolio_compare", "portfolio_mode", "portfolio_weights", "portfolio_top_n",
                "portfolio_rank_metric", "portfolio_min_return", "portfolio_max_drawdown",
                "portfolio_include_tickers", "portfolio_exclude_tickers", "portfolio_include_strategies",
                "portfolio_exclude_strategies", "portfolio_latest_per_source_run", "portfolio_outdir")
        raw = {k: getattr(opts, k) for k in keys}
        if command == "portfolio" and opts.target and not raw["portfolio_report"] and not raw["portfolio_compare"]:
            raw["portfolio_report"] = opts.target
        return _given_request("portfolio", raw, opts)
    if opts.forward_eval is not None or opts.resume_forward is not None or command == "forward":
        raw = {k: getattr(opts, k) for k in ("forward_eval", "forward_start", "forward_end", "forward_outdir",
                                             "forward_metric", "forward_top_k", "resume_forward")}
        if command == "forward" and opts.target and not raw["forward_eval"] and not raw["resume_forward"]:
            raw["forward_eval"] = opts.target
        return _given_request("forward", raw, opts)
    if command != "run":
        raise ConfigError(f"unknown command '{command}' (commands: {', '.join((*COMMANDS, 'report'))})")
    raw: dict = {}
    for spec in RUN_PARAMS + FLAT_STRATEGY_KEYS:
        value = getattr(opts, spec.name, None)
        if value is not None:
            raw[spec.name] = value
    strategy_params: dict = {}
    if opts.strategy_params:
        try:
            strategy_params = json.loads(opts.strategy_params)
        except ValueError:
            raise ConfigError("--strategy-params must be a JSON object") from None
        if not isinstance(strategy_params, dict):
            raise ConfigError("--strategy-params must be a JSON object")
    for item in opts.param:
        if "=" not in item:
            raise ConfigError(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        strategy_params[key.strip()] = _param_value(value.strip())
    if strategy_params:
        raw["strategy_params"] = strategy_params
    warnings: list[str] = []
    params = normalise_params(command, raw, warnings) if command == "run" else raw
    return Request(command=command, params=params, request_id=opts.request_id, warnings=warnings,
                   origin="cli")


def health_check() -> int:
    """Deterministic JSON health summary (sorted keys); exit 0 when ok, 2 otherwise."""
    import importlib.metadata as md
    import importlib.util
    import os
    from pathlib import Path

    from quantlab.contract.paths import PROJECT_ROOT

    errors: list[str] = []
    main_path = PROJECT_ROOT / "main.py"
    src_root = PROJECT_ROOT / "src"
    if sys.version_info < (3, 11):
        errors.append("Python >= 3.11 is required")
    for path, what in ((main_path, "main.py"), (src_root, "src"), (PROJECT_ROOT / "workflow" / "Snakefile", "Snakefile")):
        if not path.exists():
            errors.append(f"{what} missing at {path}")

    def version_of(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    deps = {d: version_of(d) for d in ("snakemake", "numpy", "numba", "pandas", "pyarrow", "pillow",
                                       "jsonschema", "filelock", "pyyaml", "arch")}
    for dist, ver in deps.items():
        if ver is None:
            errors.append(f"dependency {dist} is not installed")
    arch_spec = importlib.util.find_spec("arch")
    sample_ok = bool(arch_spec and arch_spec.submodule_search_locations and all(
        (Path(list(arch_spec.submodule_search_locations)[0]) / "data" / d / f"{d}.csv.gz").is_file()
        for d in ("sp500", "nasdaq")))
    if not sample_ok:
        errors.append("bundled sample data (arch package) not found")
    data_sources = {
        "sample": sample_ok,
        "file": True,
        "synthetic": True,
        "yfinance": importlib.util.find_spec("yfinance") is not None,
    }
    report = {
        "status": "ok" if not errors else "error",
        "project_root": str(PROJECT_ROOT),
        "main_path": str(main_path),
        "src_root": str(src_root),
        "interpreter": sys.executable,
        "venv_active": sys.prefix != sys.base_prefix or bool(os.environ.get("VIRTUAL_ENV")),
        "quantlab_import": True,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "version": __version__,
        "snakemake_version": deps["snakemake"],
        "dependencies": deps,
        "data_sources": data_sources,
    }
    if errors:
        report["errors"] = errors
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if not errors else 2


def console_main() -> None:
    """``quantlab`` console script: same as ``python main.py``."""
    import runpy

    from quantlab.contract.paths import PROJECT_ROOT

    sys.argv[0] = str(PROJECT_ROOT / "main.py")
    runpy.run_path(str(PROJECT_ROOT / "main.py"), run_name="__main__")


def _given_request(command: str, raw: dict, opts):
    """The request of a command from its options that were given (None: not given)."""
    from quantlab.contract.request import Request, normalise_params

    warnings: list[str] = []
    params = normalise_params(command, {k: v for k, v in raw.items() if v is not None}, warnings)
    return Request(command=command, params=params, request_id=opts.request_id, warnings=warnings, origin="cli")
