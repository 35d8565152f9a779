from __future__ import annotations

from market_backfill.airflow.connections import hook_connector
from market_backfill.gaps.detect import scan
from market_backfill.gaps.params import parse_params
from market_backfill.gaps.repair import repair_gap
from market_backfill.gaps.store import open_gaps, record_gaps
from market_backfill.planning import Chunk
from market_backfill.sources.dbn_file import DbnFileSource
from market_backfill.timeutil import to_ns
from market_backfill_devtools.dbn_writer import write_bars
from tests.conftest import store_bars
from tests.market_backfill.gaps.holes import CAL, END, HOLES, NQ, NQ_V0, START, bars_with_holes, utc


def test_repair_fills_from_a_source_with_the_data_and_keeps_open_without(market_db, tmp_path):
    full, partial = bars_with_holes(HOLES)
    store_bars(partial)
    with market_db.connect() as conn:
        record_gaps(conn, NQ_V0, START, END, scan(conn, NQ_V0, CAL, START, END, 5).gaps)
        todo = open_gaps(conn, [NQ_V0], START, END, 100)
    assert len(todo) == 5
    # a source that has only the first three gaps' minutes
    have = full[full.ts < to_ns("2025-11-25T00:00")].assign(symbol="NQ.v.0")
    path = write_bars(tmp_path / "nq.dbn", have, dataset="GLBX.MDP3", instruments={"NQ.v.0": 7})
    gp = parse_params(
        {
            "symbols": [NQ],
            "start": "2025-11-23",
            "end": "2025-11-28",
            "source": "dbn_file",
            "dbn_path": str(path),
        },
        now=utc("2026-01-01"),
    )
    source = DbnFileSource(str(path))
    results = []
    for gap in todo:
        item = {
            **gap,
            **Chunk(NQ, "gap", gap["gap_start"], gap["gap_end"]).to_dict(),
            "label": gap["label"],
        }
        results.append(repair_gap(item, gp, source, hook_connector()))
    assert [r["gap_status"] for r in results] == ["filled", "filled", "filled", "open", "open"]
    assert results[0]["rows_written"] == 12
    assert "no bars" in results[3]["error"]
    with market_db.connect() as conn:
        rows = conn.execute(
            "SELECT status, attempts, last_error IS NOT NULL, filled_at IS NOT "
            "NULL FROM ohlcv_gaps ORDER BY gap_start"
        ).fetchall()
        assert rows == [("filled", 1, False, True)] * 3 + [("open", 1, True, False)] * 2
        again = scan(conn, NQ_V0, CAL, START, utc("2025-11-25T00:00"), 5)
        assert again.gaps == []
        assert record_gaps(conn, NQ_V0, START, utc("2025-11-25T00:00"), again.gaps)["new"] == 0


def test_a_retried_repair_reads_what_its_run_paid_for_and_a_later_run_asks_again(
    market_db, gateway, synthetic_bars_continuous, data_dir
):
    """Gap repairs through the Databento stand-in: the repair task run again in the same
    run (an Airflow retry, a cleared task) makes no second data request; the next run
    asks afresh (a gap left open may have been published since)."""
    from market_backfill.airflow.context import RunContext
    from market_backfill.gaps.tasks import run_repair
    from market_backfill.sources.cache import repair_cache_dir

    src = synthetic_bars_continuous
    week = src[
        (src.symbol == "NQ.v.0") & (src.ts >= to_ns("2025-02-03")) & (src.ts < to_ns("2025-02-08"))
    ]
    hole = (week.ts >= to_ns("2025-02-04T15:00")) & (week.ts < to_ns("2025-02-04T15:30"))
    store_bars(week[~hole])
    start, end = utc("2025-02-03"), utc("2025-02-08")
    with market_db.connect() as conn:
        record_gaps(conn, NQ_V0, start, end, scan(conn, NQ_V0, CAL, start, end, 5).gaps)
        (gap,) = open_gaps(conn, [NQ_V0], start, end, 100)
    # the repair task's argument, as plan_repairs maps it
    item = {
        **gap,
        **Chunk(NQ, "gap", gap["gap_start"], gap["gap_end"]).to_dict(),
        "label": gap["label"],
    }
    params = {"symbols": [NQ], "start": "2025-02-03", "end": "2025-02-07", "source": "databento"}
    first = RunContext("gap_detection", "scheduled__2025-02-08T00:00:00+00:00", params)
    assert run_repair(item, first)["rows_written"] == 30
    assert run_repair(item, first)["rows_written"] == 0  # cleared: the response it paid for
    assert len(gateway.state.data_requests()) == 1
    assert repair_cache_dir(first.run_id).is_relative_to(data_dir)
    later = RunContext("gap_detection", "scheduled__2025-02-09T00:00:00+00:00", params)
    run_repair(item, later)
    assert len(gateway.state.data_requests()) == 2
