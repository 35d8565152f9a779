"""The project's Airflow pools, created when missing (never resized).

    python -m market_backfill.airflow.pools

Run once per Airflow metadata database, after ``airflow db migrate`` (``./dev``, the
Compose init container and the test harnesses do): a pool that exists keeps the slots an
operator gave it; a missing one is created with the defaults below. A scheduler does not
run a task whose pool is missing, so every task of the DAGs names one of these.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from market_backfill.names import DATABENTO_POOL, MARKET_DB_POOL

log = logging.getLogger(__name__)


class PoolSpec(NamedTuple):
    """A pool's default size and what it guards."""

    slots: int
    description: str


POOLS: dict[str, PoolSpec] = {
    DATABENTO_POOL: PoolSpec(
        4, "market-backfill: concurrent tasks calling Databento (data and metadata requests)"
    ),
    MARKET_DB_POOL: PoolSpec(
        8, "market-backfill: concurrent tasks reading and writing the market database"
    ),
}


def ensure_pools() -> list[str]:
    """Create the missing pools (one transaction of the metadata database); return their
    names. Existing pools are left as they are."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    created = []
    with create_session() as session:
        for name, spec in POOLS.items():
            if Pool.get_pool(name, session=session) is None:
                Pool.create_or_update_pool(
                    name, spec.slots, spec.description, include_deferred=False, session=session
                )
                created.append(name)
    return created


def main() -> None:
    created = ensure_pools()
    kept = sorted(set(POOLS) - set(created))
    print(f"pools created: {created or 'none'}; kept as they were: {kept or 'none'}")


if __name__ == "__main__":
    main()
