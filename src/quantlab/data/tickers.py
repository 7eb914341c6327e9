"""Ticker conventions: bundled-sample aliases, 24/7 (crypto) markets and file-safe names."""

from __future__ import annotations

#: Alias (upper case, single spaces) → canonical ticker of the bundled sample data.
SAMPLE_TICKERS: dict[str, str] = {
    "^GSPC": "^GSPC",
    "GSPC": "^GSPC",
    "SPX": "^GSPC",
    "SP500": "^GSPC",
    "S&P500": "^GSPC",
    "S&P 500": "^GSPC",
    "ES": "^GSPC",
    "^IXIC": "^IXIC",
    "IXIC": "^IXIC",
    "NASDAQ": "^IXIC",
    "COMP": "^IXIC",
    # bundled stocks (bokeh_sampledata, 2000-2013)
    "AAPL": "AAPL",
    "IBM": "IBM",
    "MSFT": "MSFT",
    "GOOG": "GOOG",
    "GOOGL": "GOOG",
}

# Quote currencies of Yahoo-style crypto pairs (BTC-USD, ETH-EUR, SOL-USDT, ETH-BTC ...). Yahoo only
# uses a "-<currency>" suffix for crypto pairs: stocks use exchange suffixes (".L") and share classes
# are single letters ("BRK-B").
_CRYPTO_QUOTES = frozenset(
    {"USD", "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "DAI", "EUR", "GBP", "JPY", "AUD", "CAD",
     "CHF", "KRW", "TRY", "BRL", "BTC", "ETH", "BNB"}
)
# Quotes that identify a pair even without a separator (exchange style: BTCUSDT, ETHBUSD).
_CONCATENATED_QUOTES = ("USDT", "USDC", "BUSD", "TUSD", "FDUSD")
# Bare base symbols that are unambiguously crypto assets.
_CRYPTO_BASES = frozenset(
    {"BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "BCH", "BNB", "AVAX", "LINK", "XLM",
     "TRX", "ATOM", "XMR", "ETC", "SHIB", "MATIC", "UNI", "USDT", "USDC"}
)


def resolve_sample_ticker(ticker: str) -> str | None:
    """Canonical sample ticker (``"^GSPC"``, ``"^IXIC"``, ``"AAPL"``, ``"IBM"``, ``"MSFT"`` or
    ``"GOOG"``) for an alias, else ``None``.

    Matching ignores case and repeated/surrounding whitespace: ``"spx"``, ``" S&P  500 "`` and
    ``"^gspc"`` all give ``"^GSPC"``.
    """
    if not isinstance(ticker, str):
        return None
    return SAMPLE_TICKERS.get(" ".join(ticker.upper().split()))


def is_crypto(ticker: str) -> bool:
    """Whether ``ticker`` trades 24/7 (a crypto asset or pair).

    Recognises Yahoo pairs (``BTC-USD``, ``ETH-EUR``, ``SOL-USDT``), slash pairs (``ETH/USDT``),
    exchange-style concatenations ending in a stablecoin (``BTCUSDT``) and bare well-known bases
    (``BTC``, ``ETH``). Stocks, indices, futures and forex (``EURUSD=X``, 24/5) are not crypto.
    """
    if not isinstance(ticker, str):
        return False
    text = ticker.strip().upper()
    for separator in ("-", "/"):
        base, sep, quote = text.rpartition(separator)
        if sep and base and quote in _CRYPTO_QUOTES:
            return True
    if text in _CRYPTO_BASES:
        return True
    return any(text.endswith(quote) and len(text) > len(quote) for quote in _CONCATENATED_QUOTES)


def safe_ticker(ticker: str) -> str:
    """File-name-safe spelling of a ticker: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    from quantlab.contract.paths import safe_file_name

    return safe_file_name(ticker)
