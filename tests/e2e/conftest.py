"""One running Airflow for the whole e2e package, with its market DB and data."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from market_backfill_devtools.airflow_stack import AirflowStack
from market_backfill_devtools.dbn_writer import write_bars
from market_backfill_devtools.pg import create_database, drop_database
from market_backfill_devtools.sample import synthetic_bars
from tests.conftest import ROOT
from tests.support.gateway import API_KEY, Gateway, GatewayState

MONTHS = [("2025-10-01", "2025-11-01"), ("2025-11-01", "2025-12-01"), ("2025-12-01", "2026-01-01")]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="session")
def world(pg_admin, tmp_path_factory):
    """Market DB, monthly DBN files, the Databento stand-in, and a running Airflow."""
    work = tmp_path_factory.mktemp("e2e")
    db = create_database(pg_admin, prefix="e2e")
    files = work / "dbn"
    bars = {}
    for lo, hi in MONTHS:
        month = synthetic_bars("NQ.v.0", utc(lo), utc(hi), seed=int(lo[5:7]))
        bars[lo[:7]] = month
        write_bars(
            files / f"glbx-nq-{lo[:7]}.dbn.zst",
            month,
            dataset="GLBX.MDP3",
            instruments={"NQ.v.0": 1},
        )
    now = datetime.now(UTC)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    first_day = today - timedelta(days=2)  # the scheduled DAGs start here: two daily runs
    recent = synthetic_bars("NQ.v.0", now - timedelta(days=40), now + timedelta(days=1), seed=40)
    with Gateway(GatewayState(bars=recent), work) as gateway:
        env = {
            "AIRFLOW_CONN_MARKET_DB": db.airflow_uri,
            "AIRFLOW_CONN_DATABENTO": (
                f'{{"conn_type": "generic", "password": "{API_KEY}", '
                f'"extra": {{"gateway": "{gateway.url}"}}}}'
            ),
            "REQUESTS_CA_BUNDLE": str(gateway.ca_bundle),
            "MARKET_BACKFILL_DATA_DIR": str(work / "data"),
            "MARKET_BACKFILL_FIRST_DAY": first_day.date().isoformat(),
        }
        with AirflowStack(work / "airflow", ROOT / "dags", env) as stack:
            for dag_id in ("ohlcv_reingest", "triangle_backfill", "gap_detection"):
                stack.wait_for_dag(dag_id)
            yield {
                "stack": stack,
                "db": db,
                "files": files,
                "bars": bars,
                "gateway": gateway,
                "recent": recent,
                "first_day": first_day,
            }
    drop_database(pg_admin, db)


CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver; no browser download)."""
    if not (CHROMIUM and DRIVER):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs "
            "them: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1800",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
