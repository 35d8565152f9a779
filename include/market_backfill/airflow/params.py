"""Parse-time helpers for the DAG files: shared params and default task args.

Imported when DAG files are parsed, so it imports nothing heavy and touches no service.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from market_backfill.names import DEFAULT_BATCH_SIZE, DEFAULT_SYMBOLS, SOURCES, SYMBOL_PATTERN

DEFAULT_ARGS: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


def range_params(catch_up: str) -> dict[str, Param]:
    """``symbols``, ``start``, ``end`` with the trigger form's validation and pickers;
    ``catch_up`` says what a run without dates does."""
    return {
        "symbols": Param(
            list(DEFAULT_SYMBOLS),
            type="array",
            minItems=1,
            items={"type": "string", "pattern": SYMBOL_PATTERN},
            title="Symbols",
            description="Registry symbols DATASET:ROOT, e.g. GLBX.MDP3:NQ",
        ),
        "start": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Start date (UTC)",
            description=f"First day, inclusive. Empty with End empty: {catch_up}.",
        ),
        "end": Param(
            None,
            type=["null", "string"],
            format="date",
            title="End date (UTC)",
            description="Last day, inclusive.",
        ),
    }


def source_params(what: str) -> dict[str, Param]:
    """Where bars come from: ``source``, ``dbn_path``, ``roll_rule`` and ``rank``;
    ``what`` says what is loaded (the chunks, a gap's repair)."""
    return {
        "roll_rule": Param(
            "v",
            type="string",
            enum=["v", "c", "n"],
            title="Roll rule",
            values_display={"v": "v: volume", "c": "c: calendar", "n": "n: open interest"},
            description="How the continuous contract rolls.",
        ),
        "rank": Param(
            0,
            type="integer",
            minimum=0,
            maximum=9,
            title="Rank",
            description="0 = front month, 1 = second, ...",
        ),
        "source": Param(
            SOURCES[0],
            type="string",
            enum=list(SOURCES),
            title="Source",
            description=f"Where {what} load from. databento: the historical API (billed). "
            "dbn_file: DBN files on disk.",
        ),
        "dbn_path": Param(
            None,
            type=["null", "string"],
            title="DBN path",
            description="For source dbn_file: a .dbn or .dbn.zst file, or a glob.",
        ),
    }


def batch_size_param() -> Param:
    """``batch_size``: rows per committed batch of the shared inserter."""
    return Param(
        DEFAULT_BATCH_SIZE,
        type="integer",
        minimum=1,
        maximum=100000,
        title="Rows per committed batch",
        description="Rows per committed transaction (the shared inserter's batch).",
    )


def flag(title: str, description: str) -> Param:
    """A boolean param, off by default."""
    return Param(False, type="boolean", title=title, description=description)
