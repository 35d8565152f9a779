"""``floor_gaps``: Airflow's floor, a DAG of ``gap_detection``'s shape whose tasks do
nothing (issue 15's reference for the gap scan through Airflow).

The same tasks and flow as ``dags/gap_detection.py`` (schema, plan, one mapped detection
per symbol, the repairs' plan, the mapped repairs (none), announce, report), the same
mapped-task labels, no import of the project: ``bench/bench_gap_dag.py`` runs it with
``airflow dags test`` beside ``gap_detection`` and reports the difference.
"""

from __future__ import annotations

from airflow.sdk import Param, TriggerRule, dag, task


@dag(
    dag_id="floor_gaps",
    schedule=None,
    catchup=False,
    params={"symbols": Param(1, type="integer", minimum=1, maximum=1024)},
    tags=["benchmark"],
)
def floor_gaps() -> None:
    @task
    def ensure_schema() -> None:
        """Nothing."""

    @task
    def plan(params=None) -> list[dict]:
        """One target per symbol, labelled like the real ones."""
        return [{"label": f"S{n} 2011-01-01 .. 2025-12-31"} for n in range(params["symbols"])]

    @task(multiple_outputs=False, map_index_template="{{ chunk_label }}")
    def detect(target: dict) -> dict:
        """Nothing scanned."""
        from airflow.sdk import get_current_context

        get_current_context()["chunk_label"] = target["label"]
        return {"gaps": 0}

    @task
    def plan_repairs() -> list[dict]:
        """No gap to repair."""
        return []

    @task(multiple_outputs=False, map_index_template="{{ chunk_label }}")
    def repair(gap: dict) -> dict:
        """Never runs (no gap)."""
        return {}

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def announce() -> int:
        """Nothing written."""
        return 0

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report(ti=None) -> dict:
        """The plan's length."""
        return {"targets": len(ti.xcom_pull(task_ids="plan"))}

    targets = plan()
    ensure_schema() >> targets
    gaps = plan_repairs()
    detect.expand(target=targets) >> gaps
    repairs = repair.expand(gap=gaps)
    repairs >> [announce(), report()]


floor_gaps()
