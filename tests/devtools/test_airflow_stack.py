"""The end-to-end stack's metadata database waits for its lock instead of failing."""

from __future__ import annotations

import subprocess
import sys

from market_backfill_devtools.airflow_stack import AirflowStack, CeleryStack
from tests.conftest import ROOT

PROBE = (
    "from airflow import settings\n"
    "settings.configure_orm()\n"
    "conn = settings.engine.raw_connection()\n"
    "print(conn.execute('PRAGMA busy_timeout').fetchone()[0])\n"
)


def test_the_sqlite_metadata_waits_a_minute_for_its_lock(tmp_path):
    stack = AirflowStack(tmp_path / "airflow", ROOT / "dags", {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=stack.env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "60000"  # ms; sqlite3's default: 5000


def test_a_postgresql_metadata_gets_no_sqlite_arguments(tmp_path):
    stack = CeleryStack(
        tmp_path / "airflow",
        ROOT / "dags",
        {},
        metadata_url="postgresql://nobody@127.0.0.1:1/none",
        broker_url="redis://127.0.0.1:6379/0",
    )
    assert not any("CONNECT_ARGS" in key for key in stack.env)
