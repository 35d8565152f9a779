"""``airflow dags test`` as the benchmarks run it: a fresh Airflow home, one CLI process
per run, its wall time from process start to exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg


def airflow_uri(url: str) -> str:
    """An Airflow connection URI for the libpq ``url`` (a socket directory as the host)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host = quote(str(info.get("host", "127.0.0.1")), safe="")
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{info.get('user', 'postgres')}@{host}{port}/{info['dbname']}"


def airflow_env(market_db_uri: str) -> dict[str, str]:
    """The environment of a fresh Airflow home (migrated) whose ``market_db`` connection is
    ``market_db_uri``."""
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_MARKET_DB": market_db_uri,
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    return env


def dags_test(env: dict, dags: Path, dag_id: str, conf: dict) -> float:
    """Seconds of one ``airflow dags test`` (process start to exit) of ``dag_id``; raises
    unless the run succeeded."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, "-c", json.dumps(conf)],
        env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    finished = [
        line for line in (proc.stdout + proc.stderr).splitlines() if "DagRun Finished:" in line
    ]
    if proc.returncode != 0 or not finished or ", state=success," not in finished[-1]:
        raise RuntimeError(f"{dag_id}: " + proc.stdout[-2000:] + proc.stderr[-2000:])
    return wall
