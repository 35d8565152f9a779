"""The DAG folder parses cleanly, fast, and without touching any service."""

from __future__ import annotations

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def bag(monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        # a market DB that cannot be reached: parsing must not try
        mp.setenv("AIRFLOW_CONN_MARKET_DB", "postgresql://nobody@192.0.2.1:1/none")
        yield mp


def test_no_import_errors(bag):
    assert bag.import_errors == {}
    assert "ohlcv_reingest" in bag.dag_ids


def test_reingest_shape(bag):
    dag = bag.dags["ohlcv_reingest"]
    assert {t.task_id for t in dag.tasks} == {
        "ensure_schema",
        "plan",
        "reingest_chunk",
        "summarize",
    }
    assert dag.catchup is False
    assert dag.doc_md
    assert "catch-up" in dag.doc_md
    chunk = dag.get_task("reingest_chunk")
    assert chunk.map_index_template == "{{ chunk_label }}"
    assert chunk.retries == 2
    assert dag.get_task("summarize").trigger_rule == "all_done"
    params = dag.params
    assert params["symbols"] == ["GLBX.MDP3:NQ"]
    assert (params["start"], params["end"], params["roll_rule"], params["rank"]) == (
        None,
        None,
        "v",
        0,
    )
    assert params.get_param("start").schema["format"] == "date"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("symbols", ["nq"]),
        ("symbols", []),
        ("start", "2025-13-01"),
        ("end", "yesterday"),
        ("roll_rule", "x"),
        ("rank", -1),
        ("source", "ftp"),
        ("symbols", ["GLBX.MDP3:NQ'; DROP TABLE market_symbols;--"]),
    ],
)
def test_trigger_form_refuses_bad_params(bag, key, value):
    import copy

    params = copy.deepcopy(bag.dags["ohlcv_reingest"].params)
    with pytest.raises(ParamValidationError, match=f"param {key}"):
        params.update({key: value})  # ParamsDict validates on update


def test_trigger_form_accepts_a_date_range(bag):
    import copy

    params = copy.deepcopy(bag.dags["ohlcv_reingest"].params)
    params.update({"start": "2025-12-01", "end": "2025-12-31", "symbols": ["GLBX.MDP3:ES"]})
    assert params.validate()["start"] == "2025-12-01"


def test_triangle_dag_runs_after_reingest_through_the_asset(bag):
    from market_backfill.dag_common import CLEAN_BARS, TRIANGLES

    reingest = bag.dags["ohlcv_reingest"]
    triangles = bag.dags["triangle_backfill"]
    assert CLEAN_BARS in reingest.get_task("summarize").outlets
    assert TRIANGLES in triangles.get_task("summarize").outlets
    assert triangles.timetable.asset_condition.objects == (CLEAN_BARS,)
    assert triangles.get_task("triangle_chunk").map_index_template == "{{ chunk_label }}"
    params = triangles.params
    assert (params["anchor"], params["warmup"], params["source_table"], params["purge"]) == (
        "weekly",
        5,
        "clean",
        False,
    )
    for flag in (
        "htf_aligned_only",
        "use_5m",
        "use_15m",
        "use_1h",
        "use_4h",
        "use_1d",
        "require_engulfing",
        "require_sweep_engulfing",
        "allow_legacy",
    ):
        assert params[flag] is False


def test_gap_detection_shape(bag):
    dag = bag.dags["gap_detection"]
    assert {t.task_id for t in dag.tasks} == {
        "ensure_schema",
        "plan",
        "detect",
        "plan_repairs",
        "repair",
        "report",
    }
    assert dag.get_task("repair").map_index_template == "{{ gap_label }}"
    assert dag.get_task("report").trigger_rule == "all_done"
    params = dag.params
    assert (params["min_gap_minutes"], params["repair"], params["start"]) == (5, True, None)
