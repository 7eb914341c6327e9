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
    ql = fast_webhook
    t0 = time.monotonic()
    res = ql.request(run_request(), "--signal-webhook", server.url + path)
    assert res.returncode == 0, res.stderr
    assert res.envelope["status"] == "success" and res.signals[-1]["event"] == "SESSION_COMPLETED"
    assert "WARNING: webhook delivery" in res.stderr
    assert time.monotonic() - t0 < 15  # bounded: timeout x retries + backoff, per event


def test_non_http_webhook_is_refused(ql):
    res = ql.request(run_request(), "--signal-webhook", "file:///etc/passwd")
    assert res.returncode == 2 and "http(s)" in res.stderr
    assert res.signals[-1]["event"] == "SESSION_FAILED"
