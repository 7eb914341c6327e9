"""Best-effort webhook delivery of lifecycle events (contract gap #25), with an address policy.

Each event is POSTed as JSON with a short timeout and a few retries with backoff. When
``QUANTLAB_WEBHOOK_SECRET`` is set, the body is signed with HMAC-SHA256 in the
``X-QuantLab-Signature: sha256=<hex>`` header. Failures print one warning and never raise.

The URL comes from the request (an LLM's text), so delivery must not become a server-side request
forgery. Policy (docs/stepbit-io-v1.md, section 5):

* http(s) only; no proxies (a proxy would hide where the request really goes);
* never a cloud-metadata or link-local address (``169.254.0.0/16``, ``fe80::/10``,
  ``fd00:ec2::254``, ``100.100.100.200``, ``metadata.google.internal``...), nor an unspecified,
  multicast or reserved one: checked on the literal host, on every address the name resolves to
  (the connection goes to a vetted address, so DNS cannot change the answer in between), and on
  every redirect;
* private networks (RFC 1918, ``100.64.0.0/10``, ``fc00::/7``) only for hosts the operator lists;
* ``QUANTLAB_WEBHOOK_HOSTS`` (comma-separated host names or addresses): when set, only these hosts.

A refused webhook is a ``WARNING:`` line on stderr; it never changes the request's outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

TIMEOUT_S = float(os.environ.get("QUANTLAB_WEBHOOK_TIMEOUT", "3"))
RETRIES = int(os.environ.get("QUANTLAB_WEBHOOK_RETRIES", "3"))
BACKOFF_S = float(os.environ.get("QUANTLAB_WEBHOOK_BACKOFF", "0.25"))
HOSTS_ENV = "QUANTLAB_WEBHOOK_HOSTS"

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))
METADATA_HOSTS = frozenset(("metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal"))
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))


class WebhookRefused(OSError):
    """The webhook's address is not allowed by the policy (never retried)."""


def allowed_hosts() -> frozenset[str] | None:
    """The operator's allowlist (``QUANTLAB_WEBHOOK_HOSTS``), or None when unset."""
    raw = os.environ.get(HOSTS_ENV)
    if raw is None or not raw.strip():
        return None
    return frozenset(h.strip().lower().strip("[]") for h in raw.split(",") if h.strip())


def address_refusal(address: str, *, listed: bool = False) -> str | None:
    """Why an IP address may not receive webhooks, or None when it may. ``listed``: the host is in
    the operator's allowlist, which opens private networks (never metadata or link-local)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address[:60]!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_loopback:  # this machine (a local agent): allowed unless an allowlist says otherwise
        return None
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return f"{ip} is not a unicast host address"
    if not listed and any(ip in net for net in PRIVATE_NETWORKS):
        return f"{ip} is a private-network address (list the host in {HOSTS_ENV} to allow it)"
    return None


def url_refusal(url: str) -> str | None:
    """Why a webhook URL is refused before any connection, or None (resolution is checked at
    connect time, see ``_vetted_connection``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
        return f"not an http(s) URL: {url[:100]!r}"
    host = parts.hostname.lower().rstrip(".")
    hosts = allowed_hosts()
    if hosts is not None and host not in hosts:
        return f"host {host!r} is not in {HOSTS_ENV}"
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata host"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None  # a name: its addresses are checked when connecting
    return address_refusal(host, listed=hosts is not None)


def _vetted_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **_kw):
    """socket.create_connection that resolves the name once, refuses the whole name when any of
    its addresses is refused, and connects only to the addresses it checked."""
    host, port = address[0], address[1]
    listed = allowed_hosts() is not None
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        reason = address_refusal(sockaddr[0], listed=listed)
        if reason:
            raise WebhookRefused(f"{host} resolves to {reason}")
    error: OSError | None = None
    for family, socktype, proto, _, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"cannot resolve {host}")


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _vetted_connection


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _vetted_connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        reason = url_refusal(newurl)
        if reason:
            raise WebhookRefused(f"redirect to {newurl[:100]!r}: {reason}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _HTTPHandler, _HTTPSHandler, _Redirects)


def post_event(url: str, record: dict) -> bool:
    body = json.dumps(record, allow_nan=False, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "quantlab-signals/1"}
    secret = os.environ.get("QUANTLAB_WEBHOOK_SECRET")
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-QuantLab-Signature"] = f"sha256={digest}"
    reason = url_refusal(url)
    if reason:
        print(f"WARNING: webhook delivery of {record.get('event')} refused: {reason}", file=sys.stderr)
        return False
    opener = _opener()
    last_error = ""
    for attempt in range(max(RETRIES, 1)):
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with opener.open(req, timeout=TIMEOUT_S) as resp:
                if 200 <= resp.status < 300:
                    return True
                last_error = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            refused = exc if isinstance(exc, WebhookRefused) else getattr(exc, "reason", None)
            if isinstance(refused, WebhookRefused):
                print(f"WARNING: webhook delivery of {record.get('event')} refused: {refused}", file=sys.stderr)
                return False
            last_error = str(exc)
        if attempt + 1 < RETRIES:
            time.sleep(BACKOFF_S * (2**attempt))
    print(f"WARNING: webhook delivery of {record.get('event')} failed: {last_error}", file=sys.stderr)
    return False
