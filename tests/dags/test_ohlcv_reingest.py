"""``ohlcv_reingest`` run for real through Airflow (``dag.test()`` and ``airflow dags test``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest

from market_backfill.db.inserter import BatchInserter
from market_backfill.db.tables import CLEAN_TABLE
from market_backfill_devtools.sample import write_sample
from tests.conftest import ROOT
from tests.support.xcoms import mapped_xcoms

pytestmark = pytest.mark.airflow

CONF = {"source": "dbn_file", "start": "2025-11-01", "end": "2025-12-19"}


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dbn") / "nq-synthetic.dbn.zst"
    return write_sample(path, datetime(2025, 11, 2, tzinfo=UTC), datetime(2025, 12, 20, tzinfo=UTC))


def _xcom_value(dag_id: str, run_id: str, task_id: str, key: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
            .one()
        )
        return json.loads(row.value) if isinstance(row.value, str) else row.value


def _count(db) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()[0]


def _assert_stored_nq_es(db, src, lo: str, hi: str) -> None:
    """The clean table holds exactly the stand-in's NQ.v.0 and ES.v.0 bars of [lo, hi)."""
    from market_backfill.timeutil import to_ns

    want = src[(src.ts >= to_ns(lo)) & (src.ts < to_ns(hi))]
    with db.connect() as conn:
        got = dict(
            conn.execute(
                "SELECT symbol, count(*) FROM market_bars_ohlcv_1m_clean GROUP BY symbol"
            ).fetchall()
        )
    assert got == {
        "GLBX.MDP3:NQ": int((want.symbol == "NQ.v.0").sum()),
        "GLBX.MDP3:ES": int((want.symbol == "ES.v.0").sum()),
    }


def test_dag_test_loads_monthly_chunks_and_a_rerun_changes_nothing(
    reingest_dag, market_db, sample_file, monkeypatch
):
    path, bars = sample_file
    conf = {**CONF, "dbn_path": str(path)}
    writing = set()  # the threads that wrote batches
    monkeypatch.setattr(
        BatchInserter, "default_hook", lambda at: writing.add(threading.current_thread().name)
    )
    run = reingest_dag.test(run_conf=conf)
    assert run.state == "success"
    assert f"{CLEAN_TABLE} writer 2" in writing  # two writers a chunk by default
    assert _count(market_db) == bars
    chunks = mapped_xcoms("ohlcv_reingest", run.run_id, "reingest_chunk")
    assert set(chunks) == {"NQ 2025-11", "NQ 2025-12"}
    nov = chunks["NQ 2025-11"]
    assert nov["rows_in"] == nov["rows_valid"] == nov["rows_written"] > 0
    assert nov["commits"] == nov["batches"] == -(-nov["rows_valid"] // 500)
    assert nov["retries"] == 0
    totals = mapped_xcoms("ohlcv_reingest", run.run_id, "summarize")[None]
    assert totals["rows_valid"] == bars
    with market_db.connect() as conn:
        audit = conn.execute(
            "SELECT symbol, chunk, status, (counts->>'rows_valid')::int FROM backfill_runs "
            "WHERE run_id = %s ORDER BY symbol, chunk",
            (run.run_id,),
        ).fetchall()
    assert [a[:3] for a in audit] == [
        ("*", "total", "success"),
        ("GLBX.MDP3:NQ", "2025-11", "success"),
        ("GLBX.MDP3:NQ", "2025-12", "success"),
    ]
    assert audit[0][3] == bars

    writing.clear()
    again = reingest_dag.test(run_conf={**conf, "writers": 1})
    assert again.state == "success"
    assert writing
    assert f"{CLEAN_TABLE} writer 2" not in writing
    assert _count(market_db) == bars
    assert all(
        c["rows_written"] == 0
        for c in mapped_xcoms("ohlcv_reingest", again.run_id, "reingest_chunk").values()
    )


def _output(capfd) -> str:
    out, err = capfd.readouterr()
    return out + err


def test_end_before_start_fails_the_plan_with_a_clear_message(reingest_dag, market_db, capfd):
    run = reingest_dag.test(
        run_conf={**CONF, "dbn_path": "/nowhere.dbn", "start": "2025-12-19", "end": "2025-11-01"}
    )
    assert run.state == "failed"
    assert "param 'end' (2025-11-01) is before 'start' (2025-12-19)" in _output(capfd)
    assert _count(market_db) == 0


def test_a_missing_file_fails_the_chunks_and_the_summary_names_them(
    reingest_dag, market_db, tmp_path, capfd
):
    run = reingest_dag.test(run_conf={**CONF, "dbn_path": str(tmp_path / "none-*.dbn")})
    assert run.state == "failed"
    with market_db.connect() as conn:
        rows = conn.execute(
            "SELECT chunk, status, attempts, error FROM backfill_runs WHERE run_id = %s "
            "ORDER BY chunk",
            (run.run_id,),
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("2025-11", "failed"),
        ("2025-12", "failed"),
        ("total", "failed"),
    ]
    assert rows[0][2] == 1, "a permanent error must not be retried"
    assert "matches no file" in rows[0][3]
    assert "2 of 2 chunks did not succeed" in _output(capfd)


def test_airflow_dags_test_cli_on_a_dbn_file(airflow_db, market_db, sample_file):
    path, bars = sample_file
    env = os.environ.copy()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "dags",
            "test",
            "ohlcv_reingest",
            "-c",
            json.dumps({**CONF, "dbn_path": str(path)}),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "NQ 2025-11" in output
    assert "per-chunk summary" in output
    assert _count(market_db) == bars


def test_databento_source_end_to_end_one_request_per_month(
    reingest_dag, market_db, gateway, synthetic_bars_continuous
):
    conf = {
        "symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"],
        "source": "databento",
        "start": "2025-02-15",
        "end": "2025-03-14",
    }
    run = reingest_dag.test(run_conf={**conf, "symbols_per_task": 25})
    assert run.state == "success"
    assert len(gateway.state.data_requests()) == 2, "NQ and ES of one month share one request"
    _assert_stored_nq_es(market_db, synthetic_bars_continuous, "2025-02-15", "2025-03-15")
    tasks = mapped_xcoms("ohlcv_reingest", run.run_id, "reingest_chunk")
    assert set(tasks) == {"NQ,ES 2025-02", "NQ,ES 2025-03"}  # one mapped task per month
    feb = tasks["NQ,ES 2025-02"]
    assert feb["symbols"] == ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"]
    assert feb["rows_written"] == sum(m["rows_written"] for m in feb["members"]) > 0
    with market_db.connect() as conn:  # the summary stays per symbol and month
        audit = conn.execute(
            "SELECT symbol, chunk, status FROM backfill_runs WHERE run_id = %s "
            "ORDER BY symbol, chunk",
            (run.run_id,),
        ).fetchall()
    assert audit == [
        ("*", "estimate", "success"),
        ("*", "total", "success"),
        ("GLBX.MDP3:ES", "2025-02", "success"),
        ("GLBX.MDP3:ES", "2025-03", "success"),
        ("GLBX.MDP3:NQ", "2025-02", "success"),
        ("GLBX.MDP3:NQ", "2025-03", "success"),
    ]
    alone = reingest_dag.test(run_conf={**conf, "symbols_per_task": 1})
    assert alone.state == "success"
    assert set(mapped_xcoms("ohlcv_reingest", alone.run_id, "reingest_chunk")) == {
        "NQ 2025-02",
        "ES 2025-02",
        "NQ 2025-03",
        "ES 2025-03",
    }
    assert len(gateway.state.data_requests()) == 2, "the second run reads the cached responses"


def test_a_rejected_key_fails_the_plan_before_any_data_request(
    reingest_dag, market_db, gateway, capfd
):
    gateway.state.key = "db-SOMEONE-ELSE"
    run = reingest_dag.test(
        run_conf={"source": "databento", "start": "2025-01-01", "end": "2025-03-31"}
    )
    assert run.state == "failed"
    assert gateway.state.data_requests() == []
    output = _output(capfd)
    assert "Databento answered 401" in output
    assert "db-TESTKEY" not in output
    with market_db.connect() as conn:
        chunks = conn.execute(
            "SELECT count(*) FROM backfill_runs WHERE run_id = %s AND symbol <> '*'",
            (run.run_id,),
        ).fetchone()[0]
    assert chunks == 0


def test_a_key_refused_while_loading_stops_the_run_after_one_request(
    reingest_dag, market_db, gateway, capfd
):
    """The key passes the pre-flight, then the first data request is refused (revoked,
    out of credit): the later months do not call Databento."""
    from tests.support.gateway import Scripted

    gateway.fail_with(Scripted(401, detail="Authentication failed."))  # on get_range
    run = reingest_dag.test(
        run_conf={"source": "databento", "start": "2025-01-01", "end": "2025-03-31"}
    )
    assert run.state == "failed"
    assert len(gateway.state.data_requests()) == 1, "later months must not call Databento"
    output = _output(capfd)
    assert "Databento answered 401" in output
    assert "db-TESTKEY" not in output
    with market_db.connect() as conn:
        rows = conn.execute(
            "SELECT chunk, attempts, error FROM backfill_runs WHERE run_id = %s ORDER BY chunk",
            (run.run_id,),
        ).fetchall()
    assert [(chunk, attempts) for chunk, attempts, _ in rows] == [
        ("2025-01", 1),
        ("2025-02", 1),
        ("2025-03", 1),
        ("estimate", 1),  # the pre-flight's
        ("total", 1),
    ]
    errors = [error for _, _, error in rows[:3]]
    assert sum("the run was stopped" in e for e in errors) == 2  # never reached Databento
    assert sum("answered 401" in e and "stopped" not in e for e in errors) == 1


def test_server_errors_and_rate_limits_are_retried_and_the_chunk_succeeds(
    reingest_dag, market_db, gateway
):
    from tests.support.gateway import Scripted

    gateway.fail_with(Scripted(500), Scripted(429, retry_after=0.5), Scripted(503))
    run = reingest_dag.test(
        run_conf={"source": "databento", "start": "2025-02-03", "end": "2025-02-07"}
    )
    assert run.state == "success"
    assert len(gateway.state.data_requests()) == 4
    assert [r["form"]["symbols"] for r in gateway.state.data_requests()] == ["NQ.v.0"] * 4
    with market_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()[0] > 0


def test_two_series_of_one_root_are_stored_side_by_side(reingest_dag, market_db, tmp_path):
    """NQ.v.0 (the registry's default) and NQ.c.1 for the same month: neither overwrites
    the other, and each bar keeps the contract its series held."""
    import pandas as pd

    from market_backfill_devtools.dbn_writer import quarterly_rolls, write_bars
    from market_backfill_devtools.sample import synthetic_bars

    lo, hi = datetime(2025, 2, 24, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC)
    front = synthetic_bars("NQ.v.0", lo, hi, seed=1)
    second = synthetic_bars("NQ.c.1", lo, hi, seed=2, start_price=21500.0)
    path = write_bars(
        tmp_path / "two-series.dbn",
        pd.concat([front, second], ignore_index=True),
        dataset="GLBX.MDP3",
        instruments={
            "NQ.v.0": quarterly_rolls(lo.date(), hi.date(), 100),  # rolls on 2025-03-10
            "NQ.c.1": 200,
        },
    )
    conf = {"source": "dbn_file", "dbn_path": str(path), "start": "2025-02-24", "end": "2025-03-14"}
    assert reingest_dag.test(run_conf=conf).state == "success"  # the default series
    assert reingest_dag.test(run_conf={**conf, "roll_rule": "c", "rank": 1}).state == "success"
    with market_db.connect() as conn:
        stored = conn.execute(
            "SELECT roll_rule, rank, count(*), sum(volume)::int8, array_agg(DISTINCT instrument_id "
            "ORDER BY instrument_id) FROM market_bars_ohlcv_1m_clean GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
    assert stored == [
        ("c", 1, len(second), int(second.volume.sum()), [200]),
        ("v", 0, len(front), int(front.volume.sum()), [100, 101]),
    ]


# -- the pre-flight: clamp, estimate, cap, dry run --------------------------------------------


def _estimate(db, run_id: str) -> dict:
    with db.connect() as conn:
        return conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND symbol = '*' "
            "AND chunk = 'estimate'",
            (run_id,),
        ).fetchone()[0]


def _quote_of(gateway, form: dict) -> float:
    """What the stand-in charges for one data request (its price list)."""
    from market_backfill.timeutil import to_ns

    bars = gateway.state.bars
    lo, hi = to_ns(form["start"]), to_ns(form["end"])
    rows = bars[bars.symbol.isin(form["symbols"].split(",")) & (bars.ts >= lo) & (bars.ts < hi)]
    return 56 * len(rows) / 1e9 * gateway.state.usd_per_gb


TWO = {"symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"], "source": "databento"}


def test_the_estimate_is_exactly_the_quotes_of_the_requests_made(reingest_dag, market_db, gateway):
    run = reingest_dag.test(run_conf={**TWO, "start": "2025-01-01", "end": "2025-02-28"})
    assert run.state == "success"
    made = gateway.state.data_requests()
    assert len(made) == 2  # one per month, NQ and ES together
    estimate = _estimate(market_db, run.run_id)
    assert sorted((q["symbols"], q["start"][:10]) for q in estimate["requests"]) == sorted(
        (r["form"]["symbols"], r["form"]["start"][:10]) for r in made
    )
    assert estimate["total_usd"] == pytest.approx(sum(_quote_of(gateway, r["form"]) for r in made))
    assert estimate["total_bytes"] == sum(q["billable_bytes"] for q in estimate["requests"]) > 0
    with market_db.connect() as conn:
        summary = conn.execute(
            "SELECT counts FROM backfill_runs WHERE run_id = %s AND chunk = 'total'",
            (run.run_id,),
        ).fetchone()[0]
    assert summary["estimate"]["total_usd"] == estimate["total_usd"]
    xcom = _xcom_value("ohlcv_reingest", run.run_id, "plan", "estimate")
    assert xcom["total_usd"] == estimate["total_usd"]


def test_an_end_past_the_published_data_is_clamped_not_refused(reingest_dag, market_db, gateway):
    gateway.state.published_end = "2025-03-10T00:00:00+00:00"
    run = reingest_dag.test(run_conf={**TWO, "start": "2025-03-01", "end": "2025-03-31"})
    assert run.state == "success"
    made = gateway.state.data_requests()
    assert [r["form"]["end"][:19] for r in made] == ["2025-03-10T00:00:00"]
    assert "cut to the published" in _estimate(market_db, run.run_id)["clamped"][0]
    with market_db.connect() as conn:
        newest = conn.execute("SELECT max(ts) FROM market_bars_ohlcv_1m_clean").fetchone()[0]
    assert newest < datetime(2025, 3, 10, tzinfo=UTC)


def test_over_the_cost_cap_the_plan_fails_before_any_data_request(
    reingest_dag, market_db, gateway, capfd
):
    run = reingest_dag.test(
        run_conf={**TWO, "start": "2025-01-01", "end": "2025-03-31", "max_cost_usd": 0.001}
    )
    assert run.state == "failed"
    assert gateway.state.data_requests() == []
    output = _output(capfd)
    assert "over the cap $0.00" in output
    assert "Raise 'max_cost_usd'" in output
    estimate = _estimate(market_db, run.run_id)
    assert estimate["total_usd"] > estimate["max_cost_usd"] == 0.001
    assert _count(market_db) == 0


def test_a_dry_run_estimates_and_requests_and_writes_nothing(reingest_dag, market_db, gateway):
    run = reingest_dag.test(
        run_conf={**TWO, "start": "2025-01-01", "end": "2025-03-31", "dry_run": True}
    )
    assert run.state == "success"
    assert gateway.state.data_requests() == []
    assert _count(market_db) == 0
    estimate = _estimate(market_db, run.run_id)
    assert estimate["dry_run"] is True
    assert len(estimate["requests"]) == 3
    assert estimate["total_usd"] > 0


@pytest.fixture
def batch_dag(airflow_db, monkeypatch):
    """``ohlcv_reingest`` parsed with a 1 s batch poke, so a test waits seconds, not minutes."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MARKET_BACKFILL_BATCH_POKE_SECONDS", "1")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["ohlcv_reingest"]


def test_the_batch_source_submits_once_downloads_once_and_a_rerun_pays_nothing(
    batch_dag, market_db, gateway, synthetic_bars_continuous, data_dir
):
    gateway.state.batch_seconds = 3  # the job is done a few seconds after it is submitted
    conf = {
        **TWO,
        "source": "databento_batch",
        "start": "2025-01-15",
        "end": "2025-03-14",
        "dry_run": False,  # dag.test() keeps the last run's params
    }
    dry = batch_dag.test(run_conf={**conf, "dry_run": True})
    assert dry.state == "success"
    assert gateway.state.submits() == []
    assert _count(market_db) == 0
    run = batch_dag.test(run_conf=conf)
    assert run.state == "success"
    assert gateway.state.data_requests() == []
    [submit] = gateway.state.submits()
    assert (submit["form"]["symbols"], submit["form"]["split_duration"]) == (
        "ES.v.0,NQ.v.0",
        "month",
    )
    assert len(gateway.state.downloads()) == 3  # Jan (part), Feb, Mar (part)
    polls = [r for r in gateway.state.requests if r["path"] == "/v0/batch.list_jobs"]
    assert len(polls) >= 2, "the sensor poked again while the job was processing"
    downloaded = sorted(p.name for p in data_dir.rglob("*.dbn.zst"))
    assert len(downloaded) == 3
    [quoted] = _estimate(market_db, run.run_id)["requests"]
    assert quoted["cost_usd"] == pytest.approx(_quote_of(gateway, submit["form"]))

    _assert_stored_nq_es(market_db, synthetic_bars_continuous, "2025-01-15", "2025-03-15")

    again = batch_dag.test(run_conf=conf)
    assert again.state == "success"
    assert len(gateway.state.submits()) == 1, "the job was found again, not submitted"
    assert len(gateway.state.downloads()) == 3, "every file was already downloaded"
    assert gateway.state.data_requests() == []


def test_one_symbol_failing_does_not_stop_the_others_of_its_task(
    reingest_dag, market_db, gateway, synthetic_bars_continuous
):
    """Catch-up (a request per symbol): Databento refuses NQ's request; ES of the same
    mapped task is still loaded; the task fails without retries and the summary says which."""
    from market_backfill.timeutil import to_ns
    from tests.conftest import store_bars
    from tests.support.gateway import Scripted

    bars = synthetic_bars_continuous
    early = bars[bars.ts < to_ns("2025-03-10")]
    store_bars(early[early.symbol == "NQ.v.0"], symbol="GLBX.MDP3:NQ")
    store_bars(early[early.symbol == "ES.v.0"], symbol="GLBX.MDP3:ES")
    gateway.fail_with(Scripted(422, detail="Invalid request."))  # NQ's request, the first
    run = reingest_dag.test(
        run_conf={"symbols": ["GLBX.MDP3:NQ", "GLBX.MDP3:ES"], "source": "databento"}
    )
    assert run.state == "failed"
    with market_db.connect() as conn:
        rows = conn.execute(
            "SELECT symbol, chunk, status, attempts FROM backfill_runs WHERE run_id = %s "
            "AND symbol <> '*' ORDER BY symbol",
            (run.run_id,),
        ).fetchall()
        es = conn.execute(
            "SELECT count(*) FROM market_bars_ohlcv_1m_clean WHERE symbol = 'GLBX.MDP3:ES'"
        ).fetchone()[0]
    assert rows == [
        ("GLBX.MDP3:ES", "2025-03", "success", 1),
        ("GLBX.MDP3:NQ", "2025-03", "failed", 1),  # refused: not retried
    ]
    assert es == int((bars.symbol == "ES.v.0").sum())
