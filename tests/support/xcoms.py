"""Reading a finished run's XComs from Airflow's metadata database."""

from __future__ import annotations

import json


def mapped_xcoms(dag_id: str, run_id: str, task_id: str) -> dict[str | None, dict]:
    """The return values of a task's instances, keyed by their rendered map index (the
    ``map_index_template`` label; None for an unmapped task)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = {
            ti.map_index: ti.rendered_map_index
            for ti in session.query(TaskInstance).filter_by(
                dag_id=dag_id, run_id=run_id, task_id=task_id
            )
        }
        values = {
            x.map_index: x.value
            for x in session.query(XComModel).filter_by(
                dag_id=dag_id, run_id=run_id, task_id=task_id, key="return_value"
            )
        }
    return {tis[i]: (json.loads(v) if isinstance(v, str) else v) for i, v in values.items()}


def xcom_keys(dag_id: str, run_id: str) -> set[str]:
    """The keys of every XCom a run's tasks pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel.key).filter_by(dag_id=dag_id, run_id=run_id)
        return {key for (key,) in rows}
