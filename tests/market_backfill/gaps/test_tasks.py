from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from market_backfill.airflow.connections import hook_connector
from market_backfill.airflow.context import RunContext
from market_backfill.db import audit
from market_backfill.gaps.tasks import announce_repairs

RUN = RunContext("gap_detection", "r1")


def _repair(label: str, status: str, written: int) -> None:
    connect = hook_connector()
    audit.record_start(connect, RUN.dag_id, RUN.run_id, "GLBX.MDP3:NQ", label)
    audit.record_finish(
        connect, RUN.dag_id, RUN.run_id, "GLBX.MDP3:NQ", label, status, {"rows_written": written}
    )


def test_repairs_that_wrote_bars_are_announced_others_skip(market_db):
    with pytest.raises(AirflowSkipException, match="wrote no bars"):
        announce_repairs(RUN)  # no repairs at all
    _repair("gap 2025-12-02T14:00", "success", 0)
    _repair("gap 2025-12-03T09:00", "failed", 30)  # a failed repair announces nothing
    with pytest.raises(AirflowSkipException, match="wrote no bars"):
        announce_repairs(RUN)
    _repair("gap 2025-12-04T10:00", "success", 12)
    assert announce_repairs(RUN) == 12
