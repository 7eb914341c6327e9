"""The HTML reports of real results (made through main.py), rendered by headless Chromium over the
DevTools protocol (tests/cli/browser.py): a run's and a sweep's interactive Bokeh report.html, and
the registry report of a root. Each page is loaded from file://, must log nothing but Bokeh's
log-level line, request nothing but itself and inline data: URIs (a Content-Security-Policy would
turn any other load into a logged error), and draw its panels (canvases inside Bokeh's shadow DOM,
table rows). One run and one small sweep are shared by every test."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from browser import deep_count, needs_chromium, visit
from conftest import GRID_YAML, QuantLab, strict_json

BOKEH_INFO = (r"^\[bokeh [\d.]+\] setting log level to: 'warn'$",)


# one worker runs the whole module, so its module-scoped fixture is made once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("html_report")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    ql = QuantLab(tmp_path_factory.mktemp("html_report"))
    run = ql.request({"schema_version": "1.0", "command": "run", "params": {
        "ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01", "html_report": True}})
    assert run.returncode == 0, run.stderr
    sweep = ql.cli("sweep", str(GRID_YAML), "--html-report")
    assert sweep.returncode == 0, sweep.stderr
    rows = strict_json((ql.runs_dir() / "runs_index.json").read_text())["runs"]
    sweep_dir = next(Path(r["path"]) for r in rows if r["mode"] == "grid")
    forward = ql.request({"schema_version": "1.0", "command": "forward", "params": {
        "forward_eval": str(sweep_dir), "forward_end": "2018-12-01", "forward_top_k": 2, "html_report": True}})
    assert forward.returncode == 0, forward.stderr
    portfolio = ql.request({"schema_version": "1.0", "command": "portfolio", "params": {
        "portfolio_report": str(ql.outputs / "forward_runs"), "html_report": True}})
    assert portfolio.returncode == 0, portfolio.stderr
    report = ql.cli("report", str(ql.outputs))  # a root of roots: outputs/
    assert report.returncode == 0, report.stderr
    return {"ql": ql, "run": run, "run_dir": Path(run.envelope["artifacts_path"]), "sweep_dir": sweep_dir,
            "rows": rows, "forward_dir": Path(forward.envelope["artifacts_path"]),
            "portfolio_dir": Path(portfolio.envelope["artifacts_path"]), "registry": ql.outputs / "report.html"}


def bokeh_doc(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', page, re.S)
    return next(iter(json.loads(found.group(1)).values()))


def models(node, name: str) -> list[dict]:
    """Every serialized Bokeh model of class ``name`` in a document tree."""
    out = []
    if isinstance(node, dict):
        if node.get("type") == "object" and node.get("name") == name:
            out.append(node)
        for value in node.values():
            out.extend(models(value, name))
    elif isinstance(node, list):
        for value in node:
            out.extend(models(value, name))
    return out


class _Loads(HTMLParser):
    """Elements that would load something: a src or href that is not data: or a #fragment
    (the parser reads script bodies as text, so markup inside inlined JavaScript is not counted)."""

    def __init__(self):
        super().__init__()
        self.loads: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("data:", "#")):
                self.loads.append((tag, value))


def self_contained(page: str) -> None:
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    parser = _Loads()
    parser.feed(page)
    assert parser.loads == []


def clean(v) -> None:
    assert v.problems(BOKEH_INFO) == [], v.console
    assert all(u.startswith("data:") or u.startswith("file://") for u in v.requests), v.requests
    assert len([u for u in v.requests if u.startswith("file://")]) == 1, v.requests


def colours(png: bytes) -> dict:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    return {rgb: n for n, rgb in img.getcolors(1 << 24)}


def near(cols: dict, rgb: tuple, tol: int = 12) -> int:
    return sum(n for c, n in cols.items() if all(abs(a - b) <= tol for a, b in zip(c, rgb)))


# ------------------------------------------------------------------------------------ run page
def test_run_request_writes_a_self_contained_interactive_report(made):
    run = made["run"]
    assert run.envelope["status"] == "success" and run.stderr == ""  # the machine path stays quiet
    page = (made["run_dir"] / "report.html").read_text()
    self_contained(page)
    assert run.envelope["run_id"] in page
    doc = bokeh_doc(page)
    figures = models(doc, "Figure")
    # price, equity, drawdown and position share one x range (zoom and pan move them together)
    time_axes = [f for f in figures if models(f["attributes"].get("below"), "DatetimeAxis")]
    assert len(time_axes) == 4
    assert len({f["attributes"]["x_range"]["id"] for f in time_axes}) == 1
    tables = models(doc, "DataTable")
    assert len(tables) == 1
    assert "Monthly returns" in page and "Price with entries" in page


@needs_chromium
def test_chromium_draws_the_run_report_offline(made):
    n_trades = len((made["run_dir"] / "trades.csv").read_text().splitlines()) - 1
    v = visit((made["run_dir"] / "report.html").as_uri(), width=1400, height=1900,
              probes={"canvases": deep_count("canvas"), "rows": deep_count(".slick-row")})
    assert v.ready
    clean(v)
    assert v.probes["canvases"] >= 5  # price, equity, drawdown, position, monthly heatmap
    assert v.probes["rows"] == min(n_trades, 10) and n_trades > 0
    cols = colours(v.screenshot)
    assert near(cols, (0x26, 0xa6, 0x9a)) > 100 and near(cols, (0xef, 0x53, 0x50)) > 100  # up/down candles
    assert near(cols, (0x2c, 0xa0, 0x2c)) > 50  # entry markers
    assert near(cols, (0x1f, 0x77, 0xb4)) > 200  # the equity line


# ---------------------------------------------------------------------------------- sweep page
def test_sweep_report_draws_best_and_median_equity_that_reproduce_the_leaderboard(made):
    page = (made["sweep_dir"] / "report.html").read_text()
    self_contained(page)
    assert "best (rank 1)" in page and "median (rank 14)" in page
    assert "differs from the leaderboard" not in page and "not re-simulated" not in page
    doc = bokeh_doc(page)
    assert len(models(doc, "DataTable")) == 1  # the sortable leaderboard
    columns = {c["attributes"]["field"] for c in models(doc, "TableColumn")}
    assert {"rsi_buy_max", "rsi_sell_min", "cooldown_days", "sharpe_simple"} <= columns


def test_resimulated_best_combination_matches_its_leaderboard_row(made, monkeypatch):
    from quantlab.reports.resim import checked_equity

    monkeypatch.setenv("QUANTLAB_OUTPUTS_DIR", str(made["ql"].outputs))
    report = strict_json((made["sweep_dir"] / "report.json").read_text())
    config = strict_json((made["sweep_dir"] / "config.json").read_text())
    best = report["results"][0]
    notes: list[str] = []
    ts, equity = checked_equity(config, {**best, **best["metrics"]}, notes, "best")
    assert notes == [] and len(equity) == best["metrics"]["bars"]
    assert equity[-1] / config["initial_cash"] - 1 == pytest.approx(best["metrics"]["total_return"], abs=1e-12)
    wrong = {**best, **best["metrics"], "total_return": best["metrics"]["total_return"] + 0.01}
    assert checked_equity(config, wrong, notes, "best") is None and "differs" in notes[0]


@needs_chromium
def test_chromium_draws_the_sweep_report_offline(made):
    v = visit((made["sweep_dir"] / "report.html").as_uri(), width=1400, height=1400,
              probes={"canvases": deep_count("canvas"), "rows": deep_count(".slick-row")})
    assert v.ready
    clean(v)
    assert v.probes["canvases"] >= 2  # heatmap, best vs median equity
    assert v.probes["rows"] >= 10  # the leaderboard (SlickGrid draws the visible rows)
    cols = colours(v.screenshot)
    assert near(cols, (0x1f, 0x77, 0xb4)) > 200 and near(cols, (0xd6, 0x27, 0x28)) > 200  # best, median


# ------------------------------------------------------------------- forward session, portfolio
def test_forward_session_and_portfolio_reports(made):
    forward = (made["forward_dir"] / "report.html").read_text()
    self_contained(forward)
    doc = bokeh_doc(forward)
    linked = [f for f in models(doc, "Figure") if models(f["attributes"].get("below"), "DatetimeAxis")]
    assert len(linked) == 5  # every candidate's equity, then price, equity, drawdown, position
    assert "c1 (primary)" in forward and "c2" in forward
    portfolio = (made["portfolio_dir"] / "report.html").read_text()
    self_contained(portfolio)
    doc = bokeh_doc(portfolio)
    time_axes = [f for f in models(doc, "Figure") if models(f["attributes"].get("below"), "DatetimeAxis")]
    assert len(time_axes) == 3 and len({f["attributes"]["x_range"]["id"] for f in time_axes}) == 1
    assert len(models(doc, "DataTable")) == 1 and made["forward_dir"].name in portfolio  # the weights


# ---------------------------------------------------------------------------------- registry
def test_registry_report_lists_every_result_with_parameters_and_links(made):
    page = made["registry"].read_text()
    assert "<h1>QuantLab research report</h1>" in page
    for row in made["rows"]:
        assert row["run_id"] in page.replace("_<wbr>", "_")
    for path in (made["forward_dir"], made["portfolio_dir"]):
        assert path.name in page.replace("_<wbr>", "_")
    links = re.findall(r'<a href="([^"]+)"><code>', page)
    assert len(links) == len(made["rows"]) + 2  # runs, the sweep, the forward session, the portfolio
    assert all((made["registry"].parent / link).is_file() for link in links)
    assert "cooldown_days=0, ma_window=20" in page  # the run's parameters
    assert "best rsi_buy_max=55.0" in page  # the sweep's best combination
    imgs = dict(re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page))
    by_alt = {alt: base64.b64decode(data) for data, alt in imgs.items()}
    sweep = next(r for r in made["rows"] if r["mode"] == "grid")
    assert by_alt[f"parameter heatmap of {sweep['run_id']}"] == (Path(sweep["path"]) / "heatmap.png").read_bytes()
    for name, alt in (("pbo_logits.png", "PBO logit histogram"), ("is_vs_oos.png", "IS vs OOS Sharpe")):
        assert by_alt[f"{alt} of {sweep['run_id']}"] == (Path(sweep["path"]) / name).read_bytes()  # robustness


@needs_chromium
@pytest.mark.parametrize("width", [1400, 1000])
def test_chromium_registry_fits_the_window_and_filters(made, width):
    filtered = ("(function(){var f=document.getElementById('filter');f.value='grid';"
                "f.dispatchEvent(new Event('input'));return Array.prototype.filter.call("
                "document.querySelectorAll('tbody tr'),function(r){return !r.hidden && !r.closest('section').hidden;}).length;})()")
    v = visit(made["registry"].as_uri(), width=width, height=1200, probes={
        "scroll": "document.documentElement.scrollWidth", "inner": "window.innerWidth",
        "rows": "document.querySelectorAll('tbody tr').length", "filtered": filtered})
    clean(v)  # the filter script runs under the page's CSP (allowed by its hash)
    assert v.probes["scroll"] <= v.probes["inner"] == width  # no horizontal overflow
    assert v.probes["rows"] == len(made["rows"]) + 2
    assert v.probes["filtered"] == 1
    assert Image.open(io.BytesIO(v.screenshot)).size == (width, 1200)


def test_report_command_on_a_root_writes_the_html_page(ql):
    res = ql.request({"schema_version": "1.0", "command": "run",
                      "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}})
    assert res.returncode == 0, res.stderr
    assert not (Path(res.envelope["artifacts_path"]) / "report.html").exists()  # off by default
    out = ql.cli("report", str(ql.outputs / "runs"))
    assert out.returncode == 0, out.stderr
    page = (ql.outputs / "runs" / "report.html").read_text()
    assert out.stdout.strip().endswith("report.html") and res.envelope["run_id"] in page.replace("_<wbr>", "_")
    assert (Path(res.envelope["artifacts_path"]) / "report.html").is_file()  # made for the link


def test_bokeh_stays_off_the_default_request_path(tmp_path):
    """A request without html_report never imports Bokeh or the report module (the cold-run
    budget: benchmarks/bench_run.py --html measures what the page costs when asked for)."""
    import subprocess
    import sys

    from conftest import MAIN

    def imported(html: bool) -> set[str]:
        params = {"ticker": "SPX", "start": "2017-01-01", "end": "2017-06-01", "html_report": html}
        env = {**QuantLab(tmp_path).env, "PYTHONPROFILEIMPORTTIME": "1"}
        res = subprocess.run([sys.executable, str(MAIN), "--json-request", json.dumps(
            {"schema_version": "1.0", "command": "run", "params": params})], capture_output=True, text=True,
            env=env, timeout=120, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
        return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in res.stderr.splitlines()
                if line.startswith("import time:")} | {line.rsplit("|", 1)[-1].strip() for line in
                                                       res.stderr.splitlines() if "quantlab.reports" in line}

    plain = imported(False)
    assert "bokeh" not in plain and "quantlab.reports" not in plain
    assert "bokeh" in imported(True)
