"""A local https stand-in of Databento's historical gateway, serving real DBN bytes.

The official client always speaks https, so the server uses a certificate from a private
CA (trustme) that the test trusts through ``REQUESTS_CA_BUNDLE``. It implements
``POST /v0/timeseries.get_range`` for ``ohlcv-1m`` with ``stype_in=continuous``: basic
auth with the API key as user name, form fields as the client sends them, and a zstd DBN
stream with the symbol mappings of a real response; the metadata endpoints (published
range, cost, billable size); and the batch API as the client calls it: ``batch.submit_job``
(a job that is done ``batch_seconds`` after it was received), ``batch.list_jobs`` (the short
form), ``batch.get_job_details``, ``batch.list_files`` (one zstd DBN file per month) and the
file download, with ``Range`` for resumed downloads. Tests can script failures first
(``fail_with``): status codes with optional Retry-After, or a connection closed without
an answer (status 0), answered in order; with ``lost_answer`` the request is carried out
first (a job is made) and its answer replaced by the failure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
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
SUBMIT_PATH = "/v0/batch.submit_job"
FILE_PATH = "/v0/batch.file/"  # + job id / file name: where list_files points downloads


@dataclass
class Scripted:
    status: int  # 0: the connection is closed without an answer (a network error)
    retry_after: float | None = None
    detail: str = "scripted failure"
    path: str = "/v0/timeseries.get_range"  # the endpoint whose next answer this is
    lost_answer: bool = False  # carried out, then answered with ``status`` (a JSON answer:
    # the metadata and batch endpoints; not the streamed data, nor with ``status`` 0)
    cut_to: float | None = None  # the data answered (200, ``status`` unused) with only
    # this share of its bytes and a length to match: a damaged response the client takes
    # as whole (0.5: cut in its records; 0.001: in its header)


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
    batch_seconds: float = 2.0  # how long a batch job takes to be done
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def data_requests(self) -> list[dict[str, Any]]:
        """The billed requests (``timeseries.get_range``), not the free metadata ones."""
        return [r for r in self.requests if r["path"] == DATA_PATH]

    def submits(self) -> list[dict[str, Any]]:
        """The batch jobs submitted (each one billed)."""
        return [r for r in self.requests if r["path"] == SUBMIT_PATH]

    def downloads(self) -> list[dict[str, Any]]:
        """The batch file downloads (``form`` holds ``file`` and the ``range`` asked)."""
        return [r for r in self.requests if r["path"].startswith(FILE_PATH)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        lost = getattr(self, "_lost", None)
        if lost is not None:  # the work is done, the answer the client gets is a failure
            self._lost = None
            status, body, headers = lost.status, {"detail": lost.detail}, None
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
        self._cut_to = None  # a keep-alive handler serves several requests: this one's
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
        if scripted is not None and scripted.lost_answer:
            self._lost = scripted  # carried out; :meth:`_json` answers with the failure
            return True
        if scripted is not None and scripted.cut_to is not None:
            self._cut_to = scripted.cut_to  # :meth:`do_POST` sends that share of the data
            return True
        if scripted is not None and scripted.status == 0:
            self.close_connection = True  # nothing written: the client sees the drop
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
        if path.startswith(FILE_PATH):
            form = {"file": path[len(FILE_PATH) :], "range": self.headers.get("Range", "")}
        if not self._begin(form):
            return None
        if path.startswith("/v0/batch"):
            return self._batch_get(path, form)
        if path != "/v0/metadata.get_dataset_range":
            return self._json(404, {"detail": f"no route {path}"})
        state = self.server.state
        start = pd.Timestamp(int(state.bars["ts"].min()), unit="ns", tz="UTC").isoformat()
        end = pd.Timestamp(self._published_end(), unit="ns", tz="UTC").isoformat()
        return self._json(
            200,
            {"start": start, "end": end, "schema": {"ohlcv-1m": {"start": start, "end": end}}},
        )

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        done = time.monotonic() - job["received"] >= self.server.state.batch_seconds
        view = {k: v for k, v in job.items() if k not in ("received", "files")}
        view["state"] = "done" if done else "processing"
        return view

    def _batch_get(self, path: str, form: dict[str, str]) -> None:
        state = self.server.state
        if path == "/v0/batch.list_jobs":  # the short form, the default since 2026-09-29
            wanted = set((form.get("states") or "received,queued,processing,done").split(","))
            if not wanted <= {"queued", "processing", "done", "expired"} and form.get("states"):
                return self._json(422, {"detail": f"invalid states {form['states']!r}"})
            with state.lock:
                views = [self._job_view(j) for j in state.jobs.values()]
            short = [{k: v[k] for k in ("id", "state", "ts_received")} for v in views]
            return self._json(200, [v for v in short if v["state"] in wanted])
        job_id = form.get("job_id") or form.get("file", "").split("/", 1)[0]
        with state.lock:
            job = state.jobs.get(job_id)
        if job is None:
            return self._json(404, {"detail": f"no batch job {job_id!r}"})
        view = self._job_view(job)
        if path == "/v0/batch.get_job_details":
            return self._json(200, view)
        if view["state"] != "done":
            return self._json(400, {"detail": f"job {job_id} is {view['state']}"})
        host = f"https://{self.headers['Host']}"
        if path == "/v0/batch.list_files":
            return self._json(
                200,
                [
                    {
                        "filename": name,
                        "size": len(body),
                        "hash": "sha256:" + hashlib.sha256(body).hexdigest(),
                        "urls": {"https": f"{host}{FILE_PATH}{job_id}/{name}"},
                    }
                    for name, body in job["files"].items()
                ],
            )
        body = job["files"].get(form["file"].split("/", 1)[1])
        if body is None:
            return self._json(404, {"detail": f"no file {form['file']!r}"})
        status, first = 200, 0
        if form["range"].startswith("bytes="):
            status, first = 206, int(form["range"][6:].split("-", 1)[0])
        part = body[first:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def _submit(self, form: dict[str, str], start: int, end: int) -> None:
        """A job over ``[start, end)`` split by month into zstd DBN files, like Databento's."""
        state = self.server.state
        if (form.get("encoding"), form.get("compression")) != ("dbn", "zstd"):
            return self._json(422, {"detail": "stand-in serves dbn + zstd batch jobs only"})
        if form.get("split_duration") != "month":
            return self._json(422, {"detail": "stand-in splits batch jobs by month only"})
        symbols = form["symbols"].split(",")
        files: dict[str, bytes] = {}
        edges = [start]
        month = pd.Timestamp(start, unit="ns", tz="UTC").normalize().replace(day=1)
        while True:
            month = month + pd.DateOffset(months=1)
            if to_ns(month) >= end:
                break
            edges.append(to_ns(month))
        edges.append(end)
        for lo, hi in zip(edges, edges[1:], strict=False):
            first = pd.Timestamp(lo, unit="ns", tz="UTC")
            last = pd.Timestamp(hi - 1, unit="ns", tz="UTC")
            name = f"glbx-mdp3-{first:%Y%m%d}-{last:%Y%m%d}.ohlcv-1m.dbn.zst"
            files[name] = self._dbn_body(symbols, lo, hi)
        received = pd.Timestamp.now(tz="UTC")
        with state.lock:
            job_id = f"GLBX-{received:%Y%m%d}-{len(state.jobs) + 1:010d}"
            state.jobs[job_id] = {
                "id": job_id,
                "dataset": form["dataset"],
                "symbols": form["symbols"],
                "stype_in": form["stype_in"],
                "stype_out": form.get("stype_out", "instrument_id"),
                "schema": form["schema"],
                "start": pd.Timestamp(start, unit="ns", tz="UTC").isoformat(),
                "end": pd.Timestamp(end, unit="ns", tz="UTC").isoformat(),
                "encoding": form["encoding"],
                "compression": form["compression"],
                "split_duration": form["split_duration"],
                "delivery": form.get("delivery", "download"),
                "cost_usd": sum(len(b) for b in files.values()) / 1e9 * state.usd_per_gb,
                "ts_received": received.isoformat(),
                "received": time.monotonic(),
                "files": files,
            }
            view = self._job_view(state.jobs[job_id])
        return self._json(200, view)

    def _dbn_body(self, symbols: list[str], start: int, end: int) -> bytes:
        """zstd DBN of the bars of ``symbols`` in ``[start, end)``, as Databento sends them."""
        state = self.server.state
        bars = state.bars
        sel = bars[bars["symbol"].isin(symbols) & (bars["ts"] >= start) & (bars["ts"] < end)]
        first = pd.Timestamp(start, unit="ns", tz="UTC").date()
        last = pd.Timestamp(end - 1, unit="ns", tz="UTC").date()
        instruments = {
            s: quarterly_rolls(first, last, 1000 * (i + 1)) for i, s in enumerate(symbols)
        }
        payload = encode_bars(
            sel, dataset=state.dataset, instruments=instruments, start_ns=start, end_ns=end
        )
        return zstandard.ZstdCompressor().compress(payload)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if not self._begin(form):
            return None
        if self.path not in (DATA_PATH, SUBMIT_PATH, *QUOTE_PATHS):
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
        if self.path == SUBMIT_PATH:
            return self._submit(form, start, end)
        body = self._dbn_body(symbols, start, end)
        if self._cut_to is not None:
            body = body[: max(1, int(len(body) * self._cut_to))]
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
