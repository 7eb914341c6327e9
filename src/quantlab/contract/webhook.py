"""Best-effort webhook delivery of lifecycle events (contract gap #25).

Each event is POSTed as JSON with a short timeout and a few retries with backoff. When
``QUANTLAB_WEBHOOK_SECRET`` is set, the body is signed with HMAC-SHA256 in the
``X-QuantLab-Signature: sha256=<hex>`` header. Failures print one warning and never raise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

TIMEOUT_S = float(os.environ.get("QUANTLAB_WEBHOOK_TIMEOUT", "3"))
RETRIES = int(os.environ.get("QUANTLAB_WEBHOOK_RETRIES", "3"))
BACKOFF_S = float(os.environ.get("QUANTLAB_WEBHOOK_BACKOFF", "0.25"))


def check_url(url: str) -> str:
    """Only http(s) URLs: a webhook must never read files or reach other schemes."""
    from urllib.parse import urlsplit

    from quantlab.errors import ConfigError

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"signal webhook must be an http(s) URL, got {url[:100]!r}")
    return url


def post_event(url: str, record: dict) -> bool:
    body = json.dumps(record, allow_nan=False, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "quantlab-signals/1"}
    secret = os.environ.get("QUANTLAB_WEBHOOK_SECRET")
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-QuantLab-Signature"] = f"sha256={digest}"
    last_error = ""
    for attempt in range(max(RETRIES, 1)):
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 (http/https only)
                if 200 <= resp.status < 300:
                    return True
                last_error = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = str(exc)
        if attempt + 1 < RETRIES:
            time.sleep(BACKOFF_S * (2**attempt))
    print(f"WARNING: webhook delivery of {record.get('event')} failed: {last_error}", file=sys.stderr)
    return False
