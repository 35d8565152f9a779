"""The chunk runner against a real market database: audit rows, fail-fast, the summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

import pytest
from airflow.sdk.exceptions import AirflowFailException

from market_backfill.airflow.chunks import (
    ensure_schema,
    map_groups,
    plan_monthly,
    plan_or_fail,
    run_audited,
    run_members,
    summarize_run,
)
from market_backfill.airflow.connections import hook_connector
from market_backfill.airflow.context import RunContext
from market_backfill.db import audit
from market_backfill.errors import ParamError
from market_backfill.planning import Chunk, group_chunks
from market_backfill.sources import PermanentSourceError, SourceError

RUN = RunContext("stage", "run-1", {"symbols": ["GLBX.MDP3:NQ"]})
DEC = Chunk("GLBX.MDP3:NQ", "2025-12", "2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00")
NOV = Chunk("GLBX.MDP3:NQ", "2025-11", "2025-11-01T00:00:00+00:00", "2025-12-01T00:00:00+00:00")


class _Counts(TypedDict):
    """A stage's summary: a count, counts per reason, a text field."""

    rows_in: int
    skipped: dict[str, int]
    note: str


def _rows(run: RunContext = RUN) -> dict[str, dict]:
    return {r["chunk"]: r for r in audit.run_rows(hook_connector(), run.dag_id, run.run_id)}


def test_a_chunk_that_succeeds_is_recorded_with_its_result(market_db):
    seen = []

    def work(chunk, connect):
        seen.append((chunk, connect().closed))
        return {"rows_in": 3, "rows_skipped": {"PRICE_FLOOR": 1}}

    assert run_audited(DEC.to_dict(), work, RUN) == {
        "rows_in": 3,
        "rows_skipped": {"PRICE_FLOOR": 1},
    }
    assert seen == [(DEC, False)]
    row = _rows()["2025-12"]
    assert (row["status"], row["attempts"], row["counts"]["rows_in"]) == ("success", 1, 3)


@pytest.mark.parametrize(
    "error", [ParamError("dbn_path", "param 'dbn_path' is bad"), PermanentSourceError("401")]
)
def test_errors_no_retry_can_fix_fail_fast_and_are_recorded(market_db, error):
    def work(chunk, connect):
        raise error

    with pytest.raises(AirflowFailException, match="NQ 2025-12: "):
        run_audited(DEC.to_dict(), work, RUN)
    row = _rows()["2025-12"]
    assert row["status"] == "failed"
    assert str(error) in row["error"]


def test_other_errors_are_left_to_airflow_retries_and_a_retry_counts(market_db):
    outcomes = iter([SourceError("503"), {"rows_in": 1}])

    def work(chunk, connect):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(SourceError):
        run_audited(DEC.to_dict(), work, RUN)
    assert _rows()["2025-12"]["status"] == "failed"
    run_audited(DEC.to_dict(), work, RUN)  # the cleared task runs again
    row = _rows()["2025-12"]
    assert (row["status"], row["attempts"], row["error"]) == ("success", 2, None)


def test_the_summary_totals_the_chunks_and_stores_the_total_row(market_db):
    for chunk, n in ((NOV, 2), (DEC, 5)):
        run_audited(chunk.to_dict(), lambda c, k, n=n: {"rows_in": n, "seconds": 1.0}, RUN)
    done = []
    totals = summarize_run(
        [NOV.to_dict(), DEC.to_dict()],
        (_Counts,),
        RUN,
        on_success=lambda: done.append(True),
        extra={"note": "x"},
    )
    assert totals == {
        "rows_in": 7,
        "skipped": {},
        "chunks": 2,
        "chunks_planned": 2,
        "chunks_failed": 0,
        "note": "x",
    }
    assert done == [True]
    with market_db.connect() as conn:
        status, counts = conn.execute(
            "SELECT status, counts FROM backfill_runs WHERE run_id = 'run-1' AND symbol = '*'"
        ).fetchone()
    assert (status, counts["rows_in"]) == ("success", 7)


def test_a_run_that_planned_no_chunk_records_its_counts_at_zero(market_db):
    """A run with nothing to do (a catch-up on a weekend) stores 0 rows, not no count."""
    totals = summarize_run([], (_Counts,), RUN)
    assert totals == {
        "rows_in": 0,
        "skipped": {},
        "chunks": 0,
        "chunks_planned": 0,
        "chunks_failed": 0,
    }
    with market_db.connect() as conn:
        status, counts = conn.execute(
            "SELECT status, counts FROM backfill_runs WHERE run_id = 'run-1' AND symbol = '*'"
        ).fetchone()
    assert (status, counts["rows_in"], counts["skipped"]) == ("success", 0, {})


def test_the_summary_fails_the_run_naming_failed_and_missing_chunks(market_db):
    def boom(chunk, connect):
        raise SourceError("gateway down")

    with pytest.raises(SourceError):
        run_audited(DEC.to_dict(), boom, RUN)
    done = []
    with pytest.raises(RuntimeError, match="2 of 2 chunks did not succeed") as err:
        summarize_run([NOV.to_dict(), DEC.to_dict()], (), RUN, on_success=lambda: done.append(True))
    assert "NQ 2025-11 (missing: not run)" in str(err.value)
    assert "gateway down" in str(err.value)
    assert done == []
    with market_db.connect() as conn:
        status, error = conn.execute(
            "SELECT status, error FROM backfill_runs WHERE run_id = 'run-1' AND symbol = '*'"
        ).fetchone()
    assert status == "failed"
    assert "NQ 2025-12" in error


def test_without_a_plan_the_summary_fails_fast(market_db):
    with pytest.raises(AirflowFailException, match="the plan task did not succeed"):
        summarize_run(None, (), RUN)


def test_planning_passes_the_run_end_and_fails_fast(market_db):
    end = datetime(2025, 12, 31, tzinfo=UTC)
    got = {}

    def plan_run(request):
        got.update(vars(request), conn=request.connect())
        return [DEC.to_dict()]

    run = RunContext("stage", "r", {"a": 1}, run_end=end)
    assert plan_monthly(plan_run, run) == [DEC.to_dict()]
    assert (got["params"], got["run_end"]) == ({"a": 1}, end)
    got["conn"].close()

    def bad():
        raise ParamError("end", "param 'end' (x) is before 'start' (y)")

    with pytest.raises(AirflowFailException, match=r"param 'end' \(x\)"):
        plan_or_fail(bad)


def test_ensure_schema_is_idempotent(pg_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", pg_db.airflow_uri)
    ensure_schema()
    ensure_schema()
    with pg_db.connect() as conn:
        n = conn.execute("SELECT count(*) FROM market_symbols").fetchone()[0]
    assert n == 24  # the preloaded roots, once


def _stop_reason(run: RunContext = RUN) -> str | None:
    """The error of the run's stop row (symbol ``*``, chunk ``stop``), None without one."""
    with hook_connector()() as conn:
        row = conn.execute(
            "SELECT status, error FROM backfill_runs WHERE dag_id = %s AND run_id = %s "
            "AND symbol = '*' AND chunk = 'stop'",
            (run.dag_id, run.run_id),
        ).fetchone()
    if row is None:
        return None
    assert row[0] == "failed"
    return row[1]


def test_a_run_wide_refusal_stops_later_chunks_until_the_summary(market_db):
    calls = []

    def refused(chunk, connect):
        calls.append(chunk.month)
        raise PermanentSourceError("Databento answered 401", run_wide=True)

    with pytest.raises(AirflowFailException, match="answered 401"):
        run_audited(NOV.to_dict(), refused, RUN)
    assert "NQ 2025-11" in _stop_reason()
    assert "Databento answered 401" in _stop_reason()  # the audit row says why
    with pytest.raises(AirflowFailException, match="the run was stopped: NQ 2025-11"):
        run_audited(DEC.to_dict(), refused, RUN)
    assert calls == ["2025-11"]  # the later chunk never reached the source
    assert "not run" in _rows()["2025-12"]["error"]
    with pytest.raises(RuntimeError, match="2 of 2 chunks"):
        summarize_run([NOV.to_dict(), DEC.to_dict()], (), RUN)
    assert _stop_reason() is None  # lifted by the summary
    # the key is fixed and the failed chunks are cleared: they run again
    assert run_audited(DEC.to_dict(), lambda c, k: {"rows_in": 1}, RUN) == {"rows_in": 1}


def test_a_refusal_of_one_chunk_does_not_stop_the_others(market_db):
    def refused(chunk, connect):
        raise PermanentSourceError("dbn_path matches no file")

    with pytest.raises(AirflowFailException):
        run_audited(NOV.to_dict(), refused, RUN)
    assert run_audited(DEC.to_dict(), lambda c, k: {"rows_in": 2}, RUN) == {"rows_in": 2}


def _group(*symbols: str) -> dict:
    chunks = [Chunk(s, DEC.month, DEC.start, DEC.end).to_dict() for s in symbols]
    (group,) = group_chunks(chunks, len(chunks))
    return group


def test_a_group_runs_every_member_audited_and_sums_their_counts(market_db):
    group = _group("GLBX.MDP3:NQ", "GLBX.MDP3:ES")

    def member(chunk):
        n = 2 if chunk["symbol"].endswith("NQ") else 5
        work = lambda c, connect: {"symbol": c.symbol, "rows_in": n, "seconds": 0.25}  # noqa: E731
        return run_audited(chunk, work, RUN)

    result = run_members(group, member)
    assert result["chunk"] == "NQ,ES 2025-12"
    assert result["symbols"] == ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"]
    assert (result["rows_in"], result["chunks"], result["seconds"]) == (7, 2, 0.5)
    assert [m["rows_in"] for m in result["members"]] == [2, 5]
    rows = audit.run_rows(hook_connector(), RUN.dag_id, RUN.run_id)
    assert sorted((r["symbol"], r["status"]) for r in rows) == [
        ("GLBX.MDP3:ES", "success"),
        ("GLBX.MDP3:NQ", "success"),
    ]


def test_a_failing_member_does_not_stop_the_others_and_fails_the_task_after(market_db):
    group = _group("GLBX.MDP3:NQ", "GLBX.MDP3:ES", "GLBX.MDP3:YM")
    ran = []

    def member(chunk):
        ran.append(chunk["symbol"])
        if chunk["symbol"].endswith("ES"):
            raise SourceError("connection reset")
        return {"symbol": chunk["symbol"], "rows_in": 1}

    with pytest.raises(RuntimeError, match="ES 2025-12: connection reset") as raised:
        run_members(group, member)
    assert not isinstance(raised.value, AirflowFailException)  # Airflow retries the group
    assert ran == ["GLBX.MDP3:NQ", "GLBX.MDP3:ES", "GLBX.MDP3:YM"]

    def final(chunk):
        raise AirflowFailException(f"{chunk['label']}: bad file")

    with pytest.raises(AirflowFailException, match="NQ 2025-12: .*YM 2025-12: "):
        run_members(group, final)  # every failure final: no retries


def test_map_groups_reads_symbols_per_task_and_fails_fast_over_the_map_limit(monkeypatch):
    chunks = [
        Chunk(s, m.month, m.start, m.end).to_dict()
        for m in (NOV, DEC)
        for s in ("GLBX.MDP3:NQ", "GLBX.MDP3:ES", "GLBX.MDP3:YM")
    ]
    run = RunContext("stage", "run-1", {"symbols_per_task": 2})
    assert [g["label"] for g in map_groups(chunks, run)] == [
        "NQ,ES 2025-11",
        "YM 2025-11",
        "NQ,ES 2025-12",
        "YM 2025-12",
    ]
    default = RunContext("stage", "run-1", {})
    assert [g["label"] for g in map_groups(chunks, default)] == [
        "NQ,ES,+1 2025-11",
        "NQ,ES,+1 2025-12",
    ]
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    with pytest.raises(AirflowFailException, match="4 tasks .*raise 'symbols_per_task'"):
        map_groups(chunks, run)
    with pytest.raises(AirflowFailException, match="symbols_per_task"):
        map_groups(chunks, RunContext("stage", "run-1", {"symbols_per_task": 0}))
