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


def test_the_report_reuses_the_detection_and_scans_again_only_repaired_months(market_db):
    """Months come from this run's detection (no second scan of the range), except those a
    repair touched; a target its detection did not cover is scanned whole."""
    from market_backfill.gaps.detect import scan
    from market_backfill.gaps.params import parse_params
    from market_backfill.gaps.tasks import completeness_report, detection_targets
    from market_backfill_devtools.sample import synthetic_bars
    from tests.conftest import store_bars
    from tests.market_backfill.gaps.holes import CAL, NQ, NQ_V0, utc

    start, end = utc("2025-11-24T00:00"), utc("2025-12-03T00:00")
    bars = synthetic_bars("NQ.v.0", start, end, seed=5, quiet_fraction=0)
    store_bars(bars)
    gp = parse_params({"symbols": [NQ], "start": "2025-11-24", "end": "2025-12-02"})
    [target] = detection_targets(gp)
    with market_db.connect() as conn:
        found = scan(conn, NQ_V0, CAL, gp.start, gp.end, gp.min_gap_minutes)
        # after the detection: five November and seven December bars go missing
        conn.execute(
            "DELETE FROM market_bars_ohlcv_1m_clean WHERE ts IN "
            "(SELECT ts FROM market_bars_ohlcv_1m_clean WHERE ts < '2025-12-01' LIMIT 5) "
            "OR ts IN (SELECT ts FROM market_bars_ohlcv_1m_clean WHERE ts >= '2025-12-01' "
            "LIMIT 7)"
        )
        conn.commit()
    detected = {NQ: {"start": target["start"], "end": target["end"], "months": found.months}}
    as_detected = {m["month"]: m["stored"] for m in found.months}
    repair = {"symbol": NQ, "gap_start": "2025-12-01T15:00:00+00:00"}
    repair["gap_end"] = "2025-12-01T15:30:00+00:00"

    def stored(detections, repairs) -> dict[str, int]:
        rows = completeness_report(gp, hook_connector(), [target], detections, repairs)
        return {r["month"]: r["stored"] for r in rows}

    assert stored(detected, []) == as_detected
    assert stored(detected, [repair]) == {
        "2025-11": as_detected["2025-11"],
        "2025-12": as_detected["2025-12"] - 7,
    }
    other_range = {NQ: {**detected[NQ], "start": "2025-11-20T00:00:00+00:00"}}
    rescanned = {"2025-11": as_detected["2025-11"] - 5, "2025-12": as_detected["2025-12"] - 7}
    assert stored(other_range, []) == rescanned
    assert stored({}, []) == rescanned
