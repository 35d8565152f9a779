"""A real Airflow 3 (api-server, scheduler, dag-processor, triggerer; LocalExecutor,
SQLite metadata, simple auth manager) on a free loopback port, for end-to-end tests.

Every component runs in its own process group, so stopping the stack ends the
LocalExecutor workers too; ``stop()`` always runs (context manager) and escalates to
SIGKILL if a group does not exit.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from market_backfill_devtools.process_groups import stop_groups

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 60}
"""sqlite3's connect arguments for the stack's metadata database (its sync engine): a
write waits up to a minute for the database lock. Python's default is 5 s, and while the
scheduler and running tasks write, an API request's write (its audit-log row) then fails
with "database is locked": a 500 instead of the answer."""
SQLITE_CONNECT_ARGS_ASYNC: dict[str, Any] = {"timeout": 60}
"""The same for the async engine (aiosqlite passes them to sqlite3)."""
_SQLITE_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{__name__}.SQLITE_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": f"{__name__}.SQLITE_CONNECT_ARGS_ASYNC",
    # a database error's answer names its cause ("database is locked": retried, request())
    "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
}
REQUEST_TIMEOUT_S = 120
"""How long a REST call may take: longer than the SQLite lock wait, so that a request
which waited the whole minute gets its answer (an error to retry) instead of a timeout."""
LOCKED = "database is locked"


def _locked(code: int, answer: bytes) -> bool:
    """Whether an error answer means the metadata database was locked (nothing written)."""
    return code == 503 or (code == 500 and LOCKED in answer.decode(errors="replace"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AirflowStack:
    def __init__(
        self,
        home: Path,
        dags: Path,
        extra_env: dict[str, str],
        components: tuple[str, ...] = COMPONENTS,
    ) -> None:
        self.home = home
        self.components = components
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(dags.parent / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            **_SQLITE_ENV,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "market-backfill-e2e-secret",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            **extra_env,
        }
        self.procs: list[subprocess.Popen] = []
        self._token: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 180) -> AirflowStack:
        self.home.mkdir(parents=True, exist_ok=True)
        for command in (["airflow", "db", "migrate"], ["market_backfill.airflow.pools"]):
            subprocess.run(
                [sys.executable, "-m", *command],
                env=self.env,
                check=True,
                capture_output=True,
                timeout=600,
            )
        for name in self.components:
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                health = self.get("/api/v2/monitor/health", auth=False)
                part = "scheduler" if "scheduler" in self.components else "metadatabase"
                if health.get(part, {}).get("status") == "healthy":
                    return self
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(f"Airflow did not become healthy; logs in {self.home}")

    def _check_alive(self) -> None:
        for name, proc in zip(self.components, self.procs, strict=False):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {proc.returncode}; "
                    f"see {self.home / (name + '.log')}"
                )

    def stop(self) -> None:
        stop_groups(self.procs)
        self.procs.clear()

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- REST API v2 (the calls the UI makes) --------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            self._token = self.get("/auth/token", auth=False)["access_token"]
        return self._token

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """One REST call. Retried (up to 5 tries) when Airflow's metadata database was
        locked (SQLite here) and the transaction rolled back: a 503, or a 500 naming the
        lock (two of Airflow's writers in the API server can hold each other off until
        the lock wait ends, seen when a trigger met a task's start)."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(1, 6):
            req = urllib.request.Request(self.url + path, data=data, method=method)
            req.add_header("Content-Type", "application/json")
            if auth:
                req.add_header("Authorization", f"Bearer {self.token()}")
            try:
                with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
                    text = resp.read().decode()
                return json.loads(text) if text else None
            except urllib.error.HTTPError as exc:
                answer = exc.read()
                if attempt == 5 or not _locked(exc.code, answer):
                    # the answer was read: raised again with it, for the caller to read
                    raise urllib.error.HTTPError(
                        exc.url, exc.code, exc.msg, exc.hdrs, io.BytesIO(answer)
                    ) from None
                time.sleep(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, auth: bool = True) -> Any:
        return self.request("GET", path, auth=auth)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body)

    # -- helpers -----------------------------------------------------------------------------
    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} never appeared")

    def trigger(self, dag_id: str, conf: dict) -> str:
        run = self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def wait_until_idle(self, timeout: float = 300) -> None:
        """Wait until no DAG run is queued or running (e.g. the asset-triggered runs that
        follow a reingest): Airflow's SQLite metadata DB takes one writer at a time."""
        deadline = time.monotonic() + timeout
        while True:
            busy = self.get("/api/v2/dags/~/dagRuns?state=queued&state=running&limit=1")
            if busy["total_entries"] == 0:
                return
            assert time.monotonic() < deadline, f"runs still active: {busy['dag_runs']}"
            time.sleep(1)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} did not finish")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")[
            "task_instances"
        ]


CELERY_SETTINGS = {  # docker-compose.yaml sets the same (tests/test_deployment.py)
    # a lost worker costs seconds, not hours (README, "Running with Celery"): a worker
    # takes one message per free slot and acknowledges it when the task ends, so a killed
    # worker strands only what it was running; the scheduler notices those by their
    # missing heartbeats and retries them on another worker
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "1800",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}


class CeleryStack(AirflowStack):
    """The stack with the CeleryExecutor: PostgreSQL metadata database, Redis broker and
    ``workers`` Celery workers (``worker1``, ...; two task slots each), every one in its
    own process group. A task instance's ``hostname`` names its worker."""

    def __init__(
        self,
        home: Path,
        dags: Path,
        extra_env: dict[str, str],
        *,
        metadata_url: str,
        broker_url: str,
        workers: int = 2,
    ) -> None:
        super().__init__(home, dags, extra_env)
        for key in _SQLITE_ENV:  # PostgreSQL metadata: no sqlite3 arguments
            self.env.pop(key)
        self.env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
                "AIRFLOW__CELERY__BROKER_URL": broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "market_backfill_devtools.worker_name.hostname",
                **CELERY_SETTINGS,
            }
        )
        self.workers = {f"worker{i}": None for i in range(1, workers + 1)}

    def start(self, timeout: float = 240) -> CeleryStack:
        super().start(timeout)
        for name in self.workers:
            self.workers[name] = self.start_worker(name)
        return self

    def start_worker(self, name: str) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "celery",
                "worker",
                "-H",
                f"{name}@%h",
                "--skip-serve-logs",
            ],
            env={**self.env, "MARKET_BACKFILL_WORKER_NAME": name},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill_worker(self, name: str) -> None:
        """``kill -9`` the worker's whole process group (it and the tasks it runs)."""
        proc = self.workers[name]
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
