"""The docker-compose deployment, checked for structure (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_official_airflow3_services_are_there():
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-init",
        "airflow-db",
        "market-db",
    ):
        assert name in SERVICES, name
    assert SERVICES["airflow-apiserver"]["command"] == "api-server"
    assert SERVICES["airflow-dag-processor"]["command"] == "dag-processor"


def test_celery_profile_has_redis_and_workers():
    assert SERVICES["redis"]["profiles"] == ["celery"]
    worker = SERVICES["airflow-worker"]
    assert worker["profiles"] == ["celery"]
    assert worker["command"] == "celery worker"
    assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_the_project_is_installed_not_put_on_a_path():
    common = SERVICES["airflow-scheduler"]
    env = common["environment"]
    assert "PYTHONPATH" not in env
    assert "PYTHONPATH" not in (ROOT / "docker-compose.yaml").read_text()
    mounts = {v.split(":")[0]: v.split(":")[1] for v in common["volumes"] if isinstance(v, str)}
    project = mounts["."]
    assert common["working_dir"] == project  # requirements.txt's "." is the project
    assert env["_PIP_ADDITIONAL_REQUIREMENTS"] == "-r requirements.txt"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{project}/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{project}/plugins"


def test_every_container_shares_one_data_directory():
    for name in ("airflow-scheduler", "airflow-worker", "airflow-apiserver"):
        service = SERVICES[name]
        env = service.get("environment") or SERVICES["airflow-scheduler"]["environment"]
        path = env["MARKET_BACKFILL_DATA_DIR"]
        assert f"market-backfill-data:{path}" in service["volumes"]
    assert "market-backfill-data" in COMPOSE["volumes"]


def test_image_matches_the_pinned_airflow():
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert SERVICES["airflow-scheduler"]["image"].startswith(f"apache/airflow:{pinned[1]}")


def test_databases_have_volumes_and_healthchecks():
    for name in ("airflow-db", "market-db"):
        assert SERVICES[name]["healthcheck"]["test"][1] == "pg_isready"
        assert SERVICES[name]["volumes"]
    assert set(COMPOSE["volumes"]) >= {"airflow-db-data", "market-db-data"}


def test_env_example_has_placeholders_only():
    text = (ROOT / ".env.example").read_text()
    assert "AIRFLOW_CONN_MARKET_DB=" in text
    assert "AIRFLOW_CONN_DATABENTO=" in text
    assert "db-REPLACE-ME" in text
    keys = re.findall(r"db-[A-Za-z0-9]{20,}", text)
    assert keys == [], "no real-looking API key in .env.example"


def test_the_init_container_creates_the_pools_after_migrating():
    command = " ".join(SERVICES["airflow-init"]["command"])
    assert "/entrypoint" in command  # the project is installed before its module runs
    assert command.index("airflow db migrate") < command.index(
        "python -m market_backfill.airflow.pools"
    )


def test_the_init_container_hands_the_data_volume_and_build_folders_to_airflow_uid():
    """The init container runs as root: after installing the project it gives the data
    volume (a named volume is created root-owned) and the in-tree build folders its pip
    left to AIRFLOW_UID, whose containers write there; the command is valid bash."""
    import subprocess

    assert SERVICES["airflow-init"]["user"] == "0:0"
    script = SERVICES["airflow-init"]["command"][-1]
    data = COMPOSE["x-airflow-common"]["environment"]["MARKET_BACKFILL_DATA_DIR"]
    assert f'chown -R "${{AIRFLOW_UID:-50000}}:0" {data}' in script
    assert "build market_backfill.egg-info" in script
    assert script.index("market_backfill.airflow.pools") < script.index("chown")
    subprocess.run(["bash", "-n", "-c", script], check=True)


@pytest.mark.airflow
def test_dev_run_runs_every_stage_on_the_sample_and_prints_their_tables(market_db, tmp_path):
    """``./dev run`` without params: reingest, gap detection, triangles and features on
    the bundled sample, each through ``airflow dags test``, each stage's table printed."""
    import os
    import subprocess

    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_MARKET_DB": market_db.airflow_uri,
    }
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # its own metadata DB
    done = subprocess.run(
        [str(ROOT / "dev"), "run"], env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for dag_id in ("ohlcv_reingest", "gap_detection", "triangle_backfill", "feature_backfill"):
        assert f"==> airflow dags test {dag_id}" in out
        assert f"{dag_id} run manual__" in out  # the report's header
    # the reingest's table as the README shows it: a row per chunk, then the total
    rows = [line.split() for line in out.splitlines() if line.startswith(("GLBX.MDP3:NQ", "*"))]
    assert rows[:3] == [
        ["GLBX.MDP3:NQ", "NQ", "2025-11", "success", "1", "26931", "26931", "-", "26931", "54"]
        + rows[0][10:],
        ["GLBX.MDP3:NQ", "NQ", "2025-12", "success", "1", "20428", "20428", "-", "20428", "41"]
        + rows[1][10:],
        ["*", "total", "success", "1", "47359", "47359", "-", "47359", "95", "95", "0", "-"],
    ]
    with market_db.connect() as conn:
        counts = dict(
            conn.execute(
                "SELECT dag_id, status FROM backfill_runs WHERE symbol = '*' AND chunk = 'total'"
            ).fetchall()
        )
        bars = conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()[0]
        features = conn.execute(
            "SELECT count(*) FROM market_features_v1 WHERE timeframe = '1m'"
        ).fetchone()[0]
    assert counts == dict.fromkeys(
        ("ohlcv_reingest", "gap_detection", "triangle_backfill", "feature_backfill"), "success"
    )
    assert features == bars > 40_000


def test_the_celery_profile_runs_with_the_settings_the_e2e_test_proves():
    from market_backfill_devtools.airflow_stack import CELERY_SETTINGS

    env = SERVICES["airflow-worker"].get("environment") or {}
    common = COMPOSE["x-airflow-common"]["environment"]
    for key, value in CELERY_SETTINGS.items():
        assert str({**common, **env}[key]) == value, key


@pytest.mark.airflow
def test_dev_ui_loads_the_sample_serves_the_console_and_stops_cleanly(market_db, tmp_path):
    """``./dev ui`` on a market DB without bars: the sample is loaded, Airflow starts with
    the console, the printed login opens it, and SIGTERM ends every process group."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_MARKET_DB": market_db.airflow_uri,
        "MARKET_BACKFILL_UI_PORT": str(port),
    }
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # its own metadata DB
    proc = subprocess.Popen(
        [str(ROOT / "dev"), "ui"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 1500
        while not any(line.startswith("==> login:") for line in lines):
            assert time.monotonic() < deadline, "".join(lines[-40:])
            line = proc.stdout.readline()
            assert line, "".join(lines[-40:])  # exited early
            lines.append(line)
        text = "".join(lines)
        assert "loading the sample first" in text
        url = next(ln.split()[-1] for ln in lines if ln.startswith("==> Airflow:"))
        user, _, secret = next(ln for ln in lines if ln.startswith("==> login:")).split()[2:]
        assert (url, user) == (f"http://127.0.0.1:{port}", "admin")
        groups = [int(g) for g in next(ln for ln in lines if "process groups" in ln).split()[3:]]

        def call(path: str, body: dict | None = None, token: str | None = None):
            req = urllib.request.Request(
                url + path,
                data=None if body is None else json.dumps(body).encode(),
                headers={"Content-Type": "application/json"}
                | ({"Authorization": f"Bearer {token}"} if token else {}),
            )
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())

        token = call("/auth/token", {"username": user, "password": secret})["access_token"]
        rows = call("/market-backfill/api/completeness", token=token)
        months = {r["month"]: r for r in rows if r["series"] == "NQ.v.0"}
        assert months["2025-11"]["stored"] > 20_000
        assert months["2025-12"]["stored"] > 10_000
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(120)
    for group in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
