"""The run-failure notifier every DAG carries (``on_failure_callback``), and the sending of
data alerts from tasks. Light at import: the DAG files import it when they are parsed."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def alerts_connection() -> Any | None:
    """The ``market_alerts`` connection, or None when it is not defined."""
    from airflow.sdk import BaseHook

    from market_backfill.alerts import ALERTS_CONN_ID

    try:
        return BaseHook.get_connection(ALERTS_CONN_ID)
    except Exception:  # noqa: BLE001 - not defined: alerts go to the log only
        return None


def send_alert(alert: Any) -> str:
    """Send an alert to ``market_alerts``; a failure to send is logged, never raised (an
    alert must not fail the run it reports on)."""
    from market_backfill.alerts import send

    try:
        return send(alert, alerts_connection())
    except Exception as exc:  # noqa: BLE001 - see above
        log.error("could not send the alert %r: %s: %s", alert.subject, type(exc).__name__, exc)
        return "failed"


class RunFailureNotifier(BaseNotifier):
    """On a failed DAG run: which chunks failed and why (from ``backfill_runs``), to the
    ``market_alerts`` target."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render (no template fields). Airflow's default needs the context's
        DAG to make a Jinja environment, which the serialized DAG of ``dag.test()`` lacks."""

    def notify(self, context: Any) -> None:
        from market_backfill.airflow.connections import hook_connector
        from market_backfill.alerts import failure_alert
        from market_backfill.db import audit

        dag_run = context["dag_run"]
        try:
            rows = audit.run_rows(hook_connector(), dag_run.dag_id, dag_run.run_id)
        except Exception as exc:  # noqa: BLE001 - the database may be why the run failed
            log.error("no run summary for the alert: %s: %s", type(exc).__name__, exc)
            rows = []
        send_alert(failure_alert(dag_run.dag_id, dag_run.run_id, rows))
