"""Data layer core: bars container, validation, sample source, request handling, Parquet store.

Sources with more moving parts (user files, yfinance with a fake module, synthetic) are in
test_data_sources.py; property-based tests in test_data_properties.py.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from quantlab.data import (
    SAMPLE_TICKERS,
    Bars,
    DataRequest,
    is_crypto,
    load_bars,
    read_bars,
    resolve_sample_ticker,
    validate_bars,
    write_bars,
)
from quantlab.data import store as store_module
from quantlab.data.timeutil import format_time, parse_interval, parse_time
from quantlab.errors import ConfigError, DataError

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def _no_yfinance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import yfinance`` fail, so no test can ever reach the network."""
    monkeypatch.setitem(sys.modules, "yfinance", None)


def arch_csv_rows(name: str) -> list[dict[str, str]]:
    """Rows of an arch sample file, read independently of the code under test."""
    spec = importlib.util.find_spec("arch")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0], "data", name, f"{name}.csv.gz")
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def make_bars(n: int = 5, ticker: str = "TEST") -> Bars:
    index = np.datetime64("2024-01-01", "ns") + np.arange(n) * np.timedelta64(1, "D")
    close = 100.0 + np.arange(n, dtype=float)
    return Bars(
        index=index,
        open=close - 0.5,
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=np.full(n, 1000.0),
        ticker=ticker,
        interval="1d",
        source="test",
    )


def replace(bars: Bars, **arrays: np.ndarray) -> Bars:
    fields = {name: getattr(bars, name) for name in ("index", "open", "high", "low", "close", "volume")}
    fields.update(arrays)
    return Bars(**fields, ticker=bars.ticker, interval=bars.interval, source=bars.source)


# --------------------------------------------------------------------------- Bars


class TestBars:
    def test_dtypes_are_normalised(self) -> None:
        bars = Bars(
            index=np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]"),
            open=[1, 2], high=[1, 2], low=[1, 2], close=[1, 2], volume=[0, 0],
            ticker="X", interval="1d", source="test",
        )
        assert bars.index.dtype == np.dtype("datetime64[ns]")
        assert all(getattr(bars, f).dtype == np.float64 for f in ("open", "high", "low", "close", "volume"))
        assert len(bars) == 2

    def test_rejects_non_datetime_index_and_length_mismatch(self) -> None:
        with pytest.raises(TypeError):
            Bars(index=np.arange(3), open=np.ones(3), high=np.ones(3), low=np.ones(3),
                 close=np.ones(3), volume=np.ones(3), ticker="X", interval="1d", source="t")
        bars = make_bars(3)
        with pytest.raises(ValueError, match="close"):
            replace(bars, close=np.ones(2))
        with pytest.raises(ValueError, match="outside the datetime64"):  # no silent wrap-around
            replace(bars, index=np.array(["2024-01-01", "2024-01-02", "3000-01-01"], dtype="datetime64[D]"))

    def test_slice_and_index_of(self) -> None:
        bars = make_bars(10)
        part = bars.slice(2, 5)
        assert len(part) == 3 and part.ticker == "TEST" and part.source == "test"
        assert part.index[0] == np.datetime64("2024-01-03")
        assert bars.index_of("2024-01-03") == 2
        assert bars.index_of("2024-01-03T12:00") == 3  # first bar at or after
        assert bars.index_of(np.datetime64("2023-12-01")) == 0
        assert bars.index_of("2030-01-01") == len(bars)
        assert bars.index_of("2024-01-03T01:00:00+02:00") == 2  # 2024-01-02T23:00Z

    def test_to_frame(self) -> None:
        import pandas as pd

        bars = make_bars(4)
        frame = bars.to_frame()
        assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
        assert frame.index.name == "timestamp"
        assert str(frame.index.tz) == "UTC"
        assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
        np.testing.assert_array_equal(frame["close"].to_numpy(), bars.close)
        assert frame.attrs["ticker"] == "TEST"
        frame.iloc[0, 0] = -1.0  # the frame is a copy
        assert bars.open[0] == 99.5

    def test_from_frame_round_trip(self) -> None:
        bars = make_bars(6)
        again = Bars.from_frame(bars.to_frame(), ticker="TEST", interval="1d", source="test")
        assert again.fingerprint() == bars.fingerprint()

    def test_fingerprint(self) -> None:
        bars = make_bars(5)
        assert bars.fingerprint() == make_bars(5).fingerprint()
        assert len(bars.fingerprint()) == 64
        assert bars.fingerprint() != make_bars(5, ticker="OTHER").fingerprint()
        assert bars.fingerprint() != replace(bars, close=bars.close + np.array([0, 0, 0, 0, 1e-9])).fingerprint()
        relabelled = Bars(**{n: getattr(bars, n) for n in ("index", "open", "high", "low", "close", "volume")},
                          ticker="TEST", interval="1h", source="test")
        assert bars.fingerprint() != relabelled.fingerprint()

    def test_fingerprint_is_stable_across_processes(self) -> None:
        code = (
            "import numpy as np; from quantlab.data import synthetic_bars;"
            "print(synthetic_bars(300, seed=3).fingerprint())"
        )
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        from quantlab.data import synthetic_bars

        assert out.stdout.strip() == synthetic_bars(300, seed=3).fingerprint()

    def test_repr_is_short(self) -> None:
        assert repr(make_bars(3)) == (
            "Bars(ticker='TEST', interval='1d', source='test', n=3, 2024-01-01..2024-01-03)"
        )


# --------------------------------------------------------------------------- validation


class TestValidation:
    def test_valid_bars_pass_unchanged(self) -> None:
        bars = make_bars(5)
        assert validate_bars(bars, context="unit test") is bars

    @pytest.mark.parametrize(
        ("mutate", "reason"),
        [
            (lambda b: {"index": b.index[[0, 2, 1, 3, 4]]}, "not sorted"),
            (lambda b: {"index": b.index[[0, 1, 1, 3, 4]]}, "duplicate timestamps"),
            (lambda b: {"index": np.where(np.arange(5) == 2, np.datetime64("NaT"), b.index)}, "NaT"),
            (lambda b: {"close": np.where(np.arange(5) == 3, np.nan, b.close)}, "close is NaN"),
            (lambda b: {"open": np.where(np.arange(5) == 3, np.inf, b.open)}, "open is NaN or infinite"),
            (lambda b: {"high": b.close - 0.01}, "high < max(open, close)"),
            (lambda b: {"low": b.open + 0.01}, "low > min(open, close)"),
            (lambda b: {"low": np.where(np.arange(5) == 1, 0.0, b.low)}, "low <= 0"),
            (lambda b: {"open": -b.open, "low": -b.high}, "open <= 0"),
            (lambda b: {"volume": np.where(np.arange(5) == 4, -1.0, b.volume)}, "volume < 0"),
            (lambda b: {"volume": np.where(np.arange(5) == 4, np.nan, b.volume)}, "volume is NaN"),
        ],
        ids=["unsorted", "duplicate", "nat", "nan-close", "inf-open", "high-below-close",
             "low-above-open", "zero-price", "negative-price", "negative-volume", "nan-volume"],
    )
    def test_rejects_each_bad_case(self, mutate, reason: str) -> None:
        bars = make_bars(5, ticker="BAD-TICKER")
        bad = replace(bars, **mutate(bars))
        with pytest.raises(DataError) as info:
            validate_bars(bad, context="2024-01-01..2024-02-01 (1d) from source test")
        message = str(info.value)
        assert "BAD-TICKER" in message
        assert reason in message
        assert "2024-01-01..2024-02-01" in message
        assert "\n" not in message
        assert info.value.exit_code == 3

    def test_reports_count_and_first_offender(self) -> None:
        bars = make_bars(5)
        bad = replace(bars, high=np.where(np.arange(5) >= 3, bars.close - 1, bars.high))
        with pytest.raises(DataError, match=r"in 2 rows \(first at 2024-01-04\)"):
            validate_bars(bad, context="x")

    def test_empty_bars_rejected(self) -> None:
        with pytest.raises(DataError, match="no bars"):
            validate_bars(make_bars(3).slice(0, 0), context="TEST somewhere")

    def test_zero_volume_and_flat_bars_are_valid(self) -> None:
        bars = make_bars(3)
        flat = replace(bars, open=bars.close, high=bars.close, low=bars.close, volume=np.zeros(3))
        validate_bars(flat, context="flat")


# --------------------------------------------------------------------------- tickers and time


class TestTickersAndTime:
    @pytest.mark.parametrize(
        "alias", ["^GSPC", "GSPC", "spx", "SP500", "S&P500", "s&p 500", " S&P  500 ", "ES", "^gspc"]
    )
    def test_sp500_aliases(self, alias: str) -> None:
        assert resolve_sample_ticker(alias) == "^GSPC"

    @pytest.mark.parametrize("alias", ["^IXIC", "IXIC", "nasdaq", "COMP"])
    def test_nasdaq_aliases(self, alias: str) -> None:
        assert resolve_sample_ticker(alias) == "^IXIC"

    @pytest.mark.parametrize("ticker", ["NDX", "NFLX", "ETH-USD", "", "SPY"])
    def test_non_sample_tickers(self, ticker: str) -> None:
        assert resolve_sample_ticker(ticker) is None

    def test_sample_ticker_table_is_consistent(self) -> None:
        assert set(SAMPLE_TICKERS.values()) == {"^GSPC", "^IXIC", "AAPL", "IBM", "MSFT", "GOOG"}
        assert all(resolve_sample_ticker(alias) == canonical for alias, canonical in SAMPLE_TICKERS.items())

    @pytest.mark.parametrize("ticker", ["ETH-USD", "BTC-USD", "btc-usd", "SOL-USDT", "ETH-BTC",
                                        "BTC-EUR", "ETH/USDT", "BTCUSDT", "BTC"])
    def test_crypto(self, ticker: str) -> None:
        assert is_crypto(ticker)

    @pytest.mark.parametrize("ticker", ["AAPL", "^GSPC", "BRK-B", "EURUSD=X", "ES=F", "VOD.L", "USDT", "SPY"])
    def test_not_crypto(self, ticker: str) -> None:
        # bare "USDT" is a stablecoin, so it *is* crypto; everything else here is not
        assert is_crypto(ticker) is (ticker == "USDT")

    def test_parse_time_forms(self) -> None:
        day = np.datetime64("2023-01-02T00:00", "ns")
        assert parse_time("2023-01-02") == day
        assert parse_time(date(2023, 1, 2)) == day
        assert parse_time(datetime(2023, 1, 2)) == day
        assert parse_time("2023-01-02T05:30:00+05:30") == day
        assert parse_time("2023-01-02T00:00:00Z") == day
        assert parse_time(np.datetime64("2023-01-02")) == day

    @pytest.mark.parametrize("value", ["2023-13-01", "yesterday", "", "2023/01/02", 20230102, "3000-01-01"])
    def test_parse_time_rejects(self, value: object) -> None:
        with pytest.raises(ConfigError) as info:
            parse_time(value, "start")
        assert f"'{value}'" in str(info.value) and "start" in str(info.value)

    def test_format_time(self) -> None:
        assert format_time(np.datetime64("2017-01-03")) == "2017-01-03"
        assert format_time(np.datetime64("2017-01-03T14:30")) == "2017-01-03T14:30:00Z"

    @pytest.mark.parametrize("text", ["1d", "1h", "15m", "1wk", "1mo", "90m", "5d", "3mo"])
    def test_intervals(self, text: str) -> None:
        assert parse_interval(text).text == text

    @pytest.mark.parametrize("text", ["1D", "d", "0d", "1y", "1 d", "", None, "-1d"])
    def test_bad_intervals(self, text: object) -> None:
        with pytest.raises(ConfigError, match="interval"):
            parse_interval(text)


# --------------------------------------------------------------------------- sample source


class TestSample:
    def test_sp500_2017_matches_the_real_file(self) -> None:
        rows = arch_csv_rows("sp500")
        expected = [r for r in rows if r["Date"].endswith("/2017")]
        bars = load_bars(DataRequest("SPX", "2017-01-01", "2018-01-01", source="sample"))
        assert bars.ticker == "^GSPC" and bars.source == "sample" and bars.interval == "1d"
        assert len(bars) == 251 == len(expected)
        assert expected[0]["Date"] == "1/3/2017"
        assert bars.index[0] == np.datetime64("2017-01-03")
        assert bars.close[0] == float(expected[0]["Close"])
        assert bars.open[-1] == float(expected[-1]["Open"])
        assert bars.volume[10] == float(expected[10]["Volume"])
        assert bars.index[-1] == np.datetime64("2017-12-29")

    def test_nasdaq_full_file_parsed(self) -> None:
        rows = arch_csv_rows("nasdaq")
        bars = load_bars(DataRequest("^IXIC", "1999-01-01", "2019-01-01", source="sample"))
        assert len(bars) == len(rows)
        np.testing.assert_array_equal(bars.high, np.array([float(r["High"]) for r in rows]))
        assert format_time(bars.index[0]) == "1999-01-04" and format_time(bars.index[-1]) == "2018-12-31"

    def test_lookback_includes_earlier_bars(self) -> None:
        plain = load_bars(DataRequest("^GSPC", "2017-01-01", "2018-01-01", source="sample"))
        warm = load_bars(DataRequest("^GSPC", "2017-01-01", "2018-01-01", source="sample", lookback_bars=30))
        assert len(warm) == len(plain) + 30
        assert warm.index[30] == plain.index[0]
        assert warm.index[29] == np.datetime64("2016-12-30")  # the last 2016 session
        np.testing.assert_array_equal(warm.close[30:], plain.close)

    def test_lookback_is_clipped_at_the_start_of_the_data(self) -> None:
        bars = load_bars(DataRequest("^GSPC", "1999-01-01", "1999-02-01", source="sample", lookback_bars=100))
        assert bars.index[0] == np.datetime64("1999-01-04")

    def test_end_is_exclusive(self) -> None:
        bars = load_bars(DataRequest("^GSPC", "2017-01-03", "2017-01-05", source="sample"))
        assert [format_time(t) for t in bars.index] == ["2017-01-03", "2017-01-04"]
        one = load_bars(DataRequest("^GSPC", "2017-01-03", "2017-01-04", source="sample"))
        assert len(one) == 1

    def test_out_of_range_message(self) -> None:
        with pytest.raises(DataError) as info:
            load_bars(DataRequest("^GSPC", "2030-01-01", "2030-02-01", source="sample"))
        assert str(info.value) == (
            "No bars for ^GSPC 2030-01-01..2030-02-01 (1d) from source sample: "
            "the sample data covers 1999-01-04..2018-12-31"
        )

    def test_partly_covered_range_is_refused(self) -> None:
        with pytest.raises(DataError, match=r"SPX \(\^GSPC\) 2018-06-01..2019-06-01.*only"):
            load_bars(DataRequest("SPX", "2018-06-01", "2019-06-01", source="sample"))

    def test_weekend_only_range_is_empty(self) -> None:
        with pytest.raises(DataError, match="No bars for"):
            load_bars(DataRequest("^GSPC", "2017-01-07", "2017-01-09", source="sample"))

    def test_only_daily_interval(self) -> None:
        with pytest.raises(DataError, match="daily only"):
            load_bars(DataRequest("^GSPC", "2017-01-01", "2018-01-01", interval="1h", source="sample"))

    def test_unknown_sample_ticker(self) -> None:
        with pytest.raises(DataError, match="NFLX.*no bundled sample"):
            load_bars(DataRequest("NFLX", "2017-01-01", "2018-01-01", source="sample"))

    def test_returned_arrays_are_private_copies(self) -> None:
        request = DataRequest("^GSPC", "2017-01-01", "2018-01-01", source="sample")
        first = load_bars(request)
        first.close[:] = -1.0
        assert load_bars(request).close[0] > 0

    def test_auto_uses_the_sample_for_aliases(self) -> None:
        bars = load_bars(DataRequest("sp500", "2010-01-01", "2010-02-01"))
        assert bars.source == "sample" and bars.ticker == "^GSPC"

    def test_auto_outside_the_sample_falls_back_to_yfinance(self) -> None:
        with pytest.raises(DataError) as info:
            load_bars(DataRequest("SPX", "2020-01-01", "2020-02-01"))
        message = str(info.value)
        assert "could not be downloaded: the yfinance package is not installed" in message
        assert "1999-01-04..2018-12-31" in message

    def test_import_and_sample_load_stay_light(self) -> None:
        code = (
            "import sys\n"
            "import quantlab.data as d\n"
            "r = d.DataRequest('^GSPC', '2017-01-01', '2018-01-01')\n"
            "d.load_bars(r)\n"
            "names = ('pandas', 'numba', 'arch', 'scipy', 'matplotlib', 'pyarrow')\n"
            "heavy = sorted(m for m in names if m in sys.modules)\n"
            "print(','.join(heavy) or '-')\n"
        )
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "-"  # its speed: benchmarks/bench_run.py (cold run)


# --------------------------------------------------------------------------- request handling


class TestRequests:
    def test_start_after_end(self) -> None:
        with pytest.raises(DataError, match=r"AAPL 2020-02-01..2020-01-01 \(1d\).*start must be before end"):
            load_bars(DataRequest("AAPL", "2020-02-01", "2020-01-01", source="synthetic"))
        with pytest.raises(DataError):
            load_bars(DataRequest("AAPL", "2020-01-01", "2020-01-01", source="synthetic"))

    def test_unknown_source(self) -> None:
        with pytest.raises(ConfigError, match="Unknown data source 'csv'"):
            load_bars(DataRequest("AAPL", "2020-01-01", "2020-02-01", source="csv"))

    def test_file_needs_data_path(self) -> None:
        with pytest.raises(ConfigError, match="data_path"):
            load_bars(DataRequest("AAPL", "2020-01-01", "2020-02-01", source="file"))

    def test_data_path_with_another_source(self) -> None:
        with pytest.raises(ConfigError, match="data_path"):
            load_bars(DataRequest("AAPL", "2020-01-01", "2020-02-01", source="synthetic", data_path="x.csv"))

    @pytest.mark.parametrize("field", ["start", "end"])
    def test_unparseable_dates_name_the_value(self, field: str) -> None:
        values = {"start": "2020-01-01", "end": "2020-02-01", field: "2020-02-30"}
        # one date-error wording across commands (issue 19.11)
        wording = rf"params\.{field} is not a valid date \(YYYY-MM-DD or ISO 8601\): '2020-02-30'"
        with pytest.raises(ConfigError, match=wording):
            load_bars(DataRequest("^GSPC", values["start"], values["end"]))

    def test_bad_interval_and_lookback(self) -> None:
        with pytest.raises(ConfigError, match="interval"):
            load_bars(DataRequest("^GSPC", "2017-01-01", "2018-01-01", interval="daily"))
        with pytest.raises(ConfigError, match="lookback_bars"):
            load_bars(DataRequest("^GSPC", "2017-01-01", "2018-01-01", lookback_bars=-1))

    def test_yaml_dates_are_accepted(self) -> None:
        bars = load_bars(DataRequest("^GSPC", date(2017, 1, 1), date(2018, 1, 1)))  # type: ignore[arg-type]
        assert len(bars) == 251

    def test_iso_datetimes(self) -> None:
        bars = load_bars(DataRequest("^GSPC", "2017-01-03T00:00:01Z", "2017-01-06T00:00:00+00:00", source="sample"))
        assert [format_time(t) for t in bars.index] == ["2017-01-04", "2017-01-05"]


# --------------------------------------------------------------------------- Parquet store


class TestStore:
    def test_round_trip_is_exact(self, tmp_path: Path) -> None:
        bars = load_bars(DataRequest("^IXIC", "2018-01-01", "2019-01-01", source="sample"))
        path = tmp_path / "nested" / "bars.parquet"
        write_bars(bars, path)
        again = read_bars(path)
        assert again.fingerprint() == bars.fingerprint()
        for name in ("index", "open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(again, name), getattr(bars, name))
        assert (again.ticker, again.interval, again.source) == ("^IXIC", "1d", "sample")
        assert sorted(os.listdir(path.parent)) == ["bars.parquet"]  # no temp file left

    def test_schema(self, tmp_path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "b.parquet"
        write_bars(make_bars(3), path)
        schema = pq.read_schema(path)
        assert schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
        assert all(schema.field(n).type == pa.float64() for n in ("open", "high", "low", "close", "volume"))
        assert schema.metadata[b"quantlab.ticker"] == b"TEST"
        assert schema.metadata[b"quantlab.interval"] == b"1d"
        assert schema.metadata[b"quantlab.source"] == b"test"

    def test_written_raw_and_read_back_into_the_tables_memory(self, tmp_path: Path) -> None:
        """Bars files are written without compression or column statistics (random floats:
        snappy saved little for twice the CPU), their columns not null (no definition levels);
        read_bars hands out the table's own memory, writable (numba's signature), sharing the
        written arrays while the table is remembered. A file of the earlier format (snappy,
        nullable columns) reads the same."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from quantlab.columnar import WRITE_OPTIONS, remembering

        bars = load_bars(DataRequest("SYN", "2020-01-01", "2020-02-01", interval="1h", source="synthetic"))
        path = tmp_path / "b.parquet"
        write_bars(bars, path)
        row_group = pq.ParquetFile(path).metadata.row_group(0)
        for i in range(row_group.num_columns):
            assert row_group.column(i).compression == "UNCOMPRESSED" and not row_group.column(i).is_stats_set
        assert not any(field.nullable for field in pq.read_schema(path))  # no definition levels to write
        again = read_bars(path)
        with remembering():
            write_bars(bars, path)
            kept = read_bars(path)
        earlier = pq.read_table(path)
        pq.write_table(earlier.cast(pa.schema([f.with_nullable(True) for f in earlier.schema],
                                              metadata=earlier.schema.metadata)), path, **WRITE_OPTIONS)
        assert pq.ParquetFile(path).metadata.row_group(0).column(1).compression == "SNAPPY"
        old = read_bars(path)
        assert again.fingerprint() == kept.fingerprint() == old.fingerprint() == bars.fingerprint()
        for name in ("index", "open", "high", "low", "close", "volume"):
            assert getattr(again, name).flags.writeable and getattr(kept, name).flags.writeable
            assert getattr(old, name).flags.writeable
            assert np.shares_memory(getattr(kept, name), getattr(bars, name))

    def test_pandas_reads_it_as_utc(self, tmp_path: Path) -> None:
        import pandas as pd

        path = tmp_path / "b.parquet"
        write_bars(make_bars(3), path)
        frame = pd.read_parquet(path)
        assert str(frame["timestamp"].dt.tz) == "UTC"

    def test_failed_write_keeps_the_old_file_and_leaves_no_temp(self, tmp_path: Path, monkeypatch) -> None:
        import pyarrow.parquet as pq

        path = tmp_path / "b.parquet"
        write_bars(make_bars(3), path)
        before = path.read_bytes()

        def broken(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(pq, "write_table", broken)
        with pytest.raises(OSError):
            write_bars(make_bars(5), path)
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == ["b.parquet"]

    def test_overwrite_replaces_content(self, tmp_path: Path) -> None:
        path = tmp_path / "b.parquet"
        write_bars(make_bars(3), path)
        write_bars(make_bars(7), path)
        assert len(read_bars(path)) == 7
        assert os.listdir(tmp_path) == ["b.parquet"]

    @pytest.mark.parametrize(
        "content", [b"", b"SECRET-TOKEN not parquet at all", b"PAR1" + b"\x00" * 64 + b"PAR1"],
        ids=["empty", "text", "fake-magic"],
    )
    def test_corrupt_file(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "bad.parquet"
        path.write_bytes(content)
        with pytest.raises(DataError) as info:
            read_bars(path)
        assert str(path) in str(info.value)
        assert "TOKEN" not in str(info.value)

    def test_truncated_file(self, tmp_path: Path) -> None:
        path = tmp_path / "b.parquet"
        write_bars(make_bars(50), path)
        path.write_bytes(path.read_bytes()[:-40])
        with pytest.raises(DataError, match="not a readable Parquet file"):
            read_bars(path)

    def test_missing_file_and_foreign_parquet(self, tmp_path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with pytest.raises(DataError, match="file not found"):
            read_bars(tmp_path / "none.parquet")
        foreign = tmp_path / "foreign.parquet"
        pq.write_table(pa.table({"a": [1, 2]}), foreign)
        with pytest.raises(DataError, match="not a QuantLab bars file"):
            read_bars(foreign)

    def test_store_module_never_imports_pandas(self) -> None:
        assert "pandas" not in store_module.__dict__
