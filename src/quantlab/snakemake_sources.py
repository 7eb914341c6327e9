"""Snakemake reads the workflow's own (local) rule files without importing ``smart_open``.

Snakemake 9.27.1 opens every Snakefile and included rule file through its source cache, which
calls ``smart_open.parse_uri`` (for the cache path) and ``smart_open.open`` (to read) even for
a local path. The first call imports smart_open, and with it requests, urllib3, idna, certifi
and charset_normalizer: ~35 ms of a cold ``run`` spent after Snakemake's import, on the
critical path, for files on the local disk.

For a local path both calls reduce to the standard library, exactly: smart_open parses a path
without a scheme as ``Uri(scheme="file", uri_path=<the path, ~ expanded>)``, and Snakemake opens
sources with ``compression="disable"``, which for a local file is the builtin ``open`` of that
path. So
:func:`install` wraps the two functions Snakemake's source cache uses: local paths get the
standard-library answer, anything else (``https://``, ``git+file://``, a hosting provider's
file) goes to Snakemake's own code unchanged. If the pinned Snakemake ever moves these
functions, :func:`install` leaves it alone (the cost comes back, nothing breaks).
"""

from __future__ import annotations

import os
from collections import namedtuple

LocalUri = namedtuple("LocalUri", ["scheme", "uri_path"])  # the fields Snakemake reads of smart_open's Uri


def local_path(path_or_uri) -> str | None:
    """The file a plain filesystem path (``str`` or ``os.PathLike`` without any ``:``, so
    without a scheme) names, ``~`` expanded as smart_open expands it; ``None`` for anything else."""
    try:
        path = os.fspath(path_or_uri)
    except TypeError:
        return None
    return os.path.expanduser(path) if isinstance(path, str) and ":" not in path else None


def install() -> bool:
    """Wrap the source cache's ``parse_uri`` and ``SourceCache._open`` (idempotent). Returns
    whether the wrappers are in place."""
    try:
        from snakemake import sourcecache
        from snakemake.exceptions import WorkflowError

        cache_cls, source_cls, parse = sourcecache.SourceCache, sourcecache.LocalSourceFile, sourcecache.parse_uri
        original_open = cache_cls._open
    except (ImportError, AttributeError):
        return False
    if getattr(parse, "quantlab_local", False):
        return True

    def parse_uri(path_or_uri):
        path = local_path(path_or_uri)
        return parse(path_or_uri) if path is None else LocalUri("file", path)

    def _open(self, source_file, mode, encoding=None):
        if type(source_file) is source_cls:
            path = local_path(source_file.get_path_or_uri(secret_free=False))
            if path is not None:
                try:
                    return open(path, mode, encoding=None if "b" in mode else encoding)
                except Exception as exc:  # as Snakemake reports it
                    raise WorkflowError(f"Failed to open source file {path}", exc)
        return original_open(self, source_file, mode, encoding)

    parse_uri.quantlab_local = True
    sourcecache.parse_uri = parse_uri
    cache_cls._open = _open
    return True
