"""``floor_features``: Airflow's floor, a DAG of ``feature_backfill``'s shape whose tasks
do nothing (issue 15's reference for the every-stage figure).

The same tasks, flow and limits as ``dags/feature_backfill.py`` (schema, plan, one
mapped rollup task per month, then one mapped feature task per month, the summary), the
same mapped-task labels, no import of the project: ``bench/bench_scale.py
--stage-floors`` runs it on the same stack before ``feature_backfill``, with as many
mapped tasks.
"""

from __future__ import annotations

from airflow.sdk import TriggerRule, dag
from floor_common import chunk, ensure_schema, floor_args, plan_months, summarize


@dag(**floor_args("floor_features", "months"))
def floor_features() -> None:
    chunks = plan_months.override(task_id="plan")()
    ensure_schema() >> chunks
    rollups = chunk.override(task_id="rollup_chunk", max_active_tis_per_dagrun=4)
    features = chunk.override(
        task_id="feature_chunk", max_active_tis_per_dagrun=4, trigger_rule=TriggerRule.NONE_FAILED
    )
    (
        rollups.partial(suffix=" agg").expand(chunk=chunks)
        >> features.expand(chunk=chunks)
        >> summarize()
    )


floor_features()
