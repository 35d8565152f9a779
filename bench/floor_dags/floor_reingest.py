"""``floor_reingest``: Airflow's floor, a DAG of ``ohlcv_reingest``'s shape whose tasks
do nothing (issue 15's reference: what any project pays for this shape).

The same tasks and flow as ``dags/ohlcv_reingest.py`` (schema, plan, the batch sensor,
the download, one mapped task per month, the summary), the same mapped-task labels,
no import of the project: ``bench/run_all.py`` runs it with ``airflow dags test`` beside
``ohlcv_reingest`` and reports the difference as the project's fixed cost.
"""

from __future__ import annotations

from airflow.sdk import PokeReturnValue, dag, task
from floor_common import chunk, ensure_schema, floor_args, plan_months, summarize


@dag(**floor_args("floor_reingest", "months"))
def floor_reingest() -> None:
    @task.sensor(mode="reschedule", poke_interval=5, timeout=60)
    def batch_ready(chunks: list[dict]) -> PokeReturnValue:
        """Done at the first poke."""
        return PokeReturnValue(is_done=True, xcom_value={})

    @task
    def download_batch(jobs: dict) -> dict:
        """Nothing to download."""
        return {}

    chunks = plan_months.override(task_id="plan")()
    ensure_schema() >> chunks
    files = download_batch(batch_ready(chunks))
    mapped = chunk.override(task_id="reingest_chunk", max_active_tis_per_dagrun=4)
    mapped.partial(files=files).expand(chunk=chunks) >> summarize()


floor_reingest()
