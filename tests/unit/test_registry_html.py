"""quantlab.registry.html_report on hand-made run dirs: leaderboard, the group leaders' equity
curves, sweep heatmaps, escaping, structure (balanced HTML5, one inline script allowed by its hash,
no external resource), broken inputs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantlab.columnar import parquet_bytes, table_from_numpy
from quantlab.errors import ConfigError
from quantlab.artifacts.line_chart import line_chart_png
from quantlab.registry.html_board import SCRIPT, SCRIPT_HASH
from quantlab.registry.html_report import build_html, write_html_report

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Checker(HTMLParser):
    """Balanced, properly nested tags; collects tags, attributes and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.doctype = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check(page: str) -> Checker:
    c = Checker()
    c.feed(page)
    c.close()
    assert c.doctype == "DOCTYPE html"
    assert not c.errors and not c.stack, (c.errors, c.stack)
    assert c.tags[0] == ("html", {"lang": "en"})
    assert not [t for t, _ in c.tags if t in ("link", "iframe", "object", "embed", "base")]
    assert [a for t, a in c.tags if t == "script"] == [{}]  # the filter/sort code, inline
    assert f"script-src '{SCRIPT_HASH}'" in page and SCRIPT_HASH == "sha256-" + base64.b64encode(
        hashlib.sha256(SCRIPT.encode()).digest()).decode() and f"<script>{SCRIPT}</script>" in page
    for tag, attrs in c.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name == "src":
                assert value.startswith("data:image/png;base64,"), (tag, value[:40])
            if name == "href":
                assert value.endswith("report.html") and "://" not in value, (tag, value)
    return c


def images(c: Checker) -> dict[str, bytes]:
    return {a["alt"]: base64.b64decode(a["src"].split(",", 1)[1]) for t, a in c.tags if t == "img"}


def make_run(root: Path, run_id: str, sharpe, *, equity=True, mode="run", ticker="SPX", n=60) -> Path:
    d = root / run_id
    d.mkdir(parents=True)
    summary = {"sharpe_simple": sharpe, "total_return": 0.1, "max_drawdown": -0.05, "trades": 3, "win_rate": 0.5}
    (d / "metadata.json").write_text(json.dumps({"run_id": run_id, "mode": mode, "created_at": "2026-11-25T07:00:00Z",
                                                 "summary": summary}))
    (d / "config.json").write_text(json.dumps({"ticker": ticker, "start": "2017-01-01", "end": "2017-03-01",
                                               "strategy": "rsi_ma_cross_v2"}))
    if equity:
        ts = np.datetime64("2017-01-02", "ns") + np.arange(n) * np.timedelta64(1, "D")
        eq = 10_000 * np.cumprod(1 + np.sin(np.arange(n) / 5) * 0.01 * (1 + (sharpe or 0)))
        bench = 10_000 * np.cumprod(np.full(n, 1.001))
        (d / "equity.parquet").write_bytes(parquet_bytes(table_from_numpy(
            {"timestamp": ts, "equity": eq, "benchmark_equity": bench})))
    return d


def png_bytes(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "runs"
    for i, sharpe in enumerate([0.1, 1.5, -0.4, 0.9, 2.0, 0.3, None]):
        make_run(r, f"run_{i}", sharpe)
    sweep = make_run(r, "sweep_a", 3.0, equity=False, mode="grid")  # best sharpe, but no equity curve
    (sweep / "heatmap.png").write_bytes(png_bytes())
    return r


def board(page: str) -> list[str]:
    """Result ids in page order."""
    return [rid.replace("<wbr>", "") for rid in re.findall(r'<td data-v="[^"]*"[^>]*>(?:<a [^>]+>)?<code>([^<]+(?:<wbr>[^<]+)*)</code>', page)]


def test_leaderboard_group_leader_curves_and_heatmaps(root):
    page = build_html(root, result_pages=False)
    c = check(page)
    text = "".join(c.text)
    for rid in [f"run_{i}" for i in range(7)] + ["sweep_a"]:
        assert rid in text
    assert board(page) == ["sweep_a", "run_4", "run_1", "run_3", "run_5", "run_0", "run_2", "run_6"]
    make_run(root, "other_ticker", 0.2, ticker="NASDAQ")
    page = build_html(root, result_pages=False)
    assert board(page) == ["sweep_a", "run_4", "run_1", "run_3", "run_5", "run_0", "run_2", "run_6",
                           "other_ticker"]  # its own group, after the group with the best result
    imgs = images(check(page))
    curves = sorted(k for k in imgs if k.startswith("equity curve of"))
    assert curves == ["equity curve of other_ticker", "equity curve of run_4"]  # each group's best run
    assert "normalised equity curves of the group leaders" in imgs
    assert imgs["parameter heatmap of sweep_a"] == png_bytes()
    for data in imgs.values():
        Image.open(io.BytesIO(data)).verify()


def test_strings_are_escaped(tmp_path):
    make_run(tmp_path, "r1", 1.0, ticker='<script>alert("x")</script>&<b>')
    page = build_html(tmp_path, result_pages=False)
    check(page)
    assert page.count("<script") == 1 and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;" in page


def test_empty_root_and_bad_roots(tmp_path):
    c = check(build_html(tmp_path))
    assert "No runs under this root." in "".join(c.text)
    with pytest.raises(ConfigError, match="runs root not found"):
        build_html(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        build_html(tmp_path / "f")
    run_dir = make_run(tmp_path / "runs", "only", 1.0)
    with pytest.raises(ConfigError, match="is a run directory"):
        build_html(run_dir)


def test_broken_inputs_are_noted_not_fatal(root):
    (root / "run_4" / "equity.parquet").write_bytes(b"not parquet")
    (root / "sweep_a" / "heatmap.png").write_bytes(b"GIF89a")
    (root / "run_1" / "config.json").write_text("{broken")
    make_run(root, "sweep_b", 0.0, equity=False, mode="grid")
    c = check(build_html(root, result_pages=False))
    text = "".join(c.text)
    assert "run_4: equity.parquet unreadable" in text
    assert "sweep_a: heatmap.png is not a PNG file" in text and "sweep_b: sweep without heatmap.png" in text
    assert "config.json: invalid JSON" in text
    curves = sorted(k for k in images(c) if k.startswith("equity curve of"))
    # run_3, the group's next best, stands in for run_4; run_1 (no readable config) is a group of its own
    assert curves == ["equity curve of run_1", "equity curve of run_3"]


def test_write_html_report_default_and_custom_paths(root, tmp_path):
    out = write_html_report(root, result_pages=False)
    assert out == root / "report.html" and out.read_text().startswith("<!DOCTYPE html>")
    custom = write_html_report(root, tmp_path / "elsewhere" / "r.html", result_pages=False)
    assert custom.is_file() and custom.parent.name == "elsewhere"
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    # the report file is not a run: a rebuild sees the same runs
    assert build_html(root, result_pages=False).count("<tr") == out.read_text().count("<tr")


def test_line_chart_png():
    x = np.arange(100, dtype=np.int64) * 86_400 * 10**9
    y = np.linspace(1, 2, 100)
    y[5] = np.nan
    img = Image.open(io.BytesIO(line_chart_png([("a", (255, 0, 0), x, y), ("b", (0, 0, 255), x, y[::-1])], "t",
                                               width=500, height=300)))
    assert img.size == (500, 300 + 2 * 16)
    colors = {c for _, c in img.getcolors(1_000_000)}
    assert (255, 0, 0) in colors and (0, 0, 255) in colors
    empty = Image.open(io.BytesIO(line_chart_png([("a", (255, 0, 0), x[:0], y[:0])], "t", width=300, height=200)))
    assert empty.size == (300, 200)
    single = line_chart_png([("a", (255, 0, 0), x[:1], y[:1])], "t")
    Image.open(io.BytesIO(single)).verify()
