"""End to end on a running Airflow, through the REST API v2 (the calls the UI makes).

One Airflow stack for the package (tests/e2e/conftest.py): its scheduled runs (catch-up
from the Databento stand-in, the triangle DAG after it through the Asset, gap detection
and repair) run while the manual scenarios (date params, refused params, one failed
chunk cleared and retried) are driven through the API.
"""

from __future__ import annotations

import time
import urllib.error
from datetime import datetime, timedelta

import pytest

from market_backfill.timeutil import to_ns
from tests.e2e.conftest import utc as _utc

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]


def _count(db, lo: str, hi: str) -> tuple[int, int]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean "
            "WHERE ts >= %s AND ts < %s",
            (_utc(lo), _utc(hi)),
        ).fetchone()


def _runs(stack, dag_id: str) -> list[dict]:
    return stack.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=50")["dag_runs"]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise TimeoutError(what)


def _recent_between(world, lo: datetime, hi: datetime) -> int:
    """Bars the Databento stand-in holds in ``[lo, hi)``."""
    ts = world["recent"].ts
    return int(((ts >= to_ns(lo)) & (ts < to_ns(hi))).sum())


def _stored_between(db, lo: datetime, hi: datetime) -> tuple[int, int]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean "
            "WHERE ts >= %s AND ts < %s",
            (lo, hi),
        ).fetchone()


def test_scheduled_runs_load_their_day_then_triangles_through_the_asset(world):
    stack, db = world["stack"], world["db"]
    stack.patch("/api/v2/dags/triangle_backfill", {"is_paused": False})
    stack.patch("/api/v2/dags/ohlcv_reingest", {"is_paused": False})
    first = world["first_day"]
    scheduled = _wait(
        lambda: [r for r in _runs(stack, "ohlcv_reingest") if r["run_type"] == "scheduled"],
        120,
        "no scheduled run",
    )
    run = min(scheduled, key=lambda r: r["data_interval_start"])
    assert stack.wait_for_run("ohlcv_reingest", run["dag_run_id"]) == "success"
    start = datetime.fromisoformat(run["data_interval_start"])
    end = datetime.fromisoformat(run["data_interval_end"])
    assert (start, end - start) == (first, timedelta(days=1))  # a UTC day, not @daily's zero
    want = _recent_between(world, start, end)
    assert want > 1000
    assert _stored_between(db, start, end) == (want, want)  # exactly its day
    assert _stored_between(db, start - timedelta(days=8), start) == (0, 0)  # nothing before
    assert len(world["gateway"].state.data_requests()) >= 1

    tri = _wait(
        lambda: [
            r for r in _runs(stack, "triangle_backfill") if r["run_type"] == "asset_triggered"
        ],
        120,
        "no asset-triggered run",
    )[0]
    assert stack.wait_for_run("triangle_backfill", tri["dag_run_id"]) == "success"
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM triangle_events_v1").fetchone()[0] > 10

    # both days since the first day ran (catch-up on), each its own day
    def finished() -> list[dict]:
        runs = [
            r
            for r in _runs(stack, "ohlcv_reingest")
            if r["run_type"] == "scheduled" and r["state"] in ("success", "failed")
        ]
        return sorted(runs, key=lambda r: r["data_interval_start"]) if len(runs) >= 2 else []

    done = _wait(finished, 300, "the second scheduled run did not finish")
    assert [r["state"] for r in done] == ["success", "success"]
    second = datetime.fromisoformat(done[1]["data_interval_start"])
    assert second == first + timedelta(days=1)
    want = _recent_between(world, second, second + timedelta(days=1))
    assert _stored_between(db, second, second + timedelta(days=1)) == (want, want)

    # catch-up by hand (a manual run without dates): from the last stored bar to now,
    # only what is missing, nothing twice. On a weekend or a holiday nothing is published
    # after the last stored bar: the pre-flight keeps no chunk and the run's total says 0
    n, _ = _stored_between(db, _utc("2000-01-01"), _utc("2100-01-01"))
    run_id = stack.trigger("ohlcv_reingest", {"source": "databento"})
    assert stack.wait_for_run("ohlcv_reingest", run_id) == "success"
    with db.connect() as conn:
        n2, distinct2 = conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM market_bars_ohlcv_1m_clean"
        ).fetchone()
        written = conn.execute(
            "SELECT (counts->>'rows_written')::int FROM backfill_runs WHERE "
            "dag_id = 'ohlcv_reingest' AND run_id = %s AND symbol = '*' AND chunk = 'total'",
            (run_id,),
        ).fetchone()[0]
    assert n2 == distinct2 == n + written


def test_a_backfill_loads_exactly_its_days_with_newer_bars_stored(world):
    """The UI's Backfill dialog (REST POST /api/v2/backfills): each run loads its day, even
    though newer bars are stored (catch-up mode would load nothing)."""
    stack, db = world["stack"], world["db"]
    lo = world["first_day"] - timedelta(days=20)
    hi = lo + timedelta(days=3)
    newer = _stored_between(db, hi, _utc("2100-01-01"))[0]
    if newer == 0:  # this test alone: store a newer day first, as users would have
        run_id = stack.trigger(
            "ohlcv_reingest",
            {"source": "databento", "start": f"{hi:%Y-%m-%d}", "end": f"{hi:%Y-%m-%d}"},
        )
        assert stack.wait_for_run("ohlcv_reingest", run_id) == "success"
    assert _stored_between(db, lo, hi) == (0, 0)
    stack.wait_until_idle()  # the runs the bars asset triggered, before a backfill
    backfill = stack.post(
        "/api/v2/backfills",
        {
            "dag_id": "ohlcv_reingest",
            "from_date": lo.isoformat(),
            "to_date": (hi - timedelta(days=1)).isoformat(),
            "max_active_runs": 1,
            "reprocess_behavior": "none",
        },
    )
    _wait(
        lambda: stack.get(f"/api/v2/backfills/{backfill['id']}")["completed_at"],
        600,
        "the backfill did not complete",
    )
    runs = [r for r in _runs(stack, "ohlcv_reingest") if r["run_type"] == "backfill"]
    days = sorted((datetime.fromisoformat(r["data_interval_start"]), r["state"]) for r in runs)
    assert days == [(lo + timedelta(days=k), "success") for k in range(3)]
    for day, _ in days:
        want = _recent_between(world, day, day + timedelta(days=1))
        assert _stored_between(db, day, day + timedelta(days=1)) == (want, want)
    assert _stored_between(db, lo - timedelta(days=3), lo) == (0, 0)


def test_trigger_with_date_params_loads_the_rows_with_labelled_chunks(world):
    stack, db = world["stack"], world["db"]
    conf = {
        "source": "dbn_file",
        "dbn_path": str(world["files"] / "*.dbn.zst"),
        "start": "2025-10-01",
        "end": "2025-12-31",
    }
    run_id = stack.trigger("ohlcv_reingest", conf)
    assert stack.wait_for_run("ohlcv_reingest", run_id) == "success"
    labels = sorted(
        ti["rendered_map_index"]
        for ti in stack.task_instances("ohlcv_reingest", run_id)
        if ti["task_id"] == "reingest_chunk"
    )
    assert labels == ["NQ 2025-10", "NQ 2025-11", "NQ 2025-12"]
    total = sum(len(b) for b in world["bars"].values())
    assert _count(db, "2025-10-01", "2026-01-01") == (total, total)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"start": "2025-13-01", "end": "2025-12-31"}, "start"),
        ({"start": "2025-12-01", "end": "2025-12-31", "symbols": ["nq"]}, "symbols"),
        ({"start": "2025-12-01", "end": "2025-12-31", "roll_rule": "x"}, "roll_rule"),
    ],
)
def test_malformed_params_are_refused_at_trigger_time(world, conf, message):
    with pytest.raises(urllib.error.HTTPError) as err:
        world["stack"].trigger("ohlcv_reingest", conf)
    assert err.value.code == 400
    assert message in err.value.read().decode()


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (
            {"start": "2025-12-31", "end": "2025-12-01"},
            "param 'end' (2025-12-01) is before 'start'",
        ),
        (
            {"start": "2025-12-01", "end": "2025-12-31", "symbols": ["GLBX.MDP3:ZZ"]},
            "unknown symbol(s) ['GLBX.MDP3:ZZ']",
        ),
    ],
)
def test_params_only_the_plan_can_judge_fail_the_plan_naming_them(world, conf, message):
    stack = world["stack"]
    run_id = stack.trigger("ohlcv_reingest", {"source": "dbn_file", "dbn_path": "/x", **conf})
    assert stack.wait_for_run("ohlcv_reingest", run_id) == "failed"
    log = stack.get(
        f"/api/v2/dags/ohlcv_reingest/dagRuns/{run_id}/taskInstances/plan/logs/1?full_content=true"
    )
    assert message in str(log)


def test_one_failed_chunk_is_cleared_and_retried_alone(world):
    stack, db, files = world["stack"], world["db"], world["files"]
    nov = files / "glbx-nq-2025-11.dbn.zst"
    good = nov.read_bytes()
    import zstandard

    raw = zstandard.ZstdDecompressor().decompress(good, max_output_size=1 << 30)
    nov.write_bytes(raw[:-100])  # metadata intact, records truncated: only November fails
    with db.connect() as conn:
        conn.execute(
            "DELETE FROM market_bars_ohlcv_1m_clean WHERE ts >= '2025-10-01' AND ts < '2026-01-01'"
        )
    conf = {
        "source": "dbn_file",
        "dbn_path": str(files / "*.dbn.zst"),
        "start": "2025-10-01",
        "end": "2025-12-31",
    }
    run_id = stack.trigger("ohlcv_reingest", conf)
    assert stack.wait_for_run("ohlcv_reingest", run_id) == "failed"
    states = {
        (ti["task_id"], ti["rendered_map_index"]): ti["state"]
        for ti in stack.task_instances("ohlcv_reingest", run_id)
    }
    assert states[("reingest_chunk", "NQ 2025-10")] == "success"
    assert states[("reingest_chunk", "NQ 2025-11")] == "failed"
    assert states[("reingest_chunk", "NQ 2025-12")] == "success"
    assert states[("summarize", None)] == "failed"

    nov.write_bytes(good)  # fix the cause, then clear only the failed chunk (and downstream)
    cleared = stack.post(
        "/api/v2/dags/ohlcv_reingest/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "only_failed": True,
            "include_downstream": True,
            "reset_dag_runs": True,
        },
    )
    assert {(t["task_id"], t["map_index"]) for t in cleared["task_instances"]} == {
        ("reingest_chunk", 1),
        ("summarize", -1),
    }
    assert stack.wait_for_run("ohlcv_reingest", run_id) == "success"
    total = sum(len(b) for b in world["bars"].values())
    assert _count(db, "2025-10-01", "2026-01-01") == (total, total)
    with db.connect() as conn:
        rows = dict(
            conn.execute(
                "SELECT chunk, attempts FROM backfill_runs WHERE dag_id = 'ohlcv_reingest' "
                "AND run_id = %s",
                (run_id,),
            ).fetchall()
        )
        totals = conn.execute(
            "SELECT counts FROM backfill_runs WHERE dag_id = 'ohlcv_reingest' AND "
            "run_id = %s AND symbol = '*' AND chunk = 'total'",
            (run_id,),
        ).fetchone()[0]
    assert rows == {"2025-10": 1, "2025-11": 2, "2025-12": 1, "total": 1}
    assert totals["rows_valid"] == total
    assert totals["chunks_failed"] == 0


def test_gap_detection_finds_and_repairs_the_holes(world):
    stack, db = world["stack"], world["db"]
    # the scheduled catch-up stored one week; the 30-day window before it is one big hole
    stack.patch("/api/v2/dags/gap_detection", {"is_paused": False})
    run = _wait(  # an asset-triggered run (the bars changed) may come first: one at a time
        lambda: [r for r in _runs(stack, "gap_detection") if r["run_type"] == "scheduled"],
        600,
        "no scheduled gap run",
    )[0]
    assert stack.wait_for_run("gap_detection", run["dag_run_id"], timeout=600) == "success"
    with db.connect() as conn:
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM ohlcv_gaps GROUP BY status").fetchall()
        )
        report = conn.execute(
            "SELECT counts FROM backfill_runs WHERE dag_id = 'gap_detection' AND run_id = %s "
            "AND symbol = '*' AND chunk = 'total'",
            (run["dag_run_id"],),
        ).fetchone()[0]
    assert statuses.get("filled", 0) > 5
    assert statuses.get("open", 0) == 0
    assert all(row["open_gaps"] == 0 for row in report["completeness"])
    assert min(row["percent"] for row in report["completeness"]) > 97
