"""The ``triangle_backfill`` params, validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market_backfill.db.tables import CLEAN_TABLE, LEGACY_TABLE
from market_backfill.errors import ParamError
from market_backfill.names import DEFAULT_BATCH_SIZE, DEFAULT_WRITERS, TRIANGLE_FLAGS
from market_backfill.params import (
    Params,
    date_range,
    param_batch_size,
    param_choice,
    param_series,
    param_symbols,
    param_writers,
)
from market_backfill.symbols import Symbol
from market_backfill.triangles.engine import TriangleSettings

SOURCE_TABLES = {"clean": CLEAN_TABLE, "legacy": LEGACY_TABLE}


@dataclass(frozen=True)
class TriangleParams:
    """Validated ``triangle_backfill`` params."""

    symbols: tuple[Symbol, ...]
    window: tuple[datetime, datetime] | None
    settings: TriangleSettings
    source_table: str
    purge: bool
    batch_size: int = DEFAULT_BATCH_SIZE
    roll_rule: str | None = None  # None: each symbol's registry default
    rank: int | None = None
    writers: int = DEFAULT_WRITERS  # connections a chunk's batches go over at once

    @property
    def table(self) -> str:
        """The bars table to read."""
        return SOURCE_TABLES[self.source_table]

    @property
    def legacy(self) -> bool:
        return self.source_table == "legacy"


def parse_params(params: Params) -> TriangleParams:
    """Validate the DAG params; raise :class:`ParamError` naming the first bad one."""
    symbols = param_symbols(params)
    window = date_range(params)
    source = param_choice(params, "source_table", SOURCE_TABLES, "clean")
    if source == "legacy" and not params.get("allow_legacy"):
        raise ParamError(
            "source_table",
            "param 'source_table' is 'legacy', which needs 'allow_legacy': true: the legacy "
            "table stamps bars with their CLOSE time and carries known corruption; prefer "
            "'clean'",
        )
    roll_rule, rank = param_series(params)
    if source == "legacy" and (roll_rule is not None or rank is not None):
        raise ParamError(
            "roll_rule",
            "param 'roll_rule'/'rank': the legacy table holds one series per symbol (the "
            "registry's default); leave them empty",
        )
    settings = TriangleSettings(
        anchor=params.get("anchor", "weekly"),
        anchor_at=params.get("anchor_at") or None,
        warmup=params.get("warmup", 5),
        **{flag: bool(params.get(flag, False)) for flag in TRIANGLE_FLAGS},
    )
    return TriangleParams(
        symbols,
        window,
        settings,
        source,
        bool(params.get("purge")),
        param_batch_size(params),
        roll_rule,
        rank,
        param_writers(params),
    )
