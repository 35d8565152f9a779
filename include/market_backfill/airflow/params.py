"""Parse-time helpers for the DAG files: shared params and default task args.

Imported when DAG files are parsed, so it imports nothing heavy and touches no service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from market_backfill.names import (
    BATCH_SOURCE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_SYMBOLS,
    DEFAULT_SYMBOLS_PER_TASK,
    DEFAULT_WRITERS,
    MARKET_DB_POOL,
    MAX_WRITERS,
    ROLL_RULES,
    SOURCES,
    SYMBOL_PATTERN,
)

DEFAULT_ARGS: dict[str, Any] = {
    "pool": MARKET_DB_POOL,  # tasks calling Databento say pool=DATABENTO_POOL
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
"""The JSON Schema dialect of every param (``$schema``): each keyword the params use is in
Draft 7. Airflow validates a param's schema against its dialect's meta-schema each time it
resolves the param, and resolves every param of every task when it serializes a DAG (about
2,000 times in one ``airflow dags test``): the Draft 7 meta-schema is checked in less than
half the time of the default (2020-12)."""


def param(default: Any, **schema: Any) -> Param:
    """A trigger-form param: ``default`` and its JSON Schema (``type``, bounds, ``title``,
    ``description`` ...) in :data:`SCHEMA_DIALECT`."""
    return Param(default, **{"$schema": SCHEMA_DIALECT, **schema})


def range_params(catch_up: str) -> dict[str, Param]:
    """``symbols``, ``start``, ``end`` with the trigger form's validation and pickers;
    ``catch_up`` says what a run without dates does."""
    return {
        "symbols": param(
            list(DEFAULT_SYMBOLS),
            type="array",
            minItems=1,
            items={"type": "string", "pattern": SYMBOL_PATTERN},
            title="Symbols",
            description="Registry symbols DATASET:ROOT, e.g. GLBX.MDP3:NQ",
        ),
        "start": date_param(
            "Start date (UTC)", f"First day, inclusive. Empty with End empty: {catch_up}."
        ),
        "end": date_param("End date (UTC)", "Last day, inclusive."),
    }


def date_param(title: str, description: str) -> Param:
    """An optional ``YYYY-MM-DD`` date (the trigger form shows a date picker)."""
    return param(None, type=["null", "string"], format="date", title=title, description=description)


def choice_param(
    default: str,
    choices: Sequence[str],
    title: str,
    description: str,
    labels: Mapping[str, str] | None = None,
) -> Param:
    """A param the trigger form offers as a drop-down of ``choices`` (shown as ``labels``)."""
    extra: dict[str, Any] = {"values_display": dict(labels)} if labels else {}
    return param(
        default, type="string", enum=list(choices), title=title, description=description, **extra
    )


def text_param(title: str, description: str) -> Param:
    """An optional free-text param, empty by default."""
    return param(None, type=["null", "string"], title=title, description=description)


def series_params() -> dict[str, Param]:
    """Which continuous series: ``roll_rule`` and ``rank``, empty for each symbol's
    registry default (``NQ.v.0`` for the preloaded roots)."""
    return {
        "roll_rule": param(
            None,
            type=["null", "string"],
            enum=[None, *ROLL_RULES],
            values_display={rule: f"{rule}: {name}" for rule, name in ROLL_RULES.items()},
            title="Roll rule",
            description="How the continuous contract rolls: v volume, c calendar, n open "
            "interest. Empty: the registry's default of each symbol.",
        ),
        "rank": param(
            None,
            type=["null", "integer"],
            minimum=0,
            maximum=9,
            title="Rank",
            description="0 = front month, 1 = second, ... Empty: the registry's default.",
        ),
    }


def source_params(what: str, sources: Sequence[str] = SOURCES) -> dict[str, Param]:
    """Where bars come from: ``source`` (one of ``sources``) and ``dbn_path``, with the
    series params; ``what`` says what is loaded (the chunks, a gap's repair)."""
    batch = (
        f" {BATCH_SOURCE}: Databento batch jobs (billed), downloaded once, for long ranges."
        if BATCH_SOURCE in sources
        else ""
    )
    return {
        **series_params(),
        "source": choice_param(
            sources[0],
            sources,
            "Source",
            f"Where {what} load from. databento: the historical API (billed). "
            f"dbn_file: DBN files on disk.{batch}",
        ),
        "dbn_path": text_param(
            "DBN path", "For source dbn_file: a .dbn or .dbn.zst file, or a glob."
        ),
    }


def int_param(default: int, minimum: int, maximum: int, title: str, description: str) -> Param:
    """An integer param with bounds the trigger form enforces."""
    return param(
        default,
        type="integer",
        minimum=minimum,
        maximum=maximum,
        title=title,
        description=description,
    )


def batch_size_param() -> Param:
    """``batch_size``: rows per committed batch of the shared inserter."""
    return int_param(
        DEFAULT_BATCH_SIZE,
        1,
        100000,
        "Rows per committed batch",
        "Rows per committed transaction (the shared inserter's batch).",
    )


def writers_param() -> Param:
    """``writers``: connections one chunk writes its committed batches over at once."""
    return int_param(
        DEFAULT_WRITERS,
        1,
        MAX_WRITERS,
        "Writers per chunk",
        "Connections one chunk writes its committed batches over at once: the server "
        "writes one batch while it commits another. 1 writes them one after another.",
    )


def symbols_per_task_param() -> Param:
    """``symbols_per_task``: symbols of one month run by one mapped task."""
    return int_param(
        DEFAULT_SYMBOLS_PER_TASK,
        1,
        1000,
        "Symbols per task",
        "Symbols of one month run by one mapped task (labelled like ES,NQ,+8 2025-12); "
        "each symbol and month is still audited and summarised on its own.",
    )


def flag(title: str, description: str) -> Param:
    """A boolean param, off by default."""
    return param(False, type="boolean", title=title, description=description)
