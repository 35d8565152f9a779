"""The benchmarks' floor DAGs (``bench/floor_dags/``) have their stage's shape.

Issue 15's floors are what Airflow costs for a DAG of a stage's shape whose tasks do
nothing; a floor that lost a task, a dependency or a concurrency limit of its stage would
measure another DAG.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

FLOORS = {
    "floor_reingest": "ohlcv_reingest",
    "floor_triangles": "triangle_backfill",
    "floor_features": "feature_backfill",
    "floor_gaps": "gap_detection",
}


@pytest.fixture(scope="module")
def bags():
    from airflow.dag_processing.dagbag import BundleDagBag, DagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_MARKET_DB", "postgresql://nobody@192.0.2.1:1/none")
        ours = DagBag(dag_folder=str(ROOT / "dags"))
    folder = ROOT / "bench" / "floor_dags"  # as Airflow reads a bundle: its folder importable
    floors = BundleDagBag(dag_folder=str(folder), bundle_path=folder)
    assert ours.import_errors == {}
    assert floors.import_errors == {}
    return ours, floors


def shape(dag) -> dict:
    """Each task's upstream tasks, whether it is mapped, its trigger rule and concurrency
    limit; the DAG's limits."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    tasks = {
        t.task_id: (
            sorted(t.upstream_task_ids),
            isinstance(t, MappedOperator),
            str(t.trigger_rule),
            t.max_active_tis_per_dagrun,
        )
        for t in dag.tasks
    }
    return {"tasks": tasks, "max_active_tasks": dag.max_active_tasks}


def test_every_floor_dag_is_checked(bags):
    assert sorted(bags[1].dag_ids) == sorted(FLOORS)


@pytest.mark.parametrize("floor_id", sorted(FLOORS))
def test_a_floor_has_its_stage_shape(bags, floor_id):
    ours, floors = bags
    assert shape(floors.dags[floor_id]) == shape(ours.dags[FLOORS[floor_id]])
