"""The HTML research report of real runs (made through main.py), rendered by headless Chromium:
the DOM shows every run id, nothing is logged to the JavaScript console (the page has no script,
and its Content-Security-Policy would log any blocked external load), the screenshot is a real page."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import GRID_YAML, SPX_2017_RUN, QuantLab, strict_json
from quantlab.registry.html_report import write_html_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    ql = QuantLab(tmp_path_factory.mktemp("html_report"))
    root = ql.cli_all(SPX_2017_RUN,
                      ("run", "--ticker", "NASDAQ", "--start", "2016-01-01", "--end", "2018-01-01",
                       "--strategy", "donchian_breakout"),
                      ("sweep", str(GRID_YAML)))
    path = write_html_report(root)
    runs = strict_json((root / "runs_index.json").read_text())["runs"]
    return {"root": root, "path": path, "html": path.read_text(), "runs": runs, "tmp": ql.tmp}


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=90)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_report_of_real_runs(report):
    page = report["html"]
    assert report["path"] == report["root"] / "report.html"
    for row in report["runs"]:
        assert row["run_id"] in page
    imgs = dict(re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page))
    by_alt = {alt: base64.b64decode(data) for data, alt in imgs.items()}
    sweep = next(r for r in report["runs"] if r["mode"] == "grid")
    assert by_alt[f"parameter heatmap of {sweep['run_id']}"] == (Path(sweep["path"]) / "heatmap.png").read_bytes()
    curves = {alt for alt in by_alt if alt.startswith("equity curve of")}
    assert curves == {f"equity curve of {r['run_id']}" for r in report["runs"] if r["mode"] == "run"}
    assert "<script" not in page and "http://" not in page and "https://" not in page


@needs_chromium
def test_chromium_renders_every_run_without_console_errors(report):
    res = chromium(report["tmp"], "--dump-dom", report["path"].as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<h1>QuantLab research report</h1>" in dom
    for row in report["runs"]:
        assert row["run_id"] in dom
    assert len(re.findall(r"<tr(?: class=\"top\")?><td class=\"num\">", dom)) == len(report["runs"])
    assert console_lines(res.stderr) == []


@needs_chromium
def test_chromium_screenshot_is_a_real_page(report):
    shot = report["tmp"] / "report.png"
    res = chromium(report["tmp"], "--hide-scrollbars", "--window-size=1280,1600", f"--screenshot={shot}",
                   report["path"].as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert console_lines(res.stderr) == []
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1600)
    colors = img.getcolors(1 << 24)
    assert len(colors) > 50  # text, tables and charts, not a blank page
    white = max(count for count, color in colors if color == (255, 255, 255))
    assert white < 0.97 * 1280 * 1600
    blue = sum(count for count, (r, g, b) in colors if b > 150 and r < 80)  # the top run's equity line
    assert blue > 200
    Image.open(io.BytesIO(shot.read_bytes())).verify()


def test_report_command_on_a_root_writes_the_html_page(ql):
    res = ql.request({"schema_version": "1.0", "command": "run",
                      "params": {"ticker": "SPX", "start": "2017-01-01", "end": "2018-01-01"}})
    assert res.returncode == 0, res.stderr
    out = ql.cli("report", str(ql.outputs / "runs"))
    assert out.returncode == 0, out.stderr
    page = (ql.outputs / "runs" / "report.html").read_text()
    assert out.stdout.strip().endswith("report.html") and res.envelope["run_id"] in page
