"""What a task body needs of its Airflow context, as one typed value (imported only
inside tasks, never at DAG parse time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from market_backfill.airflow.connections import MARKET_DB_CONN_ID, hook_connector
from market_backfill.db.connection import Connector, ReusingConnector

INTERVAL_RUN_TYPES = ("scheduled", "backfill")
"""Runs that stand for their data interval. A manual run's interval is inferred by the
timetable, not asked for (the form's dates, or catch-up, say what it loads); an
asset-triggered run's interval spans event times, not the data's."""

LABEL_KEY = "chunk_label"
"""Context key of a mapped instance's label: every mapped task's ``map_index_template``
is ``{{ chunk_label }}``."""


@dataclass(frozen=True)
class RunContext:
    """The DAG run a task belongs to: ids for the audit trail, its params, its end."""

    dag_id: str
    run_id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    run_end: datetime | None = None
    conn_id: str = MARKET_DB_CONN_ID
    interval: tuple[datetime, datetime] | None = None  # what a scheduled/backfill run loads

    @cached_property
    def connect(self) -> Connector:
        """The task's connector to the market database (``market_db``): its transactions
        reuse one connection (:class:`ReusingConnector`), closed when the context goes."""
        return ReusingConnector(hook_connector(self.conn_id))


def run_end(context: Mapping[str, Any]) -> datetime | None:
    """End of the run's data: data interval end (scheduled runs), else the logical date,
    else None (manual and asset-triggered runs in Airflow 3 carry neither)."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return value
    return None


def data_interval(context: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """``[data_interval_start, data_interval_end)`` of a run that stands for it (see
    :data:`INTERVAL_RUN_TYPES`) when it is not empty, else None."""
    dag_run = context.get("dag_run")
    run_type = getattr(getattr(dag_run, "run_type", None), "value", None) or str(
        getattr(dag_run, "run_type", "")
    )
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if run_type not in INTERVAL_RUN_TYPES or start is None or end is None or end <= start:
        return None
    return start, end


def current_run(label: str | None = None) -> RunContext:
    """The running task's :class:`RunContext`; ``label`` names a mapped instance in the UI."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    if label is not None:
        context[LABEL_KEY] = label  # type: ignore[literal-required]
    dag_run = context["dag_run"]
    return RunContext(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        params=dict(context.get("params") or {}),
        run_end=run_end(context),
        interval=data_interval(context),
    )


def push_xcom(key: str, value: Any) -> None:
    """Push ``value`` as the running task's XCom ``key`` (beside its return value)."""
    from airflow.sdk import get_current_context

    get_current_context()["ti"].xcom_push(key=key, value=value)


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length``: the most mapped instances a task may have."""
    from airflow.sdk import conf

    return conf.getint("core", "max_map_length", fallback=1024)
