"""Data sources with moving parts: user files (CSV/Parquet), yfinance (fake module), synthetic."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.data import Bars, DataRequest, load_bars, read_bars, synthetic_bars, validate_bars, write_bars
from quantlab.data.timeutil import format_time
from quantlab.data.yahoo import cache_path, download_window
from quantlab.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _no_yfinance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import yfinance`` fail unless a test injects a fake: no test may touch the network."""
    monkeypatch.setitem(sys.modules, "yfinance", None)


def sample_frame(n: int = 30, start: str = "2021-03-01", freq: str = "D") -> pd.DataFrame:
    """A valid OHLCV frame with a DatetimeIndex named Date and capitalised columns."""
    rng = np.random.default_rng(0)
    close = 50 + np.cumsum(rng.normal(0, 1, n))
    open_ = close + rng.normal(0, 0.3, n)
    return pd.DataFrame(
        {
            "Open": open_,
            "High": np.maximum(open_, close) + 0.5,
            "Low": np.minimum(open_, close) - 0.5,
            "Close": close,
            "Adj Close": close * 0.9,
            "Volume": rng.integers(1, 10_000, n).astype(float),
        },
        index=pd.date_range(start, periods=n, freq=freq, name="Date"),
    )


def file_request(path: Path, start: str = "2021-03-01", end: str = "2021-04-01", **kw) -> DataRequest:
    return DataRequest("MYDATA", start, end, source="file", data_path=str(path), **kw)


# --------------------------------------------------------------------------- file source


class TestFileSource:
    def test_csv_written_by_pandas(self, tmp_path: Path) -> None:
        frame = sample_frame()
        path = tmp_path / "data.csv"
        frame.to_csv(path)
        bars = load_bars(file_request(path, adjust="none"))
        assert (bars.ticker, bars.source, bars.interval) == ("MYDATA", "file", "1d")
        assert len(bars) == 30
        np.testing.assert_allclose(bars.close, frame["Close"].to_numpy(), rtol=1e-15)
        # by default (adjust auto) the Adj Close column back-adjusts the prices (issue #16)
        adjusted = load_bars(file_request(path))
        np.testing.assert_allclose(adjusted.close, frame["Adj Close"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(adjusted.open, frame["Open"].to_numpy() * 0.9, rtol=1e-12)
        np.testing.assert_array_equal(bars.index, frame.index.to_numpy(dtype="datetime64[ns]"))
        np.testing.assert_allclose(bars.volume, frame["Volume"].to_numpy())

    def test_selection_lookback_and_exclusive_end(self, tmp_path: Path) -> None:
        path = tmp_path / "data.csv"
        sample_frame(60).to_csv(path)
        bars = load_bars(file_request(path, "2021-03-10", "2021-03-15", lookback_bars=4))
        assert format_time(bars.index[0]) == "2021-03-06"
        assert format_time(bars.index[-1]) == "2021-03-14"
        expected = r"No bars for MYDATA 2022-01-01..2022-02-01 \(1d\).*covers 2021-03-01..2021-04-29"
        with pytest.raises(DataError, match=expected):
            load_bars(file_request(path, "2022-01-01", "2022-02-01"))

    def test_lowercase_columns_time_column_and_no_volume(self, tmp_path: Path) -> None:
        frame = sample_frame().reset_index()
        frame.columns = [c.lower() for c in frame.columns]
        frame = frame.rename(columns={"date": "timestamp"}).drop(columns=["volume"])
        path = tmp_path / "lower.csv"
        frame.to_csv(path, index=False)
        bars = load_bars(file_request(path))
        assert len(bars) == 30
        assert not bars.volume.any()

    def test_tz_aware_times_are_converted_to_utc(self, tmp_path: Path) -> None:
        frame = sample_frame(10, start="2021-03-01 09:30", freq="h")
        frame.index = frame.index.tz_localize("America/New_York")
        path = tmp_path / "aware.csv"
        frame.to_csv(path)
        bars = load_bars(file_request(path, "2021-03-01", "2021-03-02", interval="1h"))
        assert format_time(bars.index[0]) == "2021-03-01T14:30:00Z"
        assert bars.interval == "1h"

    def test_mixed_offsets_are_converted_to_utc(self, tmp_path: Path) -> None:
        path = tmp_path / "mixed.csv"
        path.write_text(
            "datetime,open,high,low,close\n"
            "2021-03-13T10:00:00-05:00,1,2,0.5,1.5\n"
            "2021-03-15T10:00:00-04:00,1,2,0.5,1.5\n"
        )
        from quantlab.data.files import frame_to_arrays

        index = frame_to_arrays(pd.read_csv(path))["index"]  # the intraday rule: UTC instants
        assert [format_time(t) for t in index] == ["2021-03-13T15:00:00Z", "2021-03-15T14:00:00Z"]
        # daily bars keep their local calendar date (issue #16)
        bars = load_bars(file_request(path))
        assert [format_time(t) for t in bars.index] == ["2021-03-13", "2021-03-15"]

    def test_parquet_with_datetime_index(self, tmp_path: Path) -> None:
        frame = sample_frame()
        frame.index = frame.index.tz_localize("Europe/Berlin")
        path = tmp_path / "data.parquet"
        frame.to_parquet(path)
        bars = load_bars(file_request(path, "2021-02-01", "2021-05-01", interval="1d"))
        assert len(bars) == 30
        assert format_time(bars.index[0]) == "2021-03-01"  # daily: the local date (issue #16)

    def test_parquet_with_naive_date_column(self, tmp_path: Path) -> None:
        frame = sample_frame().reset_index().rename(columns=str.upper)
        path = tmp_path / "data.pq"
        frame.to_parquet(path, index=False)
        bars = load_bars(file_request(path))
        assert len(bars) == 30 and bars.index[0] == np.datetime64("2021-03-01")

    def test_csv_gz_and_unnamed_first_column(self, tmp_path: Path) -> None:
        frame = sample_frame()
        frame.index.name = None
        path = tmp_path / "data.CSV.GZ"
        frame.to_csv(path, compression="gzip")
        assert len(load_bars(file_request(path))) == 30

    def test_epoch_milliseconds(self, tmp_path: Path) -> None:
        frame = sample_frame(5)
        table = frame.reset_index(drop=True)
        table.insert(0, "time", frame.index.as_unit("ms").asi8)
        path = tmp_path / "epoch.csv"
        table.to_csv(path, index=False)
        bars = load_bars(file_request(path))
        np.testing.assert_array_equal(bars.index, frame.index.to_numpy(dtype="datetime64[ns]"))

    def test_yfinance_multi_header_csv(self, tmp_path: Path) -> None:
        frame = sample_frame(8).drop(columns=["Adj Close"])
        frame.columns = pd.MultiIndex.from_product([frame.columns, ["AAPL"]], names=["Price", "Ticker"])
        path = tmp_path / "yf.csv"
        frame.to_csv(path)
        assert path.read_text().startswith("Price,")
        bars = load_bars(file_request(path))
        assert len(bars) == 8
        np.testing.assert_allclose(bars.close, frame[("Close", "AAPL")].to_numpy())

    def test_roundtrip_of_write_bars_file(self, tmp_path: Path) -> None:
        original = synthetic_bars(40, start="2021-03-01", ticker="MYDATA")
        path = tmp_path / "ours.parquet"
        write_bars(original, path)
        bars = load_bars(file_request(path, "2021-03-01", "2022-01-01"))
        assert bars.fingerprint() == original.fingerprint() and bars.source == "file"

    def test_auto_with_data_path_reads_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "data.csv"
        sample_frame().to_csv(path)
        bars = load_bars(DataRequest("SPX", "2021-03-01", "2021-04-01", data_path=str(path)))
        assert bars.source == "file" and bars.ticker == "SPX"

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.csv"
        with pytest.raises(DataError) as info:
            load_bars(file_request(path))
        assert str(path) in str(info.value) and "file not found" in str(info.value)
        assert "MYDATA" in str(info.value) and "2021-03-01..2021-04-01" in str(info.value)

    def test_unsupported_extension_and_directory(self, tmp_path: Path) -> None:
        with pytest.raises(DataError, match="unsupported file type"):
            load_bars(file_request(tmp_path / "data.xlsx"))
        folder = tmp_path / "dir.csv"
        folder.mkdir()
        with pytest.raises(DataError, match="not a regular file"):
            load_bars(file_request(folder))

    def test_missing_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "few.csv"
        sample_frame().drop(columns=["Low", "High"]).to_csv(path)
        with pytest.raises(DataError, match=r"missing column\(s\) high, low"):
            load_bars(file_request(path))

    def test_ambiguous_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "dup.csv"
        path.write_text("date,open,high,low,close,Close\n2021-03-01,1,2,0.5,1.5,1.5\n")
        with pytest.raises(DataError, match="more than once"):
            load_bars(file_request(path))

    def test_errors_never_echo_contents(self, tmp_path: Path) -> None:
        secret = "hunter2-SECRET-PASSWORD"
        cases = {
            "a.csv": f"root:{secret}:0:0\nline two {secret}\n",
            "b.csv": f"date,open,high,low,close\n{secret},1,2,0.5,1.5\n",
            "c.csv": f"date,open,high,low,close\n2021-03-01,{secret},2,0.5,1.5\n",
            "d.parquet": secret,
            "e.csv.gz": secret,
        }
        for name, content in cases.items():
            path = tmp_path / name
            path.write_text(content)
            with pytest.raises(DataError) as info:
                load_bars(file_request(path))
            assert "SECRET" not in str(info.value), name
            assert str(path) in str(info.value)

    def test_bad_rows_are_not_repaired(self, tmp_path: Path) -> None:
        frame = sample_frame()
        unsorted = frame.iloc[[1, 0, *range(2, 30)]]
        path = tmp_path / "unsorted.csv"
        unsorted.to_csv(path)
        with pytest.raises(DataError, match="MYDATA.*not sorted"):
            load_bars(file_request(path))
        broken = frame.copy()
        broken.iloc[3, broken.columns.get_loc("High")] = broken["Close"].iloc[3] - 1
        broken.to_csv(path)
        with pytest.raises(DataError, match=r"high < max\(open, close\)"):
            load_bars(file_request(path))


# --------------------------------------------------------------------------- yfinance (fake module)


class FakeYFinance(types.ModuleType):
    """Stands in for the yfinance package: records calls, returns yfinance-shaped frames."""

    def __init__(self, result: pd.DataFrame | Exception | None) -> None:
        super().__init__("yfinance")
        self.result = result
        self.calls: list[dict] = []
        self.config = types.SimpleNamespace(debug=types.SimpleNamespace(hide_exceptions=True))
        self.cache_locations: list[str] = []

    def set_tz_cache_location(self, path: str) -> None:
        self.cache_locations.append(path)

    def Ticker(self, ticker: str):  # noqa: N802  (yfinance's name)
        fake = self

        class _Ticker:
            def history(self, start=None, end=None, interval="1d", **kwargs):
                fake.calls.append({"ticker": ticker, "start": start, "end": end, "interval": interval,
                                   "hide_exceptions": fake.config.debug.hide_exceptions, **kwargs})
                if isinstance(fake.result, Exception):
                    raise fake.result
                return fake.result

        return _Ticker()


def yahoo_frame(ticker: str = "ETH-USD", start: str = "2022-12-01", n: int = 400) -> pd.DataFrame:
    frame = sample_frame(n, start=start).drop(columns=["Adj Close"])
    frame = frame[["Close", "High", "Low", "Open", "Volume"]]
    frame.columns = pd.MultiIndex.from_product([frame.columns, [ticker]], names=["Price", "Ticker"])
    return frame


@pytest.fixture
def fake_yf(monkeypatch: pytest.MonkeyPatch) -> FakeYFinance:
    fake = FakeYFinance(yahoo_frame())
    monkeypatch.setitem(sys.modules, "yfinance", fake)
    return fake


class TestYFinance:
    def request(self, tmp_path: Path, **kw) -> DataRequest:
        base = {"ticker": "ETH-USD", "start": "2023-01-01", "end": "2024-01-01",
                "source": "yfinance", "cache_dir": str(tmp_path / "cache")}
        base.update(kw)
        return DataRequest(**base)

    def test_download_is_cached_then_reused(self, tmp_path: Path, fake_yf: FakeYFinance) -> None:
        bars = load_bars(self.request(tmp_path))
        assert len(fake_yf.calls) == 1
        call = fake_yf.calls[0]
        assert call["ticker"] == "ETH-USD" and call["interval"] == "1d"
        assert (call["start"], call["end"]) == ("2023-01-01", "2024-01-01")
        # raw prices + Adj Close, adjusted by quantlab.data.adjust (issue #16)
        assert call["auto_adjust"] is False and call["actions"] is False
        assert call["hide_exceptions"] is False  # errors surface as exceptions, not log lines
        assert fake_yf.cache_locations == [str(tmp_path / "cache" / "yfinance" / "vendor")]
        assert bars.source == "yfinance" and bars.ticker == "ETH-USD"
        assert format_time(bars.index[0]) == "2023-01-01" and format_time(bars.index[-1]) == "2023-12-31"
        cached = tmp_path / "cache" / "yfinance" / "ETH-USD_1d_2023-01-01_2024-01-01.parquet"
        assert cached.is_file()
        assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name, "vendor"]

        again = load_bars(self.request(tmp_path))
        auto = load_bars(self.request(tmp_path, source="auto"))
        assert len(fake_yf.calls) == 1  # both served from the cache
        assert again.fingerprint() == bars.fingerprint() == auto.fingerprint()

    def test_without_cache_dir_nothing_is_written(self, tmp_path: Path, fake_yf: FakeYFinance) -> None:
        load_bars(self.request(tmp_path, cache_dir=None))
        load_bars(self.request(tmp_path, cache_dir=None))
        assert len(fake_yf.calls) == 2 and not fake_yf.cache_locations
        assert not (tmp_path / "cache").exists()

    def test_corrupt_cache_is_rebuilt(self, tmp_path: Path, fake_yf: FakeYFinance) -> None:
        first = load_bars(self.request(tmp_path))
        cached = cache_path(tmp_path / "cache", "ETH-USD", "1d",
                            np.datetime64("2023-01-01", "ns"), np.datetime64("2024-01-01", "ns"))
        cached.write_bytes(b"garbage")
        again = load_bars(self.request(tmp_path))
        assert len(fake_yf.calls) == 2
        assert again.fingerprint() == first.fingerprint()
        rebuilt = validate_bars(read_bars(cached), context="rebuilt cache")
        assert len(rebuilt) == 400  # the whole download is cached; the selection is made on load

    def test_download_exception(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        fake = FakeYFinance(RuntimeError("HTTP 429\nToo Many Requests"))
        monkeypatch.setitem(sys.modules, "yfinance", fake)
        with pytest.raises(DataError) as info:
            load_bars(self.request(tmp_path))
        message = str(info.value)
        assert message == (
            "Data for ETH-USD 2023-01-01..2024-01-01 (1d) could not be downloaded: "
            "RuntimeError: HTTP 429 Too Many Requests"
        )
        assert not list((tmp_path / "cache").rglob("*.parquet"))

    @pytest.mark.parametrize("error", [ConnectionError("refused"), TimeoutError("slow")], ids=["conn", "timeout"])
    def test_offline_names_bundled_tickers(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error) -> None:
        from quantlab.data.yahoo import is_offline_error

        wrapped = RuntimeError("chart request failed")
        wrapped.__cause__ = error
        monkeypatch.setitem(sys.modules, "yfinance", FakeYFinance(wrapped))
        with pytest.raises(DataError) as info:
            load_bars(self.request(tmp_path))
        message = str(info.value)
        assert is_offline_error(wrapped) and not is_offline_error(RuntimeError("HTTP 404"))
        assert "\n" not in message
        assert message.startswith("Data for ETH-USD 2023-01-01..2024-01-01 (1d) could not be downloaded: "
                                  "Yahoo Finance could not be reached (RuntimeError: chart request failed); "
                                  "offline, use a bundled ticker (SPX or ^GSPC = S&P 500; NASDAQ or ^IXIC")

    @pytest.mark.parametrize("result", [None, pd.DataFrame()], ids=["none", "empty"])
    def test_empty_download(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, result) -> None:
        monkeypatch.setitem(sys.modules, "yfinance", FakeYFinance(result))
        with pytest.raises(DataError, match="ETH-USD.*could not be downloaded: yfinance returned no rows"):
            load_bars(self.request(tmp_path))

    def test_not_installed(self, tmp_path: Path) -> None:
        with pytest.raises(DataError, match="could not be downloaded: the yfinance package is not installed"):
            load_bars(self.request(tmp_path))

    def test_lookback_downloads_earlier(self, tmp_path: Path, fake_yf: FakeYFinance) -> None:
        bars = load_bars(self.request(tmp_path, lookback_bars=10))
        start = fake_yf.calls[0]["start"]
        assert start < "2023-01-01"
        assert len(bars) == 365 + 10
        assert format_time(bars.index[10]) == "2023-01-01"
        name = f"ETH-USD_1d_{start}_2024-01-01.parquet"
        assert (tmp_path / "cache" / "yfinance" / name).is_file()

    def test_download_window_margins(self) -> None:
        from quantlab.data.timeutil import parse_interval

        start, end = np.datetime64("2023-06-01", "ns"), np.datetime64("2024-01-01", "ns")
        stock_start, _ = download_window(start, end, parse_interval("1d"), 100, crypto=False)
        crypto_start, _ = download_window(start, end, parse_interval("1d"), 100, crypto=True)
        # 100 trading days need ~140 calendar days; 100 crypto days need 100
        assert (start - stock_start) >= np.timedelta64(150, "D")
        assert np.timedelta64(100, "D") <= (start - crypto_start) < (start - stock_start)
        assert download_window(start, end, parse_interval("1d"), 0, crypto=False) == (start, end)

    def test_vendor_envelope_is_repaired_and_empty_rows_dropped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        frame = yahoo_frame()
        frame.iloc[5, frame.columns.get_loc(("High", "ETH-USD"))] = frame.iloc[5][("Close", "ETH-USD")] - 1e-9
        frame.iloc[6, :4] = np.nan  # placeholder row: all prices missing
        frame.iloc[7, frame.columns.get_loc(("Volume", "ETH-USD"))] = np.nan
        monkeypatch.setitem(sys.modules, "yfinance", FakeYFinance(frame))
        bars = load_bars(self.request(tmp_path, start="2022-12-01"))
        in_range = int((frame.index < "2024-01-01").sum())
        assert len(bars) == in_range - 1
        validate_bars(bars, context="repaired")
        assert bars.volume[6] == 0.0  # original row 7 moved up by the dropped row

    def test_vendor_data_that_cannot_be_repaired_fails(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        frame = yahoo_frame()
        frame.iloc[5, frame.columns.get_loc(("Close", "ETH-USD"))] = -3.0
        monkeypatch.setitem(sys.modules, "yfinance", FakeYFinance(frame))
        with pytest.raises(DataError, match=r"ETH-USD.*close <= 0 in 1 row \(first at 2022-12-06\)"):
            load_bars(self.request(tmp_path, start="2022-12-01"))
        assert not list((tmp_path / "cache").rglob("*.parquet"))

    def test_tz_aware_intraday_frame(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        frame = yahoo_frame("AAPL", n=20)
        frame.index = pd.date_range("2023-03-01 09:30", periods=20, freq="h", tz="America/New_York", name="Datetime")
        monkeypatch.setitem(sys.modules, "yfinance", FakeYFinance(frame))
        bars = load_bars(DataRequest("AAPL", "2023-03-01", "2023-03-02", interval="1h",
                                     source="yfinance", cache_dir=str(tmp_path)))
        assert format_time(bars.index[0]) == "2023-03-01T14:30:00Z"

    def test_auto_prefers_sample_then_cache(self, tmp_path: Path, fake_yf: FakeYFinance) -> None:
        sample = load_bars(DataRequest("^GSPC", "2017-01-01", "2018-01-01", cache_dir=str(tmp_path)))
        assert sample.source == "sample" and not fake_yf.calls
        downloaded = load_bars(DataRequest("ETH-USD", "2023-01-01", "2024-01-01", cache_dir=str(tmp_path)))
        assert downloaded.source == "yfinance" and len(fake_yf.calls) == 1


# --------------------------------------------------------------------------- synthetic


class TestSynthetic:
    def test_deterministic_and_valid(self) -> None:
        first, second = synthetic_bars(2_000, seed=11), synthetic_bars(2_000, seed=11)
        assert first.fingerprint() == second.fingerprint()
        assert synthetic_bars(2_000, seed=12).fingerprint() != first.fingerprint()
        assert synthetic_bars(2_000, seed=11, ticker="OTHER").fingerprint() != first.fingerprint()
        validate_bars(first, context="synthetic")
        assert first.source == "synthetic" and first.ticker == "SYNTH"
        assert np.all(first.volume == np.round(first.volume)) and np.all(first.volume > 0)

    def test_weekday_calendar_for_stocks_and_every_day_for_crypto(self) -> None:
        stock = synthetic_bars(30, start="2000-01-01")
        weekdays = stock.index.astype("datetime64[D]").astype(np.int64)
        assert np.all((weekdays + 3) % 7 < 5)  # 1970-01-01 was a Thursday
        assert stock.index[0] == np.datetime64("2000-01-03")
        crypto = synthetic_bars(30, start="2000-01-01", ticker="BTC-USD")
        assert np.all(np.diff(crypto.index) == np.timedelta64(1, "D"))
        assert crypto.index[0] == np.datetime64("2000-01-01")

    def test_request_is_deterministic_prefix_stable_and_lookback_independent(self) -> None:
        def load(end: str, lookback: int = 0) -> Bars:
            return load_bars(DataRequest("ETH-USD", "2023-01-01", end, source="synthetic",
                                         seed=5, lookback_bars=lookback))

        year = load("2024-01-01")
        assert len(year) == 365 and year.source == "synthetic"
        assert load("2024-01-01").fingerprint() == year.fingerprint()
        half = load("2023-07-01")
        assert half.fingerprint() == year.slice(0, len(half)).fingerprint()
        warm = load("2024-01-01", lookback=20)
        assert len(warm) == 385 and format_time(warm.index[20]) == "2023-01-01"
        assert warm.slice(20, len(warm)).fingerprint() == year.fingerprint()
        assert warm.close[19] == 100.0 and year.index[0] - warm.index[19] == np.timedelta64(1, "D")
        validate_bars(warm, context="warm")
        same_start = synthetic_bars(100, seed=5, start="2023-01-01", ticker="ETH-USD")
        assert same_start.fingerprint() == year.slice(0, 100).fingerprint()

    @pytest.mark.parametrize(
        ("interval", "expected"),
        [("1h", 24 * 31), ("15m", 4 * 24 * 31), ("1wk", 5), ("1mo", 1), ("1d", 23)],
    )
    def test_intervals(self, interval: str, expected: int) -> None:
        bars = load_bars(DataRequest("AAPL", "2023-03-01", "2023-04-01", interval=interval, source="synthetic"))
        assert len(bars) == expected and bars.interval == interval
        validate_bars(bars, context=interval)

    def test_empty_window(self) -> None:
        with pytest.raises(DataError, match=r"No bars for AAPL 2023-03-04..2023-03-06 \(1d\) from source synthetic"):
            load_bars(DataRequest("AAPL", "2023-03-04", "2023-03-06", source="synthetic"))

    def test_one_million_bars(self) -> None:
        # its speed is a benchmark's business (benchmarks/bench_run.py), not a timed assertion here
        bars = synthetic_bars(1_000_000, interval="1m")
        assert len(bars) == 1_000_000
        validate_bars(bars, context="1M")

    def test_too_many_daily_bars_is_a_clear_error(self) -> None:
        with pytest.raises(ConfigError, match="datetime64.*1h or 1m"):
            synthetic_bars(1_000_000)

    @pytest.mark.parametrize("n", [0, -5, 2.5, True])
    def test_bad_counts(self, n) -> None:
        with pytest.raises(ConfigError):
            synthetic_bars(n)


class TestFileEdgeCases:
    def test_source_name_is_case_insensitive(self, tmp_path: Path) -> None:
        path = tmp_path / "data.csv"
        sample_frame().to_csv(path)
        bars = load_bars(DataRequest("MYDATA", "2021-03-01", "2021-04-01", source=" File ", data_path=str(path)))
        assert bars.source == "file"

    def test_out_of_range_dates_are_a_data_error(self, tmp_path: Path) -> None:
        path = tmp_path / "far.csv"
        path.write_text("date,open,high,low,close\n3000-01-01,1,2,0.5,1.5\n")
        with pytest.raises(DataError, match="could not be parsed as dates"):
            load_bars(file_request(path))

    def test_missing_times_are_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "nat.csv"
        path.write_text("date,open,high,low,close\n2021-03-01,1,2,0.5,1.5\n,1,2,0.5,1.5\n")
        with pytest.raises(DataError, match="NaT"):
            load_bars(file_request(path))

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.csv"
        path.write_text("date,open,high,low,close\n")
        with pytest.raises(DataError, match="no rows"):
            load_bars(file_request(path))

    def test_irrelevant_duplicate_headers_are_ignored(self, tmp_path: Path) -> None:
        path = tmp_path / "extra.csv"
        path.write_text("date,open,high,low,close,Note,note\n2021-03-01,1,2,0.5,1.5,a,b\n")
        assert len(load_bars(file_request(path))) == 1


def test_parquet_fast_path_equals_the_pandas_path(tmp_path):
    """The pyarrow-only reader of simple Parquet files gives exactly what the pandas reader gives."""
    import pandas as pd

    from quantlab.data import files

    idx = pd.date_range("2020-01-01", periods=50, freq="D", tz="Europe/Paris", name="Timestamp")
    frame = pd.DataFrame({"Open": np.linspace(10, 20, 50), "High": np.linspace(11, 21, 50),
                          "Low": np.linspace(9, 19, 50), "Close": np.linspace(10.5, 20.5, 50),
                          "Volume": np.arange(50, dtype="int64")}, index=idx)
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    fast = files._parquet_fast(path)
    assert fast is not None
    slow = files.frame_to_arrays(pd.read_parquet(path))
    for key in ("index", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(fast[key], slow[key])
    frame.reset_index(drop=True).to_parquet(tmp_path / "no_time.parquet")
    assert files._parquet_fast(tmp_path / "no_time.parquet") is None  # falls back to pandas
