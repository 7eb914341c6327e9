"""QuantLab: reproducible trading-strategy research driven by Snakemake."""

__version__ = "0.2.0"
