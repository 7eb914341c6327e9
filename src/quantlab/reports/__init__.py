"""Interactive, self-contained HTML reports (Bokeh) of result directories.

``write_report_html(path)`` writes ``<path>/report.html`` for a run, a sweep (grid or
walk-forward), a forward session or a portfolio; ``figure(path)`` returns the Bokeh layout
itself (for ``.plot()`` in a notebook: ``bokeh.io.show(figure(path))``). Bokeh is imported only
when one of them is called. docs/reports.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from quantlab.artifacts.report_doc import REPORT_HTML
from quantlab.errors import ConfigError


def kind_of(path: Path) -> str:
    """``run`` | ``paper`` | ``grid`` | ``walkforward`` | ``forward`` | ``portfolio``, from the
    directory's own files; ConfigError when it is none of them."""
    from quantlab.reports.readers import read_json

    path = Path(path)
    if (path / "session_metadata.json").is_file():
        return "forward"
    if (path / "portfolio_equity.parquet").is_file():
        return "portfolio"
    meta = read_json(path / "metadata.json") or {}
    mode = meta.get("mode")
    if mode in ("run", "paper", "grid", "walkforward"):
        return mode
    if (path / "leaderboard.csv").is_file():
        return "walkforward" if (path / "walkforward_summary.csv").is_file() else "grid"
    if (path / "equity.parquet").is_file():
        return "run"
    raise ConfigError(f"{path} is not a run directory (nor a sweep, forward session or portfolio)")


def figure(path: str | os.PathLike):
    """The Bokeh layout of the report of ``path`` (a result directory)."""
    path = Path(os.path.abspath(path))
    if not path.is_dir():
        raise ConfigError(f"not a directory: {path}")
    kind = kind_of(path)
    if kind in ("run", "paper"):
        from quantlab.reports.run_page import build

        return build(path, kind=kind)
    if kind == "forward":
        from quantlab.reports.session_pages import forward

        return forward(path)
    if kind == "portfolio":
        from quantlab.reports.session_pages import portfolio

        return portfolio(path)
    from quantlab.reports.sweep_page import build as sweep

    return sweep(path, kind)


def render(path: str | os.PathLike) -> str:
    """The report page of ``path`` as a string."""
    from quantlab.reports.figures import page_html

    path = Path(os.path.abspath(path))
    return page_html(figure(path), f"QuantLab {kind_of(path)} {path.name}")


def write_report_html(path: str | os.PathLike) -> Path:
    """Write ``<path>/report.html`` atomically and return its absolute path."""
    from quantlab.artifacts.io import atomic_write_text

    out = Path(os.path.abspath(path)) / REPORT_HTML
    atomic_write_text(out, render(path))
    return out
