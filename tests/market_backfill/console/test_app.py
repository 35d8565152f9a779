"""The console app mounted as the api-server mounts it, with Airflow's real auth manager
(simple auth manager, real JWTs): logins required, the page, the JSON API, the schema."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from market_backfill.airflow.connections import hook_connector
from market_backfill.console import queries
from market_backfill.console.app import (
    CompletenessRow,
    FreshnessRow,
    GapRow,
    RunRow,
    _read,
    create_app,
)
from market_backfill.console.mount import URL_PREFIX, LazyConsoleApp
from market_backfill.db import audit
from tests.conftest import ROOT, store_bars

NOW = datetime(2025, 4, 7, 14, 30, tzinfo=UTC)  # a week after the stored quarter


@pytest.fixture(scope="module")
def auth(airflow_db):
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = init_auth_manager()
    return manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))


@pytest.fixture
def client(market_db, quarter_bars):
    store_bars(quarter_bars)
    connect = hook_connector()
    audit.record_start(connect, "ohlcv_reingest", "manual__1", "GLBX.MDP3:NQ", "2025-01")
    audit.record_finish(
        connect,
        "ohlcv_reingest",
        "manual__1",
        "GLBX.MDP3:NQ",
        "2025-01",
        "success",
        {"rows_written": 10, "commits": 1, "retries": 0},
    )
    with market_db.connect() as conn:
        conn.execute(
            "INSERT INTO ohlcv_gaps (symbol, roll_rule, rank, gap_start, gap_end, minutes) "
            "VALUES ('GLBX.MDP3:NQ', 'v', 0, '2025-02-03 15:00+00', '2025-02-03 15:20+00', 20)"
        )
        conn.commit()
    built = []

    def factory():
        built.append(1)
        return create_app(clock=lambda: NOW)

    server = FastAPI()
    server.mount(URL_PREFIX, LazyConsoleApp(factory))
    with TestClient(server, base_url="http://airflow.test") as tc:
        tc.built = built
        yield tc


def test_nothing_is_served_without_a_login(client, auth):
    for path in ("api/completeness", "api/gaps", "api/runs", "api/freshness", "assets/console.js"):
        assert client.get(f"{URL_PREFIX}/{path}").status_code == 401, path
        bad = client.get(f"{URL_PREFIX}/{path}", headers={"Authorization": "Bearer nonsense"})
        assert bad.status_code == 403, path
    page = client.get(f"{URL_PREFIX}/", follow_redirects=False)
    assert page.status_code == 307
    assert page.headers["location"] == (
        "/auth/login?next=http%3A%2F%2Fairflow.test%2Fmarket-backfill%2F"
    )


def test_the_api_answers_a_logged_in_user_from_the_tables(client, auth):
    bearer = {"Authorization": f"Bearer {auth}"}
    assert client.built == []  # nothing built before the first request ...
    resp = client.get(f"{URL_PREFIX}/api/completeness?symbol=GLBX.MDP3:NQ", headers=bearer)
    assert client.built == [1]  # ... and once for all
    assert resp.status_code == 200
    conn = hook_connector()()
    try:
        assert resp.json() == queries.completeness(conn, NOW, "GLBX.MDP3:NQ")
    finally:
        conn.close()
    assert [r["month"] for r in resp.json()] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert resp.json()[-1]["stored"] == 0
    ranged = client.get(
        f"{URL_PREFIX}/api/completeness",
        params={"start": "2025-02-01", "end": "2025-02-28"},
        headers=bearer,
    ).json()
    assert [r["month"] for r in ranged] == ["2025-02"]
    fresh = client.get(f"{URL_PREFIX}/api/freshness?max_lag_minutes=5", headers=bearer).json()
    assert [(f["series"], f["stale"]) for f in fresh] == [("NQ.v.0", True)]
    runs = client.get(f"{URL_PREFIX}/api/runs", headers=bearer).json()
    assert [(r["run_id"], r["rows_written"]) for r in runs] == [("manual__1", 10)]
    gaps = client.get(f"{URL_PREFIX}/api/gaps?status=open", headers=bearer).json()
    assert [g["minutes"] for g in gaps] == [20]
    assert client.get(f"{URL_PREFIX}/api/gaps?status=filled", headers=bearer).json() == []
    # the schema's models describe what is answered
    for model, rows in (
        (CompletenessRow, resp.json()),
        (FreshnessRow, fresh),
        (RunRow, runs),
        (GapRow, gaps),
    ):
        assert rows
        TypeAdapter(list[model]).validate_python(rows, strict=False)
    assert client.get(f"{URL_PREFIX}/api/gaps?status=closed", headers=bearer).status_code == 422
    assert (
        client.get(f"{URL_PREFIX}/api/completeness?start=2025-13", headers=bearer).status_code
        == 422
    )


def test_the_page_and_its_assets_come_with_the_ui_session_cookie(client, auth):
    client.cookies.set("_token", auth)
    page = client.get(f"{URL_PREFIX}/")
    assert page.status_code == 200
    assert 'src="assets/console.js"' in page.text  # relative: works under any prefix
    assert (
        client.get(f"{URL_PREFIX}/assets/console.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert client.get(f"{URL_PREFIX}/assets/secrets.txt").status_code == 404


def test_the_openapi_schema_describes_the_four_reads(client):
    schema = client.get(f"{URL_PREFIX}/openapi.json").json()
    paths = schema["paths"]
    assert sorted(paths) == ["/api/completeness", "/api/freshness", "/api/gaps", "/api/runs"]
    params = {p["name"] for p in paths["/api/gaps"]["get"]["parameters"]}
    assert params == {"symbol", "status", "start", "end", "limit"}
    answer = paths["/api/completeness"]["get"]["responses"]["200"]["content"]["application/json"]
    row = schema["components"]["schemas"][answer["schema"]["items"]["$ref"].split("/")[-1]]
    assert {"symbol", "month", "expected", "stored", "percent", "open_gaps"} <= set(
        row["properties"]
    )
    assert {p["name"] for p in paths["/api/completeness"]["get"]["parameters"]} == {
        "symbol",
        "start",
        "end",
    }


def test_reads_run_in_a_read_only_transaction(market_db):
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _read(hook_connector(), lambda c: c.execute("DELETE FROM ohlcv_gaps"))


def test_importing_the_plugin_builds_nothing_heavy():
    """Every Airflow process imports plugins, task processes too: the console's app, its
    calendar stack and FastAPI's security imports wait for the first request."""
    code = (
        "import runpy, sys; p = runpy.run_path('plugins/market_backfill_console.py'); "
        "heavy = [m for m in ('market_backfill.console.app', 'market_backfill.console.queries', "
        "'pandas_market_calendars', 'airflow.api_fastapi.core_api.security') if m in sys.modules]; "
        "print(heavy, p['MarketBackfillConsole'].fastapi_apps[0]['url_prefix'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[-2] == "[] /market-backfill"


def test_a_database_without_the_tables_says_what_to_do(pg_db, monkeypatch, auth):
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", pg_db.airflow_uri)
    with TestClient(create_app(clock=lambda: NOW)) as tc:
        resp = tc.get("/api/completeness", headers={"Authorization": f"Bearer {auth}"})
    assert resp.status_code == 503
    assert "run one" in resp.json()["detail"]
