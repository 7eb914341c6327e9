"""The yfinance source end to end through ``main.py``, without the internet.

A local HTTP server on 127.0.0.1 answers in Yahoo's chart format (``/v8/finance/chart/<ticker>``,
plus the cookie and crumb endpoints yfinance calls first). The ``main.py`` subprocess gets a
``sitecustomize`` that, when yfinance is imported, makes yfinance's own ``new_session()`` return
its usual session (curl_cffi, browser impersonation) with one change: requests to ``*.yahoo.com``
go to the local server instead. Everything else is the real yfinance: the HTTP client, the cookie
and crumb dance, the time-zone lookup, the chart parsing and adjustment. "Offline" points the same
session at a closed 127.0.0.1 port, so every request fails with a connection error.
"""

from __future__ import annotations

import json
import math
import socket
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from quantlab.data import read_bars

SITECUSTOMIZE = textwrap.dedent('''
    """Test only: route yfinance's HTTP session to a local Yahoo stand-in (QL_TEST_YAHOO_URL)."""
    import importlib.abc
    import os
    import sys
    from urllib.parse import urlsplit

    _TARGET = os.environ["QL_TEST_YAHOO_URL"].rstrip("/")


    def _patch(module):
        real_new_session = module.new_session

        def new_session():
            session = real_new_session()
            base = type(session)

            class LocalYahoo(base):
                def request(self, method, url, *args, **kwargs):
                    parts = urlsplit(url)
                    if (parts.hostname or "").endswith("yahoo.com"):
                        headers = dict(kwargs.pop("headers", None) or {})
                        headers["X-Yahoo-Host"] = parts.hostname
                        kwargs["headers"] = headers
                        url = _TARGET + (parts.path or "/") + ("?" + parts.query if parts.query else "")
                    return super().request(method, url, *args, **kwargs)

            session.__class__ = LocalYahoo
            return session

        module.new_session = new_session


    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "yfinance._http":
                return None
            sys.meta_path.remove(self)
            try:
                import importlib.util
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            loader = spec.loader
            real_exec = loader.exec_module

            def exec_module(module):
                real_exec(module)
                _patch(module)

            loader.exec_module = exec_module
            return spec


    sys.meta_path.insert(0, _Hook())
''')

FIRST_DAY = datetime(2019, 1, 1, tzinfo=timezone.utc)


def served_close(day: datetime) -> float:
    """The close the stand-in serves for a date: a deterministic wave with a drift."""
    i = (day - FIRST_DAY).days
    return round(100.0 + 10.0 * math.sin(i / 9.0) + 0.05 * i, 4)


def chart_payload(ticker: str, query: dict[str, list[str]]) -> dict:
    """A Yahoo v8 chart response: one bar per weekday at 14:30 UTC in [period1, period2)."""
    if "period1" in query:
        first = datetime.fromtimestamp(int(query["period1"][0]), timezone.utc)
        last = datetime.fromtimestamp(int(query["period2"][0]), timezone.utc)
    else:  # range=1d: yfinance's time-zone lookup
        first, last = datetime(2020, 6, 1, tzinfo=timezone.utc), datetime(2020, 6, 2, tzinfo=timezone.utc)
    day = first.replace(hour=0, minute=0, second=0)
    stamps, opens, highs, lows, closes, volumes = [], [], [], [], [], []
    while day < last:
        bar = day.replace(hour=14, minute=30)
        if day.weekday() < 5 and first <= bar < last:
            close = served_close(day)
            open_ = served_close(day - timedelta(days=1))
            stamps.append(int(bar.timestamp()))
            opens.append(open_)
            highs.append(round(max(open_, close) + 0.5, 4))
            lows.append(round(min(open_, close) - 0.5, 4))
            closes.append(close)
            volumes.append(1_000_000 + len(stamps))
        day += timedelta(days=1)
    meta = {
        "currency": "USD", "symbol": ticker, "exchangeName": "NMS", "fullExchangeName": "NasdaqGS",
        "instrumentType": "EQUITY", "firstTradeDate": 345479400, "regularMarketTime": stamps[-1],
        "hasPrePostMarketData": True, "gmtoffset": -14400, "timezone": "EDT",
        "exchangeTimezoneName": "America/New_York", "regularMarketPrice": closes[-1],
        "priceHint": 2, "dataGranularity": "1d", "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    result = {
        "meta": meta, "timestamp": stamps,
        "indicators": {"quote": [{"open": opens, "high": highs, "low": lows, "close": closes,
                                  "volume": volumes}],
                       "adjclose": [{"adjclose": closes}]},
    }
    return {"chart": {"result": [result], "error": None}}


class YahooStandIn:
    """A threaded HTTP server on 127.0.0.1 that records the paths it was asked for."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                outer.requests.append(parts.path)
                if parts.path.startswith("/v8/finance/chart/"):
                    ticker = parts.path.rsplit("/", 1)[1]
                    body = json.dumps(chart_payload(ticker, parse_qs(parts.query))).encode()
                    kind = "application/json"
                elif parts.path == "/v1/test/getcrumb":
                    body, kind = b"local-crumb", "text/plain"
                else:  # fc.yahoo.com: the cookie page
                    body, kind = b"<html>ok</html>", "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if parts.path == "/":
                    self.send_header("Set-Cookie", "A3=local; Path=/")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def chart_requests(self) -> list[str]:
        return [p for p in self.requests if p.startswith("/v8/finance/chart/")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A 127.0.0.1 URL nothing listens on (bound, then closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def yahoo(ql, tmp_path):
    """Route the ``ql`` subprocesses' yfinance to a local stand-in; yields the stand-in."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    server = YahooStandIn()
    ql.env["PYTHONPATH"] = str(site)
    ql.env["QL_TEST_YAHOO_URL"] = server.url
    yield server
    server.close()


def aapl(**params) -> dict:
    base = {"ticker": "AAPL", "start": "2020-01-01", "end": "2021-01-01", "strategy": "sma_crossover",
            "strategy_params": {"fast": 5, "slow": 20}}
    base.update(params)
    return {"schema_version": "1.0", "request_id": "yf-1", "command": "run", "params": base}


def test_check_reports_yfinance_installed(ql) -> None:
    proc = ql.cli("--check")
    assert proc.returncode == 0, proc.stderr
    health = json.loads(proc.stdout)
    assert '"yfinance": true' in json.dumps(health), proc.stdout


def test_download_through_real_yfinance_then_parquet_cache(ql, yahoo: YahooStandIn) -> None:
    res = ql.request(aapl())
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    env = res.envelope
    assert env["status"] == "success" and env["summary"]["trades"] > 0
    charts = yahoo.chart_requests()
    assert charts and all(p == "/v8/finance/chart/AAPL" for p in charts)

    # yfinance parsed the served chart: the cached bars are exactly the served weekdays and closes
    cached = sorted((ql.outputs / "cache" / "yfinance").glob("AAPL_1d_*.parquet"))
    assert len(cached) == 1
    bars = read_bars(cached[0])
    assert bars.source == "yfinance" and bars.ticker == "AAPL"
    days = bars.index.astype("datetime64[D]").astype(datetime)
    assert all(d.weekday() < 5 for d in days)
    expected = np.array([served_close(datetime(d.year, d.month, d.day, tzinfo=timezone.utc)) for d in days])
    np.testing.assert_allclose(bars.close, expected, rtol=0, atol=1e-9)
    assert str(days[-1]) == "2020-12-31"
    report = json.loads(Path(env["report_path"]).read_text())
    assert report["machine_contract"]["warnings"] == []

    # same window, another data key (explicit source): the load step runs and reads the Parquet cache
    before = len(yahoo.chart_requests())
    again = ql.request(aapl(source="yfinance"))
    assert again.returncode == 0, again.stderr
    assert len(yahoo.chart_requests()) == before


@pytest.mark.parametrize("human", [False, True], ids=["json", "cli"])
def test_offline_is_one_clear_error_naming_bundled_tickers(ql, yahoo: YahooStandIn, human: bool) -> None:
    ql.env["QL_TEST_YAHOO_URL"] = closed_port_url()
    if human:
        proc = ql.cli("run", "--ticker", "AAPL", "--start", "2020-01-01", "--end", "2021-01-01")
        code, stderr = proc.returncode, proc.stderr
    else:
        res = ql.request(aapl())
        code, stderr = res.returncode, res.stderr
        assert res.signals[-1]["event"] == "SESSION_FAILED" and res.signals[-1]["exit_code"] == 3
        message = res.envelope["error"]["message"]
        assert "Yahoo Finance could not be reached" in message and "^GSPC" in message
    assert code == 3
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("ERROR: Data for AAPL 2020-01-01..2021-01-01 (1d) could not be downloaded: ")
    assert "Yahoo Finance could not be reached (ConnectionError" in line
    for bundled in ("SPX", "^GSPC", "^IXIC"):
        assert bundled in line
    assert not list((ql.outputs / "cache").rglob("*.parquet")) if (ql.outputs / "cache").exists() else True
    runs = ql.outputs / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if p.is_dir()]


def test_bundled_run_does_not_import_yfinance(ql, tmp_path) -> None:
    """The cold run path stays free of yfinance: a bundled-ticker run never imports it."""
    site = tmp_path / "nosite"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'yfinance' or name.startswith('yfinance.'):\n"
        "            raise ImportError('yfinance imported on the bundled run path')\n"
        "sys.meta_path.insert(0, _Block())\n")
    ql.env["PYTHONPATH"] = str(site)
    res = ql.request({"schema_version": "1.0", "request_id": "b", "command": "run",
                      "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}})
    assert res.returncode == 0, res.stderr
