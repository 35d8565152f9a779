"""The end-to-end stack's metadata database waits for its lock instead of failing."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
import urllib.error

import pytest

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


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, body) of the server's ``answers``."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.server.seen += 1  # type: ignore[attr-defined]
        status, body = self.server.answers.pop(0)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def _serve(answers: list[tuple[int, str]]) -> http.server.HTTPServer:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answers)
    server.answers, server.seen = answers, 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stack_at(server: http.server.HTTPServer, tmp_path) -> AirflowStack:
    stack = AirflowStack(tmp_path / "airflow", ROOT / "dags", {})
    stack.url = f"http://127.0.0.1:{server.server_address[1]}"
    return stack


LOCKED_500 = '{"detail": {"reason": "Database error", "orig_error": "database is locked"}}'


def test_a_request_the_locked_metadata_database_refused_is_sent_again(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    server = _serve([(500, LOCKED_500), (503, "{}"), (200, '{"dag_run_id": "r1"}')])
    try:
        assert _stack_at(server, tmp_path).request("POST", "/x", {}, auth=False) == {
            "dag_run_id": "r1"
        }
        assert server.seen == 3  # type: ignore[attr-defined]
    finally:
        server.shutdown()


def test_other_errors_are_raised_at_once_with_their_body(tmp_path):
    server = _serve([(500, '{"detail": "boom"}'), (400, '{"detail": "start"}')])
    try:
        stack = _stack_at(server, tmp_path)
        for code, text in ((500, "boom"), (400, "start")):
            with pytest.raises(urllib.error.HTTPError) as err:
                stack.request("POST", "/x", {}, auth=False)
            assert err.value.code == code
            assert text in err.value.read().decode()
        assert server.seen == 2  # type: ignore[attr-defined]
    finally:
        server.shutdown()


def test_the_stack_answers_database_errors_with_their_cause(tmp_path):
    stack = AirflowStack(tmp_path / "airflow", ROOT / "dags", {})
    assert stack.env["AIRFLOW__API__EXPOSE_STACKTRACE"] == "True"
