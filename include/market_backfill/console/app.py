"""The console's FastAPI app, mounted by the plugin at ``/market-backfill`` on Airflow's
api-server: the page (``/``, its assets) and the JSON API under ``/api/``.

Every route needs a user logged in to Airflow: the dependency is Airflow's own
``get_user`` (the ``Authorization: Bearer`` token, else the UI's ``_token`` cookie, checked
by the configured auth manager). An unauthenticated API call gets 401 (403 for a bad
token); the page sends the browser to Airflow's login and back.

Each request opens one connection to ``market_db`` and reads in one read-only
transaction with a statement timeout; nothing here writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from market_backfill.console import queries
from market_backfill.db.connection import Connection, Connector, close_quietly

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 15_000
ASSETS = {"console.js": "text/javascript", "console.css": "text/css", "icon.svg": "image/svg+xml"}
T = TypeVar("T")

SymbolParam = Annotated[
    str | None,
    Query(description="A registry symbol `DATASET:ROOT`, e.g. `GLBX.MDP3:NQ`; empty: all."),
]
StartParam = Annotated[date | None, Query(description="First day `YYYY-MM-DD` (UTC).")]
EndParam = Annotated[date | None, Query(description="Last day `YYYY-MM-DD` (UTC), included.")]


NO_SCHEMA = (
    "market_db holds no market-backfill tables yet (or those of an older version): they are "
    "created and migrated by the first task of any of the project's DAGs; run one"
)


class CompletenessRow(BaseModel):
    symbol: str
    roll_rule: str
    rank: int
    series: str
    month: str
    expected: int | None  # None: the symbol has no registry calendar
    stored: int
    percent: float | None
    open_gaps: int
    unfillable_gaps: int


class GapRow(BaseModel):
    symbol: str
    roll_rule: str
    rank: int
    series: str
    gap_start: datetime
    gap_end: datetime
    minutes: int
    status: Literal["open", "filled", "unfillable"]
    attempts: int
    detected_at: datetime | None
    filled_at: datetime | None
    last_error: str | None


class RunRow(BaseModel):
    dag_id: str
    run_id: str
    status: Literal["running", "success", "failed"]
    started_at: datetime | None
    finished_at: datetime | None
    chunks: int
    chunks_failed: int
    rows_written: int
    commits: int
    retries: int
    estimated_cost_usd: float | None
    error: str | None
    airflow_path: str
    chunk_rows: list[dict[str, Any]]


class FreshnessRow(BaseModel):
    symbol: str
    roll_rule: str
    rank: int
    series: str
    calendar: str | None
    newest_bar: datetime | None
    lag_minutes: int | None
    max_lag_minutes: int
    stale: bool


def _json(rows: list[dict[str, Any]]) -> JSONResponse:
    """The rows as they are (the routes' models describe them; validating 10,000 rows
    again would double a heatmap's answer time)."""
    return JSONResponse(rows)


def _read(connect: Connector, work: Callable[[Connection], T]) -> T:
    """``work`` in one read-only transaction on a new connection, closed afterwards. A
    database without the project's tables answers 503 with what to do."""
    from psycopg.errors import UndefinedTable

    started = time.monotonic()
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        try:
            result = work(conn)
        except UndefinedTable as exc:
            raise HTTPException(503, NO_SCHEMA) from exc
        conn.rollback()
        return result
    finally:
        close_quietly(conn)
        log.debug("console read in %.3fs", time.monotonic() - started)


def _asset(name: str) -> bytes:
    return (resources.files("market_backfill.console") / "static" / name).read_bytes()


def create_app(
    connect: Connector | None = None, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The console app. ``connect`` opens a connection to the market database (default:
    the Airflow connection ``market_db``); ``clock`` gives "now" (default: the wall clock)."""
    from airflow.api_fastapi.core_api.security import get_user

    if connect is None:
        from market_backfill.airflow.connections import hook_connector

        connect = hook_connector()
    now = clock or (lambda: datetime.now(UTC))
    app = FastAPI(
        title="market-backfill console",
        version="1",
        description=(
            "Completeness, gaps, runs and freshness of the minute bars in `market_db`, read "
            "live. Every route needs an Airflow login (a Bearer token from `/auth/token`, or "
            "the UI's session cookie)."
        ),
    )
    user = [Depends(get_user)]
    read = lambda work: _read(connect, work)  # noqa: E731

    @app.exception_handler(HTTPException)
    async def login_redirect(request: Request, exc: HTTPException) -> Response:
        """A browser without a login asking for the page goes to Airflow's login."""
        page = request.url.path.rstrip("/") == request.scope.get("root_path", "").rstrip("/")
        if page and exc.status_code in (401, 403):
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)))
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False, dependencies=user)
    def page() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-store"})

    @app.get("/assets/{name}", include_in_schema=False, dependencies=user)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "no such asset")
        return Response(_asset(name), media_type=ASSETS[name])

    @app.get(
        "/api/completeness",
        dependencies=user,
        summary="Stored minutes per month",
        response_model=list[CompletenessRow],
    )
    def completeness(
        symbol: SymbolParam = None, start: StartParam = None, end: EndParam = None
    ) -> JSONResponse:
        """One object per series and month (`month` as `YYYY-MM`): `expected` trading minutes
        of the series' calendar (the running month: up to now), `stored` bars, `percent`,
        `open_gaps` and `unfillable_gaps` (gaps starting in the month). Without dates: each
        series from its first stored month to the current month."""
        return _json(read(lambda c: queries.completeness(c, now(), symbol, start, end)))

    @app.get(
        "/api/gaps", dependencies=user, summary="Gaps, oldest first", response_model=list[GapRow]
    )
    def gaps(
        symbol: SymbolParam = None,
        status: Annotated[
            Literal["open", "filled", "unfillable"] | None, Query(description="Gap status.")
        ] = None,
        start: StartParam = None,
        end: EndParam = None,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_GAPS)] = 1000,
    ) -> JSONResponse:
        """Gaps overlapping the days `start`..`end`: minutes, status, attempts, last error."""
        return _json(read(lambda c: queries.gaps(c, symbol, status, start, end, limit)))

    @app.get(
        "/api/runs",
        dependencies=user,
        summary="Recent runs with their chunks",
        response_model=list[RunRow],
    )
    def runs(
        dag_id: Annotated[str | None, Query(description="One DAG; empty: all.")] = None,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_RUNS)] = 20,
    ) -> JSONResponse:
        """The newest runs of every DAG from `backfill_runs`: status, chunk rows, commits,
        retries, rows written, the Databento estimate (`estimated_cost_usd`) and
        `airflow_path`, the run's page relative to the Airflow UI's root."""
        return _json(read(lambda c: queries.runs(c, dag_id, limit)))

    @app.get(
        "/api/freshness",
        dependencies=user,
        summary="Newest bar and lag per series",
        response_model=list[FreshnessRow],
    )
    def freshness(
        symbol: SymbolParam = None,
        max_lag_minutes: Annotated[int, Query(ge=0)] = 60,
    ) -> JSONResponse:
        """Per series: `newest_bar`, `lag_minutes` (trading minutes of its calendar since
        that bar, up to now) and `stale` (lag over `max_lag_minutes`)."""
        return _json(read(lambda c: queries.freshness(c, now(), symbol, max_lag_minutes)))

    return app
