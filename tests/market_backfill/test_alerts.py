"""Alerts: what they say, their severity, and their delivery to a real webhook."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from market_backfill.alerts import (
    CRITICAL_MINUTES,
    WARNING_MINUTES,
    data_alert,
    failure_alert,
    gap_severity,
    send,
    webhook_url,
)
from tests.support.webhook import WebhookReceiver

ROWS = [
    {"symbol": "GLBX.MDP3:NQ", "chunk": "2025-11", "status": "success", "error": None},
    {
        "symbol": "GLBX.MDP3:NQ",
        "chunk": "2025-12",
        "status": "failed",
        "error": "NQ 2025-12: SourceError: DBN file is truncated",
    },
    {"symbol": "*", "chunk": "total", "status": "failed", "error": "1 of 2 chunks"},
]


def test_a_failure_names_the_failed_chunks_and_why():
    alert = failure_alert("ohlcv_reingest", "manual__1", ROWS)
    assert alert.level == "failure"
    assert alert.subject == "market-backfill: ohlcv_reingest run manual__1 failed (1 chunk(s))"
    assert alert.lines == ["GLBX.MDP3:NQ 2025-12: NQ 2025-12: SourceError: DBN file is truncated"]
    assert alert.details["failed_chunks"][0]["chunk"] == "2025-12"
    before_chunks = failure_alert("d", "r", [])
    assert "before any chunk ran" in before_chunks.body


@pytest.mark.parametrize(
    ("minutes", "severity"),
    [
        (WARNING_MINUTES, None),
        (WARNING_MINUTES + 1, "warning"),
        (CRITICAL_MINUTES, "warning"),
        (CRITICAL_MINUTES + 1, "critical"),
    ],
)
def test_gap_severity_by_trading_days(minutes, severity):
    assert gap_severity(minutes) == severity


def test_a_data_alert_takes_the_worst_severity_and_nothing_says_nothing():
    assert data_alert("gap_detection", "r", [], []) is None
    gap = {"symbol": "X", "gap_start": "a", "gap_end": "b", "minutes": 9999, "gaps": 3}
    gap["severity"] = "critical"
    stale = {"symbol": "Y", "newest_bar": "c", "lag_minutes": 90, "max_lag_minutes": 60}
    alert = data_alert("gap_detection", "r", [gap], [stale])
    assert alert.level == "critical"
    assert alert.lines[1] == "stale: Y newest bar c, 90 trading minutes behind (max 60)"
    assert data_alert("gap_detection", "r", [], [stale]).level == "warning"


def test_webhook_urls_from_a_connection():
    assert webhook_url(Connection(conn_id="a", conn_type="http", host="https://h.example/x")) == (
        "https://h.example/x"
    )
    built = Connection(
        conn_id="a",
        conn_type="http",
        host="h.example",
        port=8443,
        schema="https",
        extra=json.dumps({"endpoint": "/hook"}),
    )
    assert webhook_url(built) == "https://h.example:8443/hook"


def test_an_alert_reaches_a_real_webhook_and_without_a_target_is_only_logged(caplog):
    alert = failure_alert("ohlcv_reingest", "manual__1", ROWS)
    with WebhookReceiver() as hook:
        where = send(alert, Connection(conn_id="market_alerts", conn_type="http", host=hook.url))
    assert where == "webhook"
    assert len(hook.received) == 1
    body = hook.received[0]
    assert body["level"] == "failure"
    assert body["details"]["failed_chunks"][0]["error"].endswith("DBN file is truncated")
    assert body["text"].startswith("market-backfill: ohlcv_reingest run manual__1 failed")
    assert send(alert, None) == "log"
    assert "failed (1 chunk(s))" in caplog.text


def test_gaps_split_by_breaks_merge_into_one_outage():
    from datetime import UTC, datetime

    from market_backfill.alerts import outages
    from market_backfill.trading_calendar import trading_minutes

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    gaps = [  # Tuesday 14:00 UTC to the 16:00 CT close, the whole next trade date, then apart
        (at("2025-12-02T14:00"), at("2025-12-02T22:00"), 480, "open"),
        (at("2025-12-02T23:00"), at("2025-12-03T22:00"), 1380, "unfillable"),
        (at("2025-12-04T10:00"), at("2025-12-04T10:30"), 30, "open"),
    ]
    found = outages(gaps, lambda a, b: len(trading_minutes("CME Globex Equity", a, b)))
    assert [(o["minutes"], o["gaps"], o["status"]) for o in found] == [
        (1860, 2, "unfillable"),
        (30, 1, "open"),
    ]
    assert gap_severity(found[0]["minutes"]) == "warning"


def test_an_alert_reaches_a_real_smtp_server_through_the_smtp_provider(monkeypatch):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    import socket

    with socket.socket() as probe:  # a free port (the controller cannot take port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        extra = {
            "to": ["ops@example.com"],
            "from": "backfill@example.com",
            "disable_tls": True,
            "disable_ssl": True,
        }
        spec = {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_MARKET_ALERTS", json.dumps(spec))
        conn = Connection(
            conn_id="market_alerts",
            conn_type="smtp",
            host="127.0.0.1",
            port=port,
            extra=json.dumps(extra),
        )
        alert = failure_alert("ohlcv_reingest", "manual__1", ROWS)
        assert send(alert, conn) == "smtp:ops@example.com"
    finally:
        controller.stop()
    (message,) = received
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == alert.subject
    assert "DBN file is truncated" in message.get_payload()[0].get_payload(decode=True).decode()
