"""QuantLab: reproducible trading-strategy research driven by Snakemake.

The notebook API (docs/python-api.md): ``quantlab.run``, ``quantlab.sweep``, ``quantlab.forward``
and ``quantlab.Result``, imported on first use so that ``import quantlab`` stays cheap (main.py
imports this package on every request).
"""

__version__ = "0.2.0"

_API = ("run", "sweep", "forward", "request", "Result")


def __getattr__(name: str):
    if name in _API:
        from quantlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'quantlab' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
