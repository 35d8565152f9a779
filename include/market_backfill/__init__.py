"""market-backfill: the library behind the DAGs (sources, hygiene, batch inserter, planning).

DAG files only wire tasks; everything with logic lives here and is unit tested.
"""

from __future__ import annotations

__version__ = "0.1.0"
