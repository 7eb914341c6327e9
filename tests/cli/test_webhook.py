"""--signal-webhook against a local HTTP server on 127.0.0.1 that fails, hangs and succeeds."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_request


class _Server:
    def __init__(self):
        self.received: list[dict] = []
        self.calls: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.calls[self.path] = outer.calls.get(self.path, 0) + 1
                if self.path == "/hang":
                    time.sleep(2.0)
                    return
                if self.path == "/flaky" and outer.calls[self.path] % 2 == 1:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/down":
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.received.append({"path": self.path, "body": body,
                                       "signature": self.headers.get("X-QuantLab-Signature")})
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def fast_webhook(ql):
    ql.env.update(QUANTLAB_WEBHOOK_TIMEOUT="0.5", QUANTLAB_WEBHOOK_RETRIES="3", QUANTLAB_WEBHOOK_BACKOFF="0.05",
                  QUANTLAB_WEBHOOK_SECRET="s3cret")
    return ql


def test_success_delivers_every_event_signed(fast_webhook, server):
    ql = fast_webhook
    res = ql.request(run_request(), "--signal-webhook", server.url + "/ok")
    assert res.returncode == 0, res.stderr
    events = [json.loads(r["body"]) for r in server.received]
    assert [e["event"] for e in events] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert events[-1] == res.signals[-1]  # the same record as the signal file
    for r in server.received:
        expected = hmac.new(b"s3cret", r["body"], hashlib.sha256).hexdigest()
        assert r["signature"] == f"sha256={expected}"


def test_params_signal_webhook_and_retries_on_flaky_server(fast_webhook, server):
    ql = fast_webhook
    res = ql.request(run_request(signal_webhook=server.url + "/flaky"))
    assert res.returncode == 0, res.stderr
    assert [json.loads(r["body"])["event"] for r in server.received] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert server.calls["/flaky"] == 4  # each event: one 503, then success


@pytest.mark.parametrize("path", ["/down", "/hang"])
def test_failures_never_change_the_exit_code(fast_webhook, server, path):
    """Bounded without a clock: QUANTLAB_WEBHOOK_RETRIES attempts per event, each cut by the
    timeout (the /hang server answers after 2 s, the timeout is 0.5 s), then a warning."""
    ql = fast_webhook
    res = ql.request(run_request(), "--signal-webhook", server.url + path)
    assert res.returncode == 0, res.stderr
    assert res.envelope["status"] == "success" and res.signals[-1]["event"] == "SESSION_COMPLETED"
    warnings = [line for line in res.stderr.splitlines() if line.startswith("WARNING: webhook delivery")]
    assert len(warnings) == 2, res.stderr  # SESSION_STARTED and SESSION_COMPLETED
    assert server.calls[path] == 3 * 2
    if path == "/hang":
        assert all("timed out" in w for w in warnings), warnings


def test_default_attempt_count_is_three_per_event(ql, server):
    """Documented default: 3 attempts per event (no QUANTLAB_WEBHOOK_RETRIES set), then a warning."""
    ql.env.pop("QUANTLAB_WEBHOOK_RETRIES", None)
    ql.env.update(QUANTLAB_WEBHOOK_BACKOFF="0.01", QUANTLAB_WEBHOOK_TIMEOUT="0.5")
    res = ql.request(run_request(), "--signal-webhook", server.url + "/down")
    assert res.returncode == 0, res.stderr
    assert server.calls["/down"] == 3 * 2  # STARTED and COMPLETED, 3 attempts each


def test_non_http_webhook_is_refused_without_changing_the_outcome(ql):
    # issue #10.14 changed this: a refused webhook is a warning, no longer exit 2
    res = ql.request(run_request(), "--signal-webhook", "file:///etc/passwd")
    assert res.returncode == 0, res.stderr
    assert "WARNING: signal webhook refused" in res.stderr and "http(s)" in res.stderr
    assert res.envelope["status"] == "success" and res.signals[-1]["event"] == "SESSION_COMPLETED"


class _Redirector(_Server):
    """Answers every POST with a 307 to ``target``."""

    def __init__(self, target: str):
        self.target = target
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hits += 1
                self.send_response(307)
                self.send_header("Location", outer.target)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_allowlist_refuses_unlisted_hosts(fast_webhook, server):
    ql = fast_webhook
    ql.env["QUANTLAB_WEBHOOK_HOSTS"] = "hooks.example.com"
    res = ql.request(run_request(), "--signal-webhook", server.url + "/ok")
    assert res.returncode == 0, res.stderr
    assert "WARNING: signal webhook refused" in res.stderr and "QUANTLAB_WEBHOOK_HOSTS" in res.stderr
    assert server.received == [] and server.calls == {}


def test_allowlist_delivers_to_listed_hosts(fast_webhook, server):
    ql = fast_webhook
    ql.env["QUANTLAB_WEBHOOK_HOSTS"] = "hooks.example.com, 127.0.0.1"
    res = ql.request(run_request(), "--signal-webhook", server.url + "/ok")
    assert res.returncode == 0, res.stderr
    assert [json.loads(r["body"])["event"] for r in server.received] == ["SESSION_STARTED", "SESSION_COMPLETED"]
    assert "WARNING" not in res.stderr


def test_redirect_to_a_refused_host_is_not_followed(fast_webhook, server):
    # everything stays on the loopback: the redirect target is a loopback name the allowlist lacks
    ql = fast_webhook
    ql.env["QUANTLAB_WEBHOOK_HOSTS"] = "127.0.0.1"
    port = server.url.rsplit(":", 1)[1]
    redirector = _Redirector(f"http://localhost:{port}/ok")
    try:
        res = ql.request(run_request(), "--signal-webhook", redirector.url + "/hook")
    finally:
        redirector.close()
    assert res.returncode == 0, res.stderr
    assert res.envelope["status"] == "success" and res.signals[-1]["event"] == "SESSION_COMPLETED"
    assert res.stderr.count("WARNING: webhook delivery of") == 2  # one per event, no retries
    assert "refused: redirect to" in res.stderr and "not in QUANTLAB_WEBHOOK_HOSTS" in res.stderr
    assert redirector.hits == 2 and server.received == []


# ------------------------------------------------------------------ the policy as a unit
@pytest.mark.parametrize("address,refused", [
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"), ("::ffff:169.254.169.254", "cloud metadata"),
    ("169.254.10.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("0.0.0.0", "unicast"), ("::", "unicast"), ("224.0.0.1", "unicast"), ("240.0.0.1", "unicast"),
    ("10.1.2.3", "private-network"), ("172.16.0.1", "private-network"), ("192.168.1.1", "private-network"),
    ("100.64.0.1", "private-network"), ("fd12::1", "private-network"),
    ("127.0.0.1", None), ("::1", None), ("93.184.216.34", None), ("2606:4700::1111", None),
])
def test_address_classification(address, refused):
    from quantlab.contract.webhook import address_refusal

    reason = address_refusal(address)
    assert (reason is None) if refused is None else (refused in reason)


def test_listing_opens_private_networks_but_never_metadata_or_link_local():
    from quantlab.contract.webhook import address_refusal

    assert address_refusal("10.1.2.3", listed=True) is None
    assert "metadata" in address_refusal("169.254.169.254", listed=True)
    assert "link-local" in address_refusal("169.254.1.1", listed=True)


@pytest.mark.parametrize("url,needle", [
    ("file:///etc/passwd", "http(s)"), ("gopher://x/", "http(s)"), ("http://", "http(s)"),
    ("http://169.254.169.254/", "metadata"), ("HTTP://METADATA.google.internal./", "metadata"),
    ("http://[fe80::1]:8080/", "link-local"), ("http://user:pw@169.254.169.254/", "metadata"),
])
def test_url_refusal(url, needle):
    from quantlab.contract.webhook import url_refusal

    assert needle in (url_refusal(url) or "")


def test_names_are_checked_after_resolution_without_connecting(monkeypatch):
    import socket

    from quantlab.contract import webhook

    def fake_getaddrinfo(host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    def no_connect(*args, **kwargs):
        raise AssertionError("must not connect")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    assert webhook.url_refusal("http://rebind.example/hook") is None  # a name: checked at connect time
    with pytest.raises(webhook.WebhookRefused, match="rebind.example resolves to 169.254.169.254"):
        webhook._vetted_connection(("rebind.example", 80), 1.0)
    assert webhook.post_event("http://rebind.example/hook", {"event": "SESSION_STARTED"}) is False


def test_redirects_to_metadata_addresses_are_refused_before_connecting():
    import urllib.request

    from quantlab.contract import webhook

    req = urllib.request.Request("http://127.0.0.1:9/hook", data=b"{}", method="POST")
    with pytest.raises(webhook.WebhookRefused, match="cloud metadata"):
        webhook._Redirects().redirect_request(req, None, 307, "Temporary Redirect", {},
                                              "http://169.254.169.254/latest/meta-data/")
