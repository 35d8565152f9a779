"""Alerts: what a failed run, a long gap or a stale series tells its operators, and how it
is sent (pure, no Airflow: the notifier in ``market_backfill.airflow.notify`` wires it).

A message goes to the target of the Airflow connection ``market_alerts``: a webhook
(``http``/``https``: the alert as JSON, POSTed to the connection's URL) or e-mail
(``smtp``, through the smtp provider's hook; recipients in the extra ``{"to": [...]}``).
Without the connection an alert is only logged.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

ALERTS_CONN_ID = "market_alerts"
TRADING_DAY_MINUTES = 1380  # one CME Globex trading day: 23 hours
WARNING_MINUTES = TRADING_DAY_MINUTES  # a gap longer than a trading day
CRITICAL_MINUTES = 7 * TRADING_DAY_MINUTES  # longer than seven


@dataclass(frozen=True)
class Alert:
    """One message: ``level`` is ``failure``, ``critical`` or ``warning``."""

    level: str
    subject: str
    lines: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> str:
        return "\n".join(self.lines)

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "text": f"{self.subject}\n{self.body}"}).encode()


def failure_alert(dag_id: str, run_id: str, rows: Sequence[Mapping[str, Any]]) -> Alert:
    """A failed run's alert from its ``backfill_runs`` rows: which chunks failed and why."""
    failed = [r for r in rows if r["status"] != "success" and r["symbol"] != "*"]
    total = next((r for r in rows if (r["symbol"], r["chunk"]) == ("*", "total")), None)
    lines = [f"{r['symbol']} {r['chunk']}: {r.get('error') or r['status']}" for r in failed]
    if not failed and total is not None and total.get("error"):
        lines = [str(total["error"])]
    if not lines:
        lines = ["the run failed before any chunk ran (see the plan task's log)"]
    return Alert(
        "failure",
        f"market-backfill: {dag_id} run {run_id} failed ({len(failed)} chunk(s))",
        lines,
        {
            "dag_id": dag_id,
            "run_id": run_id,
            "failed_chunks": [
                {"symbol": r["symbol"], "chunk": r["chunk"], "error": r.get("error")}
                for r in failed
            ],
        },
    )


def outages(
    gaps: Sequence[tuple[datetime, datetime, int, str]],
    trading_between: Callable[[datetime, datetime], int],
) -> list[dict[str, Any]]:
    """Merge consecutive gaps (ordered ``(start, end, minutes, status)``) with no trading
    minute between them (a gap stops at every daily break and weekend: an outage of three
    days is several gaps) into outages: start, end, trading minutes, how many gaps."""
    merged: list[dict[str, Any]] = []
    for start, end, minutes, status in gaps:
        last = merged[-1] if merged else None
        if last is not None and trading_between(last["end"], start) == 0:
            last.update(end=end, minutes=last["minutes"] + minutes, gaps=last["gaps"] + 1)
            if status == "unfillable":
                last["status"] = status
        else:
            merged.append(
                {"start": start, "end": end, "minutes": minutes, "gaps": 1, "status": status}
            )
    return merged


def gap_severity(minutes: int) -> str | None:
    """``critical`` for a gap of over seven trading days of minutes, ``warning`` for over
    one, else None."""
    if minutes > CRITICAL_MINUTES:
        return "critical"
    if minutes > WARNING_MINUTES:
        return "warning"
    return None


def data_alert(
    dag_id: str,
    run_id: str,
    gaps: Sequence[Mapping[str, Any]],
    stale: Sequence[Mapping[str, Any]],
) -> Alert | None:
    """The alert of a gap run: open gaps with a severity and series lagging behind; None
    when there is nothing to say. Its level is the worst severity."""
    if not gaps and not stale:
        return None
    lines = [
        f"{g['severity']}: {g['symbol']} missing {g['gap_start']} .. {g['gap_end']} "
        f"({g['minutes']} trading minutes in {g['gaps']} gap(s))"
        for g in gaps
    ]
    lines += [
        f"stale: {s['symbol']} newest bar {s['newest_bar']}, {s['lag_minutes']} trading "
        f"minutes behind (max {s['max_lag_minutes']})"
        for s in stale
    ]
    level = "critical" if any(g["severity"] == "critical" for g in gaps) else "warning"
    return Alert(
        level,
        f"market-backfill: {dag_id} {level}: {len(gaps)} long gap(s), {len(stale)} stale series",
        lines,
        {"dag_id": dag_id, "run_id": run_id, "gaps": list(gaps), "stale": list(stale)},
    )


def send(alert: Alert, connection: Any | None, timeout_s: float = 10.0) -> str:
    """Send ``alert`` to ``connection`` (an Airflow connection, or None: only logged);
    return where it went."""
    log.warning("%s\n%s", alert.subject, alert.body)
    if connection is None:
        return "log"
    kind = (connection.conn_type or "").lower()
    if kind == "smtp":
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        extra = connection.extra_dejson
        to = extra.get("to") or []
        with SmtpHook(smtp_conn_id=connection.conn_id) as hook:
            hook.send_email_smtp(
                to=to,
                subject=alert.subject,
                html_content="<pre>" + alert.body + "</pre>",
                from_email=extra.get("from") or "market-backfill@localhost",
            )
        return f"smtp:{','.join(to) if isinstance(to, list) else to}"
    url = webhook_url(connection)
    request = urllib.request.Request(
        url, data=alert.to_json(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - operator's URL
        response.read()
    return "webhook"


def webhook_url(connection: Any) -> str:
    """The webhook's URL: the connection's host when it is a URL, else built from schema
    (http/https), host, port and the extra ``endpoint``."""
    host = connection.host or ""
    if host.startswith(("http://", "https://")):
        return host
    scheme = connection.schema or (
        connection.conn_type if connection.conn_type in ("http", "https") else "https"
    )
    port = f":{connection.port}" if connection.port else ""
    endpoint = connection.extra_dejson.get("endpoint", "")
    return f"{scheme}://{host}{port}{endpoint}"
