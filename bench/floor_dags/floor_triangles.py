"""``floor_triangles``: Airflow's floor, a DAG of ``triangle_backfill``'s shape whose
tasks do nothing (issue 15's reference for the every-stage figure).

The same tasks, flow and limits as ``dags/triangle_backfill.py`` (schema, plan, one
mapped task per month, the summary), the same mapped-task labels, no import of the
project: ``bench/bench_scale.py --stage-floors`` runs it on the same stack before
``triangle_backfill``, with as many mapped tasks.
"""

from __future__ import annotations

from airflow.sdk import dag
from floor_common import chunk, ensure_schema, floor_args, plan_months, summarize


@dag(**floor_args("floor_triangles", "months"))
def floor_triangles() -> None:
    chunks = plan_months.override(task_id="plan")()
    ensure_schema() >> chunks
    mapped = chunk.override(task_id="triangle_chunk", max_active_tis_per_dagrun=4)
    mapped.expand(chunk=chunks) >> summarize()


floor_triangles()
