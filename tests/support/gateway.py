"""A local https stand-in of Databento's historical gateway, serving real DBN bytes.

The official client always speaks https, so the server uses a certificate from a private
CA (trustme) that the test trusts through ``REQUESTS_CA_BUNDLE``. It implements
``POST /v0/timeseries.get_range`` for ``ohlcv-1m`` with ``stype_in=continuous``: basic
auth with the API key as user name, form fields as the client sends them, and a zstd DBN
stream with the symbol mappings of a real response. Tests can script failures first
(``fail_with``): status codes with optional Retry-After, answered in order.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import zstandard

from market_backfill.timeutil import to_ns
from market_backfill_devtools.dbn_writer import encode_bars, quarterly_rolls

API_KEY = "db-TESTKEY0000000000000000000000"
DATA_PATH = "/v0/timeseries.get_range"
QUOTE_PATHS = ("/v0/metadata.get_cost", "/v0/metadata.get_billable_size")


@dataclass
class Scripted:
    status: int
    retry_after: float | None = None
    detail: str = "scripted failure"
    path: str = "/v0/timeseries.get_range"  # the endpoint whose next answer this is


@dataclass
class GatewayState:
    bars: pd.DataFrame  # symbol = continuous symbol (e.g. NQ.v.0), ts ns, int prices
    dataset: str = "GLBX.MDP3"
    key: str = API_KEY
    script: deque[Scripted] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    published_end: str | None = None  # ISO; default: a minute after the last bar
    usd_per_gb: float = 500.0  # the stand-in's price list (billable bytes of ohlcv-1m)

    def data_requests(self) -> list[dict[str, Any]]:
        """The billed requests (``timeseries.get_range``), not the free metadata ones."""
        return [r for r in self.requests if r["path"] == DATA_PATH]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _begin(self, form: dict[str, str]) -> bool:
        """Record the request; answer auth failures and scripted answers. True: go on."""
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.requests.append({"path": path, "form": form})
            scripted = None
            if state.script and state.script[0].path == path:
                scripted = state.script.popleft()
        auth = self.headers.get("Authorization", "")
        user = (
            base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            if auth.startswith("Basic ")
            else ""
        )
        if user != state.key:
            self._json(401, {"detail": "Authentication failed."})
            return False
        if scripted is not None:
            headers = {"Retry-After": str(scripted.retry_after)} if scripted.retry_after else {}
            self._json(scripted.status, {"detail": scripted.detail}, headers)
            return False
        return True

    def _published_end(self) -> int:
        state = self.server.state
        if state.published_end is not None:
            return to_ns(state.published_end)
        return int(state.bars["ts"].max()) + 60_000_000_000

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path, _, query = self.path.partition("?")
        form = {k: v[0] for k, v in parse_qs(query).items()}
        if not self._begin(form):
            return None
        if path != "/v0/metadata.get_dataset_range":
            return self._json(404, {"detail": f"no route {path}"})
        state = self.server.state
        start = pd.Timestamp(int(state.bars["ts"].min()), unit="ns", tz="UTC").isoformat()
        end = pd.Timestamp(self._published_end(), unit="ns", tz="UTC").isoformat()
        return self._json(
            200,
            {"start": start, "end": end, "schema": {"ohlcv-1m": {"start": start, "end": end}}},
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if not self._begin(form):
            return None
        if self.path not in (DATA_PATH, *QUOTE_PATHS):
            return self._json(404, {"detail": f"no route {self.path}"})
        if form.get("schema") != "ohlcv-1m" or form.get("stype_in") != "continuous":
            return self._json(422, {"detail": "stand-in serves ohlcv-1m continuous only"})
        if form.get("dataset") != state.dataset:
            return self._json(422, {"detail": f"Unknown dataset {form.get('dataset')!r}"})
        symbols = form.get("symbols", "").split(",")
        start, end = to_ns(form["start"]), to_ns(form["end"])
        if end > self._published_end():
            return self._json(422, {"detail": "end is after the available range"})
        bars = state.bars
        sel = bars[bars["symbol"].isin(symbols) & (bars["ts"] >= start) & (bars["ts"] < end)]
        if self.path in QUOTE_PATHS:  # 56 bytes per ohlcv-1m record
            size = 56 * len(sel)
            value = size if self.path.endswith("billable_size") else size / 1e9 * state.usd_per_gb
            return self._json(200, value)
        first = pd.Timestamp(start, unit="ns", tz="UTC").date()
        last = pd.Timestamp(end - 1, unit="ns", tz="UTC").date()
        instruments = {
            s: quarterly_rolls(first, last, 1000 * (i + 1)) for i, s in enumerate(symbols)
        }
        payload = encode_bars(
            sel, dataset=state.dataset, instruments=instruments, start_ns=start, end_ns=end
        )
        body = zstandard.ZstdCompressor().compress(payload)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: GatewayState


class Gateway:
    """Run the stand-in on a free loopback port; ``url`` is its https address."""

    def __init__(self, state: GatewayState, workdir: Path) -> None:
        import trustme

        self.state = state
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = workdir / "gateway-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.state = state
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def fail_with(self, *script: Scripted) -> None:
        with self.state.lock:
            self.state.script.extend(script)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
