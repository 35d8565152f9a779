"""What the floor DAGs share: their DAG arguments and their no-op tasks.

A floor DAG (issue 15's reference) has its stage's tasks, flow and concurrency limits and
does nothing in them; it imports no module of the project. The tasks here are TaskFlow
tasks: each floor DAG places them under its stage's task ids (``override``). Airflow puts
the DAG folder on ``sys.path``, so the floor files import this module by name.
"""

from __future__ import annotations

from airflow.sdk import Param, TriggerRule, get_current_context, task


def floor_args(dag_id: str, count: str) -> dict:
    """``@dag`` arguments of a floor: never scheduled, a stage's limits (one run, four
    tasks at a time), one integer param ``count`` (how many mapped tasks the plan gives)."""
    return {
        "dag_id": dag_id,
        "schedule": None,
        "catchup": False,
        "max_active_runs": 1,
        "max_active_tasks": 4,
        "params": {count: Param(12, type="integer", minimum=1, maximum=1024)},
        "tags": ["benchmark"],
    }


@task
def ensure_schema() -> None:
    """Nothing."""


@task
def plan_months(params=None) -> list[dict]:
    """One chunk per month (``months``), labelled like the real ones."""
    return [{"label": f"NQ {2011 + m // 12}-{m % 12 + 1:02d}"} for m in range(params["months"])]


@task(multiple_outputs=False, map_index_template="{{ chunk_label }}")
def chunk(chunk: dict, suffix: str = "", files: dict | None = None) -> dict:
    """Nothing done for the chunk (nor with ``files``, a download's result); its label as
    the real task gives it."""
    get_current_context()["chunk_label"] = chunk["label"] + suffix
    return {"chunk": chunk["label"]}


@task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0)
def summarize(ti=None) -> dict:
    """The plan's length."""
    return {"chunks": len(ti.xcom_pull(task_ids="plan"))}
