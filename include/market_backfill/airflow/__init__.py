"""The Airflow layer: the only code of the package that imports Airflow.

Parse-time helpers for the DAG files (params, assets, default args) and the task-time
glue (connections, the run's context, the chunk runner and the run summary).
"""
