"""``floor_gaps``: Airflow's floor, a DAG of ``gap_detection``'s shape whose tasks do
nothing (issue 15's reference for the gap scan through Airflow).

The same tasks and flow as ``dags/gap_detection.py`` (schema, plan, one mapped detection
per symbol, the repairs' plan, the mapped repairs (none), announce, report), the same
mapped-task labels, no import of the project: ``bench/bench_gap_dag.py`` runs it with
``airflow dags test`` beside ``gap_detection`` and reports the difference.
"""

from __future__ import annotations

from airflow.sdk import TriggerRule, dag, task
from floor_common import chunk, ensure_schema, floor_args


@dag(**floor_args("floor_gaps", "symbols"))
def floor_gaps() -> None:
    @task
    def plan(params=None) -> list[dict]:
        """One target per symbol, labelled like the real ones."""
        return [{"label": f"S{n} 2011-01-01 .. 2025-12-31"} for n in range(params["symbols"])]

    @task
    def plan_repairs() -> list[dict]:
        """No gap to repair."""
        return []

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
    chunk.override(task_id="detect").expand(chunk=targets) >> gaps
    repairs = chunk.override(task_id="repair", max_active_tis_per_dagrun=2).expand(chunk=gaps)
    repairs >> [announce(), report()]


floor_gaps()
