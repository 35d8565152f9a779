"""``floor_reingest``: Airflow's floor, a DAG of ``ohlcv_reingest``'s shape whose tasks
do nothing (issue 15's reference: what any project pays for this shape).

The same tasks and flow as ``dags/ohlcv_reingest.py`` (schema, plan, the batch sensor,
the download, one mapped task per month, the summary), the same mapped-task labels,
no import of the project: ``bench/run_all.py`` runs it with ``airflow dags test`` beside
``ohlcv_reingest`` and reports the difference as the project's fixed cost.
"""

from __future__ import annotations

from airflow.sdk import Param, PokeReturnValue, TriggerRule, dag, task


@dag(
    dag_id="floor_reingest",
    schedule=None,
    catchup=False,
    params={"months": Param(12, type="integer", minimum=1, maximum=1024)},
    tags=["benchmark"],
)
def floor_reingest() -> None:
    @task
    def ensure_schema() -> None:
        """Nothing."""

    @task
    def plan(params=None) -> list[dict]:
        """One chunk per month, labelled like the real ones."""
        months = int(params["months"])
        return [{"label": f"NQ 2025-{m % 12 + 1:02d}", "month": m} for m in range(months)]

    @task.sensor(mode="reschedule", poke_interval=5, timeout=60)
    def batch_ready(chunks: list[dict]) -> PokeReturnValue:
        """Done at the first poke."""
        return PokeReturnValue(is_done=True, xcom_value={})

    @task
    def download_batch(jobs: dict) -> dict:
        """Nothing to download."""
        return {}

    @task(map_index_template="{{ chunk_label }}", max_active_tis_per_dagrun=4)
    def reingest_chunk(chunk: dict, files: dict) -> dict:
        """Nothing loaded."""
        from airflow.sdk import get_current_context

        get_current_context()["chunk_label"] = chunk["label"]
        return {"rows_in": 0}

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def summarize(ti=None) -> dict:
        """The plan's length."""
        return {"chunks": len(ti.xcom_pull(task_ids="plan"))}

    chunks = plan()
    ensure_schema() >> chunks
    files = download_batch(batch_ready(chunks))
    reingest_chunk.partial(files=files).expand(chunk=chunks) >> summarize()


floor_reingest()
