"""market-backfill: the library behind the DAGs, a room per stage.

``reingest``, ``triangles`` and ``gaps`` are the stages (each named after its DAG: params,
pure logic, task bodies); ``sources`` reads Databento and DBN files; ``db`` writes and
audits; ``airflow`` is the only layer that imports Airflow. DAG files only wire tasks.
"""

from __future__ import annotations

__version__ = "0.1.0"
