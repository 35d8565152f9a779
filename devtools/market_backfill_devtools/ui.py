"""``./dev ui``: a local Airflow with the console plugin on the market DB, until Ctrl-C.

    python -m market_backfill_devtools.ui [--port 8080]
    python -m market_backfill_devtools.ui --loaded     # exit 0 when market_db holds bars

Starts api-server, scheduler, dag-processor and triggerer (LocalExecutor, the metadata DB
of ``AIRFLOW_HOME``), each in its own process group, logs under ``.local/logs``. Airflow's
simple auth manager asks for a login: user ``admin`` with a password generated once and
kept in ``$AIRFLOW_HOME/market-backfill-ui-passwords.json``. Prints the URL, the login and
the console's address when the scheduler is healthy; SIGINT or SIGTERM stops every group,
and it exits when no process of theirs is left (orphaned workers are reaped here).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from market_backfill_devtools.process_groups import adopt_orphans, reap_adopted, stop_groups

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
USER = "admin"


def sample_loaded() -> bool:
    """Whether ``market_db`` holds any clean bar."""
    from psycopg.errors import UndefinedTable

    from market_backfill.airflow.connections import hook_connector

    conn = hook_connector()()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM market_bars_ohlcv_1m_clean)")
            return bool(cur.fetchone()[0])
    except UndefinedTable:
        return False
    finally:
        conn.close()


def password(home: Path) -> tuple[Path, str]:
    """The passwords file of the simple auth manager and admin's password (made once)."""
    path = home / "market-backfill-ui-passwords.json"
    if path.exists():
        return path, json.loads(path.read_text())[USER]
    secret = secrets.token_urlsafe(12)
    path.write_text(json.dumps({USER: secret}))
    path.chmod(0o600)
    return path, secret


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as resp:
            return json.loads(resp.read()).get("scheduler", {}).get("status") == "healthy"
    except (urllib.error.URLError, ConnectionError, json.JSONDecodeError, TimeoutError):
        return False


def serve(port: int, logs: Path) -> int:
    home = Path(os.environ["AIRFLOW_HOME"])
    passwords, secret = password(home)
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": os.environ.get(
            "AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(48)
        ),
    }
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    adopt_orphans()  # workers whose component exits first are ours to reap
    try:
        for name in COMPONENTS:
            log = open(logs / f"ui-{name}.log", "wb")  # noqa: SIM115 - the child keeps it
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        print(f"==> process groups: {' '.join(str(p.pid) for p in procs)}", flush=True)
        deadline = time.monotonic() + 300
        while not stopping and not _healthy(url):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                print(f"Airflow did not start; see {logs}/ui-*.log", file=sys.stderr, flush=True)
                return 1
            time.sleep(1)
        if not stopping:
            print(
                f"==> Airflow: {url}\n"
                f"==> login: {USER} / {secret}\n"
                f"==> console: {url}/plugin/market-backfill (JSON: {url}/market-backfill/api/)\n"
                "==> Ctrl-C stops it",
                flush=True,
            )
        ticks = 0
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
            ticks += 1
            if ticks % 20 == 0:  # every 10 s: orphans that exited are not left as zombies
                reap_adopted(p.pid for p in procs)
        return 0 if stopping else 1
    finally:
        stop_groups(procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("MARKET_BACKFILL_UI_PORT", 8080))
    )
    parser.add_argument("--logs", type=Path, default=Path(".local/logs"))
    parser.add_argument("--loaded", action="store_true", help="exit 0 if market_db holds bars")
    args = parser.parse_args(argv)
    if args.loaded:
        return 0 if sample_loaded() else 1
    return serve(args.port, args.logs)


if __name__ == "__main__":
    sys.exit(main())
