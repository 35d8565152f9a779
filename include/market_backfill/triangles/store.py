"""The ``triangle_events_v1`` table: its columns, its key, and the writes of a chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection
from market_backfill.db.copy_binary import BinaryKind, table_columns
from market_backfill.db.inserter import ConflictPolicy
from market_backfill.db.tables import EVENTS_TABLE
from market_backfill.names import TRIANGLE_FLAGS
from market_backfill.symbols import Series
from market_backfill.triangles.engine import LOGIC_VERSION, SETTING_COLUMNS
from market_backfill.triangles.params import TriangleParams

if TYPE_CHECKING:
    import pandas as pd

SERIES_COLUMNS = ("symbol", "roll_rule", "rank")
EVENT_COLUMNS = (
    *SERIES_COLUMNS,
    "ts",
    "direction",
    "bias_1m",
    "bias_5m",
    "bias_15m",
    "bias_1h",
    "bias_4h",
    "bias_1d",
    "htf_bullish",
    "htf_bearish",
    *SETTING_COLUMNS,
    "source_table",
    "logic_version",
)
EVENT_BINARY: dict[str, BinaryKind] = {
    **dict.fromkeys(EVENT_COLUMNS, "text"),
    "rank": "int2",
    "ts": "ts_ns",
    "htf_bullish": "bool",
    "htf_bearish": "bool",
    "warmup": "int4",
    **dict.fromkeys(TRIANGLE_FLAGS, "bool"),
}
"""The events go by binary COPY (the table's exact types: smallint rank, integer warm-up,
booleans): nothing is printed or parsed."""
EVENT_INSERT_IGNORE = ConflictPolicy(
    key=(*SERIES_COLUMNS, "ts", "direction", *SETTING_COLUMNS, "source_table", "logic_version")
)


def settings_filter(p: TriangleParams, series: Series) -> tuple[sql.Composable, list[Any]]:
    """A WHERE condition (and its values) selecting the events of ``series`` with these
    settings."""
    row = p.settings.as_row()
    cols = [*SERIES_COLUMNS, *SETTING_COLUMNS, "source_table", "logic_version"]
    values = [*series.key, *(row[c] for c in SETTING_COLUMNS), p.source_table, LOGIC_VERSION]
    cond = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols)
    return cond, values


def event_rows(
    events: Mapping[str, np.ndarray], series: Series, parsed: TriangleParams
) -> dict[str, np.ndarray]:
    """The engine's events (:meth:`EngineResult.event_columns`) as the table's columns:
    with the series, settings, source and version repeated on every row."""
    constants: dict[str, Any] = {
        **dict(zip(SERIES_COLUMNS, series.key, strict=True)),
        **parsed.settings.as_row(),
        "source_table": parsed.source_table,
        "logic_version": LOGIC_VERSION,
    }
    return table_columns(events, constants, EVENT_COLUMNS)


def purge_range(
    conn: Connection, series: Series, parsed: TriangleParams, start: datetime, end: datetime
) -> int:
    """Delete the events of ``series`` with these settings in ``[start, end)`` (in the
    caller's transaction); return how many."""
    cond, values = settings_filter(parsed, series)
    query = sql.SQL("DELETE FROM {} WHERE ts >= %s AND ts < %s AND {}").format(
        sql.Identifier(EVENTS_TABLE), cond
    )
    with conn.cursor() as cur:
        cur.execute(query, [start, end, *values])
        return cur.rowcount


def stored_events(conn: Connection, symbols: Sequence[str]) -> pd.DataFrame:
    """Every stored event of ``symbols`` (for reports and tests), ordered."""
    query = sql.SQL(
        "SELECT {} FROM {} WHERE symbol = ANY(%s) ORDER BY symbol, ts, direction"
    ).format(sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS)), sql.Identifier(EVENTS_TABLE))
    import pandas as pd

    with conn.cursor() as cur:
        cur.execute(query, (list(symbols),))
        return pd.DataFrame(cur.fetchall(), columns=list(EVENT_COLUMNS))


# -- what each series x settings has absorbed of the bar changes (triangle_progress) -----------


def settings_key(p: TriangleParams) -> str:
    """These settings, their source table and the logic version as one canonical string."""
    import json

    row = {**p.settings.as_row(), "source_table": p.source_table, "logic_version": LOGIC_VERSION}
    return json.dumps(row, sort_keys=True, separators=(",", ":"))
