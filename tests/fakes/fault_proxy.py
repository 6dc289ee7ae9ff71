"""A fault-injecting HTTP proxy for S3 clients: put it between the uploader and the server.

Each request is forwarded to the upstream server unless a fault is drawn for
it (seeded, so a failing run can be replayed):

- ``500`` / ``503``: an S3-style error (InternalError / SlowDown) instead of the answer;
- ``reset``: the connection is reset (RST) after the request body was read;
- ``reset_mid_body``: reset after reading only part of the body;
- ``stall``: nothing is answered for ``stall_s`` seconds (longer than the client's
  read timeout), then the connection is closed;
- ``corrupt``: one byte of the request body is flipped on the way (the server
  must refuse it: the CRC32 / payload hash no longer match).

``schedule`` forces a fault on given request numbers (1-based; a body fault
on a request without a body moves to the next one with a body), so that every
kind is exercised in a short run; ``counts`` tells how many of each were
injected. Loopback only.

    with FaultProxy(upstream, rates={"500": 0.05, "reset": 0.05}) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.endpoint, ...)
"""

from __future__ import annotations

import collections
import http.client
import http.server
import random
import socket
import socketserver
import struct
import threading
import time
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("500", "503", "reset", "reset_mid_body", "stall", "corrupt")
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
    "<Message>injected by fault_proxy</Message><RequestId>fault</RequestId></Error>"
)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        fault = proxy.draw(self.command, length)
        if fault == "reset_mid_body" and length > 1:
            self.rfile.read(length // 2)
            self._reset()
            return
        body = self.rfile.read(length) if length else b""
        if fault == "reset":
            self._reset()
            return
        if fault == "stall":
            time.sleep(proxy.stall_s)
            self._reset()
            return
        if fault in ("500", "503"):
            code = "InternalError" if fault == "500" else "SlowDown"
            payload = _ERROR_BODY.format(code=code).encode()
            self.send_response(int(fault))
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if fault == "corrupt" and body:
            i = proxy.rng_index(len(body))
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        proxy = self.server.proxy
        up = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            up.request(self.command, self.path, body=body or None, headers=headers)
            resp = up.getresponse()
            data = resp.read()
        except OSError:
            self._reset()  # upstream down (e.g. restarting): the client sees a dropped connection
            return
        finally:
            up.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP and k.lower() != "content-length":
                self.send_header(k, v)
        length = resp.getheader("Content-Length")
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        rates: dict[str, float] | None = None,
        schedule: dict[int, str] | None = None,
        seed: int = 0,
        stall_s: float = 3.0,
        upstream_timeout: float = 60.0,
    ) -> None:
        unknown = (set(rates or {}) | set((schedule or {}).values())) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {FAULTS}")
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.rates = dict(rates or {})
        self.schedule = dict(schedule or {})
        self.stall_s, self.upstream_timeout = stall_s, upstream_timeout
        self.counts: collections.Counter[str] = collections.Counter()
        self.enabled = True
        self._rng = random.Random(seed)
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def draw(self, method: str, length: int) -> str:
        with self._lock:
            self.counts["requests"] += 1
            if not self.enabled:
                return ""
            if scheduled := self.schedule.get(self.counts["requests"]):
                self._pending.append(scheduled)
            # A scheduled body fault waits for the next request that has a body, so
            # the schedule holds whatever order the client's requests come in.
            if self._pending and (length > 0 or self._pending[0] not in ("corrupt", "reset_mid_body")):
                forced = self._pending.pop(0)
                self.counts[forced] += 1
                return forced
            x = self._rng.random()
            for fault, rate in self.rates.items():
                if fault in ("corrupt", "reset_mid_body") and length == 0:
                    continue
                if x < rate:
                    self.counts[fault] += 1
                    return fault
                x -= rate
            return ""

    def rng_index(self, n: int) -> int:
        with self._lock:
            return self._rng.randrange(n)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
