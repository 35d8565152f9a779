"""The feature stage's tables: reading bars, the writes of a chunk, what is stored.

Prices are read as int64 fixed-point (exact) and times as UTC nanoseconds. Every read
runs in the caller's transaction; writes go through the shared batch inserter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from psycopg import sql

from market_backfill.db.connection import Connection, Connector, first_value
from market_backfill.db.copy_binary import BinaryKind, read_ts_rows, table_columns
from market_backfill.db.inserter import ConflictPolicy
from market_backfill.db.split_read import read_split
from market_backfill.db.tables import AGG_TABLE, CLEAN_TABLE, FEATURES_TABLE, MONTH_COUNTS_TABLE
from market_backfill.features.columns import FEATURE_COLUMNS, Features
from market_backfill.features.rollup import Bars
from market_backfill.names import FEATURE_LOGIC_VERSION, Timeframe
from market_backfill.planning import month_ceil, month_floor
from market_backfill.symbols import Series
from market_backfill.timeutil import from_ns, to_ns

if TYPE_CHECKING:
    import pandas as pd

SERIES_COLUMNS = ("symbol", "roll_rule", "rank")
KEY = (*SERIES_COLUMNS, "timeframe", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close")
AGG_VALUES = (*PRICE_COLUMNS, "volume", "bars", "complete")
AGG_COLUMNS = (*KEY, *AGG_VALUES)
AGG_BINARY: dict[str, BinaryKind] = {
    "symbol": "text",
    "roll_rule": "text",
    "rank": "int2",
    "timeframe": "text",
    "ts": "ts_ns",
    **dict.fromkeys(PRICE_COLUMNS, "numeric9"),
    "volume": "int8",
    "bars": "int4",
    "complete": "bool",
}
AGG_UPSERT = ConflictPolicy(key=KEY, update=AGG_VALUES, changed_only=True, touch=("updated_at",))
"""Rolled-up bars mirror the 1-minute bars: a changed or completed bucket is rewritten,
an unchanged one is left alone (``updated_at`` does not move)."""

FEATURE_VALUES = (*FEATURE_COLUMNS, "logic_version")
FEATURE_ROW_COLUMNS = (*KEY, *FEATURE_VALUES)
FEATURE_BINARY: dict[str, BinaryKind] = {
    "symbol": "text",
    "roll_rule": "text",
    "rank": "int2",
    "timeframe": "text",
    "ts": "ts_ns",
    **dict.fromkeys(FEATURE_COLUMNS, "float8"),
    "logic_version": "text",
}
"""The feature rows go by binary COPY: no float is printed or parsed."""
FEATURES_MISSING_ONLY = ConflictPolicy(key=KEY)
"""Dates without ``force_recalc``: rows already stored are untouched."""
FEATURES_REFRESH = ConflictPolicy(
    key=KEY, update=FEATURE_VALUES, changed_only=True, touch=("updated_at",)
)
"""Catch-up and ``force_recalc``: rows whose values differ are overwritten."""

_SERIES_WHERE = "symbol = %s AND roll_rule = %s AND rank = %s"
_BAR_FIELDS = ("ts", "open", "high", "low", "close", "volume")


def _bars_query(table: str, extra: tuple[str, ...], timeframe: bool) -> tuple[sql.SQL, str]:
    """(the SELECT of a bars table: ``ts``, the prices, int8 columns; the table): literals
    go in the ``{}`` in order, the table in ``{table}``."""
    cols = ", ".join(("ts", *PRICE_COLUMNS, "volume", *extra))
    where = "symbol = {} AND roll_rule = {} AND rank = {}" + (
        " AND timeframe = {}" if timeframe else ""
    )
    return sql.SQL(
        "SELECT " + cols + " FROM {table} WHERE " + where + " AND ts >= {} AND ts < {}"
    ), table


_PRICE_INDEXES = tuple(_BAR_FIELDS.index(c) for c in PRICE_COLUMNS)
_READ_CLEAN = _bars_query(CLEAN_TABLE, (), timeframe=False)
_READ_AGG = _bars_query(AGG_TABLE, ("bars::int8",), timeframe=True)


def read_bars(
    conn: Connection,
    series: Series,
    tf: Timeframe,
    lo: datetime,
    hi: datetime,
    connect: Connector | None = None,
) -> Bars:
    """The stored ``tf`` bars of ``series`` with ``ts`` in ``[lo, hi)``, ordered: the clean
    1-minute bars for ``1m``, else the rolled-up bars (with their ``bars`` counts). One
    index range scan sent as one binary value, decoded by numpy and put in order on the
    client (the query has no ``ORDER BY``: see :func:`read_ts_rows`); with ``connect``, a
    range of a week or more is read as two halves over two connections at once
    (:func:`read_split`). Prices exact int64 fixed-point, scaled by the server, so the
    feature stage never loads numba: its import and start cost a task more than the
    casts (a few ms per month of 1-minute bars). Runs in the caller's transaction (the
    first half of a split read in one of its own)."""
    if tf == "1m":
        template, key, names = _READ_CLEAN, series.key, _BAR_FIELDS
    else:
        template, key, names = _READ_AGG, (*series.key, tf), (*_BAR_FIELDS, "bars")

    def read(reader: Connection, lo_ns: int, hi_ns: int) -> np.ndarray:
        values = (*key, from_ns(lo_ns), from_ns(hi_ns))
        query = template[0].format(*map(sql.Literal, values), table=sql.Identifier(template[1]))
        with reader.cursor() as cur:
            return read_ts_rows(
                cur, query, len(names), numeric=_PRICE_INDEXES, scale_on_server=True
            )

    columns = np.ascontiguousarray(read_split(conn, connect, read, to_ns(lo), to_ns(hi)).T)
    return {name: columns[i] for i, name in enumerate(names)}


def bar_span(conn: Connection, series: Series) -> tuple[datetime, datetime] | None:
    """(first, last) stored 1-minute bar of ``series``, or None. Two probes of the primary
    key's ends (``ORDER BY ... LIMIT 1``: a ``min``/``max`` plan may read every entry of
    the series while the statistics lag behind a bulk load)."""
    query = sql.SQL(
        "SELECT (SELECT ts FROM {t} WHERE {w} ORDER BY ts LIMIT 1), "
        "(SELECT ts FROM {t} WHERE {w} ORDER BY ts DESC LIMIT 1)"
    ).format(t=sql.Identifier(CLEAN_TABLE), w=sql.SQL(_SERIES_WHERE))
    with conn.cursor() as cur:
        cur.execute(query, (*series.key, *series.key))
        first, last = cur.fetchone()
    return None if first is None else (first, last)


def _table_of(tf: Timeframe) -> tuple[str, str, tuple]:
    """(table, extra WHERE, its values) holding the ``tf`` bars."""
    if tf == "1m":
        return CLEAN_TABLE, "", ()
    return AGG_TABLE, " AND timeframe = %s", (tf,)


def nth_bar_before(
    conn: Connection, series: Series, tf: Timeframe, before: datetime, n: int
) -> datetime | None:
    """The ``ts`` of the ``n``-th stored ``tf`` bar before ``before``, or None when fewer
    are stored. One backward index scan of ``n`` entries."""
    table, extra, values = _table_of(tf)
    query = sql.SQL(
        "SELECT ts FROM {} WHERE " + _SERIES_WHERE + extra + " AND ts < %s "
        "ORDER BY ts DESC OFFSET %s LIMIT 1"
    ).format(sql.Identifier(table))
    with conn.cursor() as cur:
        cur.execute(query, (*series.key, *values, before, n - 1))
        return first_value(cur.fetchone())


_COUNT_MINUTES = sql.SQL(
    "SELECT (SELECT count(*) FROM {bars} WHERE " + _SERIES_WHERE + " AND ts >= %s AND ts < %s)"
    " + (SELECT coalesce(sum(bars), 0) FROM {counts} WHERE " + _SERIES_WHERE + " "
    "AND month >= %s AND month < %s)"
    " + (SELECT count(*) FROM {bars} WHERE " + _SERIES_WHERE + " AND ts >= %s AND ts < %s)"
).format(bars=sql.Identifier(CLEAN_TABLE), counts=sql.Identifier(MONTH_COUNTS_TABLE))


def count_minutes(conn: Connection, series: Series, lo: datetime | None, hi: datetime) -> int:
    """How many 1-minute bars of ``series`` are stored in ``[lo, hi)`` (``lo`` None: from
    the first). The whole months inside come from ``bar_month_counts`` (kept by triggers
    in the writing transactions, so equal to a count in the same snapshot), only the
    partial months at either end are counted bar by bar: the cost does not grow with the
    span (a 1d warm-up spans more than a year of minutes)."""
    start = lo or datetime(1, 1, 1, tzinfo=UTC)
    first, last = month_ceil(start), month_floor(hi)
    if first >= last:  # no whole month inside: count it all
        first = last = hi
    params = (
        *(*series.key, start, first),
        *(*series.key, first.date(), last.date()),
        *(*series.key, last, hi),
    )
    with conn.cursor() as cur:
        cur.execute(_COUNT_MINUTES, params)
        return int(cur.fetchone()[0])


def missing_features(
    conn: Connection, series: Series, tf: Timeframe, lo: datetime, hi: datetime
) -> int:
    """How many ``tf`` bars of ``series`` in ``[lo, hi)`` have no feature row: the
    anti-join of bars and features, as the difference of two index range counts (a
    feature row exists only for a stored bar), so no join plan can go wrong on a table
    whose statistics lag behind a bulk load."""
    table, extra, values = _table_of(tf)
    query = sql.SQL(
        "SELECT (SELECT count(*) FROM {bars} WHERE " + _SERIES_WHERE + extra + " "
        "AND ts >= %s AND ts < %s) - (SELECT count(*) FROM {f} WHERE " + _SERIES_WHERE + " "
        "AND timeframe = %s AND ts >= %s AND ts < %s)"
    ).format(bars=sql.Identifier(table), f=sql.Identifier(FEATURES_TABLE))
    with conn.cursor() as cur:
        cur.execute(query, (*series.key, *values, lo, hi, *series.key, tf, lo, hi))
        return int(cur.fetchone()[0])


def newest_feature(conn: Connection, series: Series, tf: Timeframe) -> datetime | None:
    """The ``ts`` of the newest feature row of ``series`` and ``tf``, or None (the primary
    key's last entry)."""
    query = sql.SQL(
        "SELECT ts FROM {} WHERE " + _SERIES_WHERE + " AND timeframe = %s ORDER BY ts DESC LIMIT 1"
    ).format(sql.Identifier(FEATURES_TABLE))
    with conn.cursor() as cur:
        cur.execute(query, (*series.key, tf))
        return first_value(cur.fetchone())


def agg_rows(series: Series, tf: Timeframe, bars: Bars) -> dict[str, np.ndarray]:
    """Rolled-up bars as columns of ``market_bars_ohlcv_agg``."""
    keys = dict(zip((*SERIES_COLUMNS, "timeframe"), (*series.key, tf), strict=True))
    return table_columns({k: bars[k] for k in ("ts", *AGG_VALUES)}, keys, AGG_COLUMNS)


def feature_rows(
    series: Series, tf: Timeframe, ts_ns: np.ndarray, features: Features
) -> dict[str, np.ndarray]:
    """Feature arrays (NaN: NULL) as columns of ``market_features_v1``."""
    keys = dict(zip((*SERIES_COLUMNS, "timeframe"), (*series.key, tf), strict=True))
    constants = {**keys, "logic_version": FEATURE_LOGIC_VERSION}
    return table_columns({"ts": ts_ns, **features._asdict()}, constants, FEATURE_ROW_COLUMNS)


def stored_features(conn: Connection, series: Series, tf: Timeframe) -> pd.DataFrame:
    """Every stored feature row of ``series`` and ``tf`` with ``updated_at`` (reports, tests)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, ("ts", *FEATURE_VALUES, "updated_at")))
    query = sql.SQL(
        "SELECT {} FROM {} WHERE " + _SERIES_WHERE + " AND timeframe = %s ORDER BY ts"
    ).format(cols, sql.Identifier(FEATURES_TABLE))
    import pandas as pd

    with conn.cursor() as cur:
        cur.execute(query, (*series.key, tf))
        return pd.DataFrame(cur.fetchall(), columns=["ts", *FEATURE_VALUES, "updated_at"])
