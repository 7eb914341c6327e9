"""Headless Chromium driven over the DevTools protocol (loopback only): load a file:// page, wait
until it has rendered, and report what a person's browser would show and log.

``visit(url, width, height)`` returns a :class:`Visit` with every console message and uncaught
exception, every URL the page requested, values of JavaScript expressions evaluated in the page
(``probes``), and a PNG screenshot. Bokeh pages are waited for until Bokeh says its document is
idle (every plot drawn); the wait is a condition with a deadline, not a sleep."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
READY = """new Promise(function (done) {
  var deadline = Date.now() + 30000;
  (function check() {
    var bokeh = document.querySelector('script[type="application/json"]') !== null;
    var idle = !bokeh || (window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents.every(function (d) {
      return d.is_idle; }));
    if (idle || Date.now() > deadline) { done(idle); } else { setTimeout(check, 25); }
  })();
})"""
# elements inside Bokeh's shadow roots too
DEEP_COUNT = """(function (selector) {
  var n = 0;
  (function walk(root) {
    n += root.querySelectorAll(selector).length;
    root.querySelectorAll('*').forEach(function (el) { if (el.shadowRoot) { walk(el.shadowRoot); } });
  })(document);
  return n;
})"""


@dataclass
class Visit:
    console: list[dict] = field(default_factory=list)   # {"level", "text"}
    requests: list[str] = field(default_factory=list)
    ready: bool = False
    probes: dict = field(default_factory=dict)
    screenshot: bytes = b""

    def problems(self, allowed: tuple[str, ...] = ()) -> list[dict]:
        """Console lines other than the allowed informational ones (regexes)."""
        return [m for m in self.console if not any(re.search(a, m["text"]) for a in allowed)]


def deep_count(selector: str) -> str:
    return f"{DEEP_COUNT}({json.dumps(selector)})"


def visit(url: str, *, width: int = 1400, height: int = 1000, probes: dict[str, str] | None = None,
          full_page: bool = False) -> Visit:
    from websockets.sync.client import connect

    profile = tempfile.mkdtemp(prefix="ql-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ws_url = None
        for line in proc.stderr:
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                ws_url = found.group(1)
                break
        assert ws_url, "chromium did not start its DevTools endpoint"
        with connect(ws_url, max_size=None, open_timeout=30) as ws:
            return _drive(ws, url, width, height, probes or {}, full_page)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def _drive(ws, url: str, width: int, height: int, probes: dict, full_page: bool) -> Visit:
    out = Visit()
    counter = iter(range(1, 1 << 30))
    session = None

    def record(msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            out.console.append({"level": params.get("type"), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.console.append({"level": "exception", "text": details.get("exception", {}).get(
                "description", details.get("text", ""))})
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            out.console.append({"level": entry.get("level"), "text": entry.get("text", "")})
        elif method == "Network.requestWillBeSent":
            out.requests.append(params["request"]["url"])

    def call(method: str, params: dict | None = None, *, timeout: float = 60) -> dict:
        ident = next(counter)
        msg = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        ws.send(json.dumps(msg))
        while True:
            reply = json.loads(ws.recv(timeout=timeout))
            if reply.get("id") == ident:
                assert "error" not in reply, reply
                return reply.get("result", {})
            record(reply)

    target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Network", "Log"):
        call(f"{domain}.enable")
    call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                "mobile": False})
    call("Page.navigate", {"url": url})
    while True:  # until the load event
        msg = json.loads(ws.recv(timeout=60))
        record(msg)
        if msg.get("method") == "Page.loadEventFired":
            break
    ready = call("Runtime.evaluate", {"expression": READY, "awaitPromise": True, "returnByValue": True})
    out.ready = bool(ready.get("result", {}).get("value"))
    for name, expression in probes.items():
        res = call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        out.probes[name] = res.get("result", {}).get("value")
    shot = call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page})
    out.screenshot = base64.b64decode(shot["data"])
    call("Runtime.evaluate", {"expression": "1"})  # flush events logged while drawing
    return out
