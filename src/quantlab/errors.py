"""One exception hierarchy; every class carries the process exit code it maps to.

Exit codes are part of the Stepbit contract (docs/stepbit-io-v1.md):
0 success, 1 unexpected error, 2 invalid request/config, 3 data error, 4 strategy error.
"""

from __future__ import annotations


class QuantLabError(Exception):
    """Base class. Unexpected failures that still deserve a clean message map to exit 1."""

    exit_code = 1
    code = "GENERAL_ERROR"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one line, always
        return " ".join(str(self.message).split())


class ConfigError(QuantLabError):
    """The request, a flag, a parameter or a config file is invalid (exit 2)."""

    exit_code = 2
    code = "INVALID_CONFIG"


class DataError(QuantLabError):
    """No data, an empty range or invalid bars (exit 3)."""

    exit_code = 3
    code = "DATA_ERROR"


class StrategyError(QuantLabError):
    """A strategy failed while computing signals or simulating (exit 4)."""

    exit_code = 4
    code = "STRATEGY_ERROR"


EXIT_LABELS = {
    0: "SUCCESS",
    1: "GENERAL_ERROR",
    2: "INVALID_CONFIG",
    3: "DATA_ERROR",
    4: "STRATEGY_ERROR",
}
