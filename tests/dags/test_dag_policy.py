"""Policy for every DAG in dags/: what each must hold, checked over all of them.

Parsing happens with a market database that cannot be reached: a DAG that touched it
at parse time would fail here.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from market_backfill.airflow.assets import CLEAN_BARS, FEATURES, TRIANGLES
from market_backfill.airflow.context import LABEL_KEY
from market_backfill.names import TRIANGLE_FLAGS
from tests.conftest import ROOT
from tests.support.imports import loaded_after

DAG_FILES = sorted(p.stem for p in (ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_MARKET_DB", "postgresql://nobody@192.0.2.1:1/none")
        mp.delenv("MARKET_BACKFILL_FIRST_DAY", raising=False)  # CATCHUP: the default
        yield DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(params=DAG_FILES)
def dag(request, bag):
    return bag.dags[request.param]


def test_every_file_holds_one_dag_named_after_it(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == DAG_FILES
    assert {d.fileloc.rsplit("/", 1)[-1][:-3] for d in bag.dags.values()} == set(DAG_FILES)


def test_parsing_imports_nothing_heavy_and_touches_no_service():
    """The DAG files import only Airflow and the package's parse-time helpers."""
    setup = (
        "import pathlib, runpy\n"
        f"for p in sorted(pathlib.Path({str(ROOT / 'dags')!r}).glob('*.py')):\n"
        "    runpy.run_path(str(p))"
    )
    heavy = ["pandas", "numpy", "numba", "psycopg", "databento", "pandas_market_calendars"]
    heavy += ["market_backfill.db.inserter", "market_backfill.sources"]
    assert loaded_after(setup, heavy) == []


def test_documented_and_tagged(dag):
    assert dag.description
    assert len(dag.doc_md or "") > 300
    assert {"market-data", "backfill"} <= set(dag.tags)
    for task in dag.tasks:  # TaskFlow tasks: the docstring is the task's doc
        doc = task.doc_md or task.python_callable.__doc__
        assert doc, f"{dag.dag_id}.{task.task_id} has no docstring"


CATCHUP = {
    "ohlcv_reingest": False,  # MARKET_BACKFILL_FIRST_DAY unset (below: set)
    "gap_detection": False,  # the next run's 30-day look-back covers missed days
    "triangle_backfill": False,  # runs on the bars Asset, catches up from the data
    "feature_backfill": False,  # likewise
}
ASSET_SCHEDULED = ("triangle_backfill", "feature_backfill")


def test_one_run_at_a_time_and_catchup_decided(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is CATCHUP[dag.dag_id]


def test_unpausing_the_reingest_catches_up_only_from_a_first_day_the_operator_set(monkeypatch):
    """Without MARKET_BACKFILL_FIRST_DAY unpausing ``ohlcv_reingest`` runs only the latest
    day (no paid run for every day since a default date); with it, every day from it."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB", "postgresql://nobody@192.0.2.1:1/none")
    path = str(ROOT / "dags" / "ohlcv_reingest.py")
    monkeypatch.delenv("MARKET_BACKFILL_FIRST_DAY", raising=False)
    unset = DagBag(dag_folder=path).dags["ohlcv_reingest"]
    monkeypatch.setenv("MARKET_BACKFILL_FIRST_DAY", "2026-06-01")
    chosen = DagBag(dag_folder=path).dags["ohlcv_reingest"]
    assert (unset.catchup, chosen.catchup) == (False, True)
    assert chosen.start_date == datetime(2026, 6, 1, tzinfo=UTC)
    # the first run the scheduler creates on unpausing each
    assert _first_run(chosen) == datetime(2026, 6, 1, tzinfo=UTC)
    before = datetime.now(UTC)
    latest = _first_run(unset)
    after = datetime.now(UTC)
    yesterday = {  # the last whole UTC day (either side of a midnight during the call)
        datetime(t.year, t.month, t.day, tzinfo=UTC) - timedelta(days=1) for t in (before, after)
    }
    assert latest in yesterday


def _first_run(dag) -> datetime:
    """The data interval start of the first run the scheduler would create for ``dag``."""
    from airflow.serialization.serialized_objects import decode_timetable, encode_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = decode_timetable(encode_timetable(dag.timetable))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(dag.start_date, None, dag.catchup),
    )
    assert info is not None
    return info.data_interval.start


def test_a_time_scheduled_run_stands_for_one_utc_day(dag):
    """Not Airflow 3's @daily (zero-length intervals): a scheduled or Backfill run has a
    whole day to load."""
    from airflow.serialization.serialized_objects import decode_timetable, encode_timetable

    if dag.dag_id in ASSET_SCHEDULED:  # on the bars Asset only: not time-scheduled
        assert dag.timetable.asset_condition is not None
        return
    timetable = decode_timetable(encode_timetable(dag.timetable))
    interval = timetable.infer_manual_data_interval(
        run_after=datetime(2026, 3, 8, 5, 30, tzinfo=UTC)  # a DST change in New York
    )
    assert (interval.start, interval.end) == (
        datetime(2026, 3, 7, tzinfo=UTC),
        datetime(2026, 3, 8, tzinfo=UTC),
    )


def test_every_param_is_described_and_the_defaults_validate(dag):
    params = copy.deepcopy(dag.params)
    for name in params:
        param = params.get_param(name)
        assert param.schema.get("title"), f"{dag.dag_id}: param {name} has no title"
        assert param.description, f"{dag.dag_id}: param {name} has no description"
    params.validate()


def test_every_param_is_draft_7_json_schema(dag):
    """Each param names its dialect (Draft 7, whose meta-schema Airflow checks in less
    than half the time of the default at every resolve) and is a valid schema of it."""
    from jsonschema import Draft7Validator

    from market_backfill.airflow.params import SCHEMA_DIALECT

    for name, param in dag.params.items():
        assert param.schema.get("$schema") == SCHEMA_DIALECT, name
        Draft7Validator.check_schema(param.schema)
        Draft7Validator(param.schema).validate(param.value)


def test_a_dict_result_is_one_xcom(dag):
    """TaskFlow would push each key of a ``-> dict`` result as an XCom of its own (one
    more request to Airflow's API per key and task); the result is one XCom."""
    assert [t.task_id for t in dag.tasks if t.multiple_outputs] == []


def test_schema_first_and_work_retried_summary_not(dag):
    ensure = dag.get_task("ensure_schema")
    assert ensure.upstream_task_ids == set()
    assert "plan" in ensure.downstream_task_ids
    for task in dag.tasks:
        if task.trigger_rule == "all_done":  # the run's summary: judges, never retried
            assert task.retries == 0
            assert task.downstream_task_ids == set()
        else:
            assert task.retries >= 1, f"{dag.dag_id}.{task.task_id}"
    assert any(t.trigger_rule == "all_done" for t in dag.tasks)


def test_mapped_tasks_are_labelled(dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    mapped = [t for t in dag.tasks if isinstance(t, MappedOperator)]
    assert mapped
    for task in mapped:
        assert task.map_index_template == "{{ " + LABEL_KEY + " }}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("symbols", ["nq"]),
        ("symbols", []),
        ("start", "2025-13-01"),
        ("end", "yesterday"),
        ("symbols", ["GLBX.MDP3:NQ'; DROP TABLE market_symbols;--"]),
    ],
)
def test_the_trigger_form_refuses_bad_dates_and_symbols(dag, key, value):
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match=f"param {key}"):
        params.update({key: value})  # ParamsDict validates on update


@pytest.mark.parametrize(("key", "value"), [("roll_rule", "x"), ("rank", -1), ("source", "ftp")])
def test_the_trigger_form_refuses_bad_source_params(bag, key, value):
    for dag_id in ("ohlcv_reingest", "gap_detection"):
        params = copy.deepcopy(bag.dags[dag_id].params)
        with pytest.raises(ParamValidationError, match=f"param {key}"):
            params.update({key: value})


def test_the_trigger_form_accepts_a_date_range(dag):
    params = copy.deepcopy(dag.params)
    params.update({"start": "2025-12-01", "end": "2025-12-31", "symbols": ["GLBX.MDP3:ES"]})
    assert params.validate()["start"] == "2025-12-01"


def test_triangles_features_and_gaps_run_after_every_update_of_the_bars(bag):
    reingest, triangles = bag.dags["ohlcv_reingest"], bag.dags["triangle_backfill"]
    gaps, features = bag.dags["gap_detection"], bag.dags["feature_backfill"]
    assert FEATURES in features.get_task("summarize").outlets
    assert features.timetable.asset_condition.objects == (CLEAN_BARS,)
    assert CLEAN_BARS in reingest.get_task("summarize").outlets
    assert CLEAN_BARS in gaps.get_task("announce").outlets  # repairs that wrote bars
    assert TRIANGLES in triangles.get_task("summarize").outlets
    assert triangles.timetable.asset_condition.objects == (CLEAN_BARS,)
    assert gaps.timetable.asset_condition == CLEAN_BARS  # and daily


SPEC_DEFAULTS = {  # interfaces.md, "Runs and dates" (max_repairs: the spec names no default)
    "ohlcv_reingest": {"symbols": ["GLBX.MDP3:NQ"], "batch_size": 500, "dry_run": False},
    "triangle_backfill": {"anchor": "weekly", "warmup": 5, "source_table": "clean"},
    "gap_detection": {
        "start": None,
        "end": None,
        "min_gap_minutes": 5,
        "repair": True,
        "max_repairs": 100,
        "max_attempts": 3,
        "retry_unfillable": False,
        "source": "databento",
    },
    "feature_backfill": {
        "timeframes": ["1m", "5m", "15m", "1h", "4h", "1d"],
        "force_recalc": False,
    },
}


@pytest.mark.parametrize("dag_id", sorted(SPEC_DEFAULTS))
def test_the_params_default_as_the_spec_says(bag, dag_id):
    params = bag.dags[dag_id].params
    assert {k: params[k] for k in SPEC_DEFAULTS[dag_id]} == SPEC_DEFAULTS[dag_id]
    # series params: empty, so the registry's roll rule and rank apply
    assert (params["roll_rule"], params["rank"]) == (None, None)


def test_triangle_dag_has_every_filter_flag_off_by_default(bag):
    params = bag.dags["triangle_backfill"].params
    for flag in (*TRIANGLE_FLAGS, "allow_legacy", "purge"):
        assert params[flag] is False


def test_the_batch_wait_holds_no_worker_slot_and_only_reingest_offers_batch_jobs(bag):
    reingest, gaps = bag.dags["ohlcv_reingest"], bag.dags["gap_detection"]
    sensor = reingest.get_task("batch_ready")
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 60  # MARKET_BACKFILL_BATCH_POKE_SECONDS unset
    assert "databento_batch" in reingest.params.get_param("source").schema["enum"]
    gap_params = copy.deepcopy(gaps.params)
    with pytest.raises(ParamValidationError, match="param source"):
        gap_params.update({"source": "databento_batch"})


def test_features_rollup_first_and_the_form_checks_timeframes(bag):
    dag = bag.dags["feature_backfill"]
    assert dag.get_task("rollup_chunk").downstream_task_ids == {"feature_chunk"}
    assert dag.get_task("feature_chunk").trigger_rule == "none_failed"  # rollup skipped: 1m
    assert dag.params["timeframes"] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    assert dag.params["force_recalc"] is False
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match="param timeframes"):
        params.update({"timeframes": ["2h"]})
    with pytest.raises(ParamValidationError, match="param since"):
        params.update({"since": "last week"})


DATABENTO_TASKS = {
    "ohlcv_reingest": {"plan", "batch_ready", "download_batch", "reingest_chunk"},
    "gap_detection": {"plan_repairs", "repair"},
}


def test_every_task_declares_a_project_pool(dag):
    """Tasks calling Databento share the ``databento`` pool; the others ``market_db``."""
    calling = DATABENTO_TASKS.get(dag.dag_id, set())
    for task in dag.tasks:
        want = "databento" if task.task_id in calling else "market_db"
        assert task.pool == want, f"{dag.dag_id}.{task.task_id}: {task.pool}"
