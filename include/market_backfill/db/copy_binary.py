"""Vectorised encoding and decoding of PostgreSQL's binary COPY format.

Writing: columns (a DataFrame's, or a mapping of numpy arrays: no pandas needed) to
tuples (:func:`encode_rows`). Reading (not COPY: faster
for these narrow rows): a query's ``timestamptz``, ``bigint`` and ``numeric`` columns sent
as one binary value and decoded into an int64 matrix (:func:`read_ts_rows`,
:func:`read_timestamps`).

For tables whose columns are all fixed-width numbers, booleans, timestamps or text: no
float or integer is ever turned into a string (the server parses nothing), and no row
loop: every column becomes a (rows x width) byte matrix with numpy. Rows of one width (no
NULL, each text column's values of one length: a chunk's bars) are one (rows x row width)
matrix filled column by column; other rows are scattered into one buffer at computed
offsets. A NULL (None, NaN) is a field of length -1.

Each column's binary kind names its exact PostgreSQL type (the format has no coercion):
``text``, ``int2``, ``int4``, ``int8``, ``float8``, ``bool``, ``ts_ns`` (int64 nanoseconds
since the epoch, to ``timestamptz``; sub-microsecond parts are cut), ``numeric9`` (int64
fixed-point with 9 decimals, Databento's prices, to ``numeric``: exact, see
:func:`numeric9_fields`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from psycopg import sql

from market_backfill.names import FIXED_SCALE
from market_backfill.timeutil import from_ns

if TYPE_CHECKING:
    import pandas as pd


BinaryKind = Literal["text", "int2", "int4", "int8", "float8", "bool", "ts_ns", "numeric9"]
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_FIXED: dict[str, str] = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8"}
NUMERIC_NEG = 0x4000  # the sign word of a negative numeric
_NBASE = 10_000  # numeric digits are base 10000 words
_FEW_TEXTS = 16  # distinct values of a text column found by comparison before sorting


_Part = tuple[np.ndarray, np.ndarray, object]
"""One encoded column: NULL mask, each row's field length (-1: NULL), and its data (a
rows x width byte matrix, or a text column's (codes, distinct values as bytes))."""


@dataclass(frozen=True)
class BinaryRows:
    """Encoded tuples: ``data[offsets[i]:offsets[i + 1]]`` is row ``i``."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, len(rows) + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def payload(self, start: int, stop: int) -> bytes:
        """A complete COPY stream (signature, rows ``[start, stop)``, trailer)."""
        body = self.data[self.offsets[start] : self.offsets[stop]].tobytes()
        return SIGNATURE + body + TRAILER


def numeric9_fields(values: np.ndarray) -> np.ndarray:
    """int64 fixed-point values (1e-9 units, ``|v| < 2**63``) as binary ``numeric`` fields
    of one fixed layout, rows x 20 bytes: 6 digit words (base 10000), weight 2 (three
    words before the point: up to 10**12), the sign, display scale 9, then the words. The
    server strips zero words and checks the column's precision as for any value, so
    ``numeric(20, 9)`` stores exactly ``v / 1e9``."""
    ints = np.asarray(values, dtype=np.int64)
    whole, frac = np.divmod(np.abs(ints), FIXED_SCALE)
    frac12 = frac * 1000  # 9 decimals as three 4-digit words
    out = np.empty((len(ints), 10), dtype=">i2")
    out[:, 0] = 6
    out[:, 1] = 2
    out[:, 2] = np.where(ints < 0, NUMERIC_NEG, 0)
    out[:, 3] = 9
    out[:, 4] = whole // _NBASE**2
    out[:, 5] = whole // _NBASE % _NBASE
    out[:, 6] = whole % _NBASE
    out[:, 7] = frac12 // _NBASE**2
    out[:, 8] = frac12 // _NBASE % _NBASE
    out[:, 9] = frac12 % _NBASE
    return out.view(np.uint8).reshape(len(ints), 20)


def row_count(columns: pd.DataFrame | Mapping[str, np.ndarray]) -> int:
    """Rows of a DataFrame or of a mapping of equally long column arrays."""
    if isinstance(columns, Mapping):
        return len(next(iter(columns.values()))) if columns else 0
    return len(columns)


def table_columns(
    values: Mapping[str, np.ndarray], constants: Mapping[str, Any], order: Sequence[str]
) -> dict[str, np.ndarray]:
    """A table's columns in ``order`` for :func:`encode_rows`: the equally long arrays of
    ``values`` and each of ``constants`` repeated on every row."""
    n = row_count(values)
    # typed (a text constant as fixed-width unicode): encoded without a Python call per row
    out = {name: np.full(n, value) for name, value in constants.items()}
    out.update((name, np.asarray(column)) for name, column in values.items())
    return {name: out[name] for name in order}


def null_mask(values: np.ndarray) -> np.ndarray:
    """NULL mask of a numpy column: NaN in floats, None or NaN in objects."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.equal(values, None) | np.not_equal(values, values)
    return np.zeros(len(values), dtype=bool)


def _filled(column: Any, kind: BinaryKind) -> tuple[np.ndarray, np.ndarray]:
    """(null mask, values of the kind's numpy type with NULLs filled) of a pandas Series
    (its own missing-value rules) or a numpy array."""
    target = {"bool": bool, "float8": np.float64}.get(kind, np.int64)
    if not isinstance(column, np.ndarray):  # a pandas Series
        nulls = column.isna().to_numpy()
        if kind == "float8":
            return nulls, column.to_numpy(dtype=np.float64)
        return nulls, column.fillna(False if kind == "bool" else 0).to_numpy(dtype=target)
    nulls = null_mask(column)
    if kind == "float8" or not nulls.any():
        return nulls, column.astype(target, copy=False)
    return nulls, np.where(nulls, 0, column).astype(target)


def _fixed_column(column: Any, kind: BinaryKind) -> tuple[np.ndarray, np.ndarray]:
    """(null mask, rows x width bytes) of a fixed-width column."""
    nulls, values = _filled(column, kind)
    if kind == "numeric9":
        return nulls, numeric9_fields(values)
    if kind == "bool":
        return nulls, values.astype(np.uint8).reshape(-1, 1)
    if kind == "ts_ns":
        values = (values // 1000 - PG_EPOCH_US).astype(">i8")
    else:
        values = values.astype(_FIXED[kind])
    return nulls, values.view(np.uint8).reshape(len(values), values.dtype.itemsize)


def _factorized(column: Any) -> tuple[np.ndarray, list[Any]]:
    """(codes, distinct values) of a text column; code -1 is NULL."""
    if not isinstance(column, np.ndarray):  # a pandas Series
        codes, uniques = column.factorize(use_na_sentinel=True)
        return codes, list(uniques)
    codes = np.full(len(column), -1, dtype=np.int64)
    uniques: list[Any] = []
    left = np.flatnonzero(~null_mask(column))
    # a few distinct values (a symbol, a direction): one vectorised comparison each
    while len(left) and len(uniques) < _FEW_TEXTS:
        value = column[left[0]]
        hit = column[left] == value
        codes[left[hit]] = len(uniques)
        uniques.append(value)
        left = left[~hit]
    if len(left):  # many: sort the rest
        rest, inverse = np.unique(column[left].astype(str), return_inverse=True)
        codes[left] = inverse + len(uniques)
        uniques += list(rest)
    return codes, uniques


def encode_rows(
    frame: pd.DataFrame | Mapping[str, np.ndarray],
    columns: Sequence[str],
    kinds: Mapping[str, BinaryKind],
) -> BinaryRows:
    """Encode ``frame[columns]`` (a DataFrame's columns or numpy arrays) as binary COPY
    tuples (every column needs a kind)."""
    n = row_count(frame)
    # per column: null mask and, for each row, the field's data length (-1: NULL)
    parts: list[_Part] = []
    for name in columns:
        kind = kinds[name]
        column = frame[name]
        if kind == "text":
            codes, uniques = _factorized(column)
            encoded = [str(u).encode("utf-8") for u in uniques]
            widths = np.array([len(b) for b in encoded], dtype=np.int64)
            nulls = codes < 0
            lengths = np.where(nulls, -1, widths[np.maximum(codes, 0)] if len(encoded) else 0)
            parts.append((nulls, lengths, (codes, encoded)))
        else:
            nulls, matrix = _fixed_column(column, kind)
            lengths = np.where(nulls, -1, matrix.shape[1])
            parts.append((nulls, lengths, matrix))
    if all(_same_width(*part) for part in parts):
        return _fixed_width_rows(parts, n)
    return _scattered_rows(parts, n)


def _same_width(nulls: np.ndarray, _lengths: np.ndarray, data: object) -> bool:
    """True when a column has no NULL and one field length on every row (a text column:
    all its distinct values of one length in bytes)."""
    if isinstance(data, tuple):
        return not nulls.any() and len({len(raw) for raw in data[1]}) <= 1
    return not nulls.any()


def _fixed_width_rows(parts: Sequence[_Part], n: int) -> BinaryRows:
    """Rows of one width (no NULL, one length per column: a symbol, prices, times): the
    buffer is a (rows x width) matrix filled column by column with strided copies."""
    widths = [_field_width(data) for _nulls, _lengths, data in parts]
    row_width = 2 + sum(4 + w for w in widths)
    out = np.empty((n, row_width), dtype=np.uint8)
    out[:, :2] = np.frombuffer(len(parts).to_bytes(2, "big"), dtype=np.uint8)
    at = 2
    for (_nulls, _lengths, data), width in zip(parts, widths, strict=True):
        out[:, at : at + 4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
        at += 4
        if isinstance(data, tuple):  # text: the distinct values' bytes, gathered by code
            codes, encoded = data
            if width:
                table = np.frombuffer(b"".join(encoded), dtype=np.uint8).reshape(-1, width)
                out[:, at : at + width] = table[codes] if len(table) > 1 else table[0]
        else:
            out[:, at : at + width] = data
        at += width
    return BinaryRows(out.reshape(-1), np.arange(n + 1, dtype=np.int64) * row_width)


def _field_width(data: object) -> int:
    """The one field length of a column of one width: a fixed column's matrix width, a
    text column's values' length in bytes (0 when it has none)."""
    if isinstance(data, tuple):
        encoded = data[1]
        return len(encoded[0]) if encoded else 0
    return int(data.shape[1])  # type: ignore[attr-defined]


def _scattered_rows(parts: Sequence[_Part], n: int) -> BinaryRows:
    """Rows of any widths (NULLs, texts of several lengths): each field scattered into
    one buffer at its row's computed offset."""
    sizes = np.full(n, 2, dtype=np.int64)  # the field count
    for _nulls, lengths, _data in parts:
        sizes += 4 + np.maximum(lengths, 0)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    starts = offsets[:-1]
    _scatter(out, starts, np.full((n, 1), len(parts), dtype=">i2").view(np.uint8))
    cursor = starts + 2
    for nulls, lengths, data in parts:
        _scatter(out, cursor, lengths.astype(">i4").reshape(-1, 1).view(np.uint8))
        cursor = cursor + 4
        filled = ~nulls
        if isinstance(data, tuple):  # text: one scatter per distinct value
            codes, encoded = data
            for code, raw in enumerate(encoded):
                rows = np.flatnonzero(codes == code)
                if len(rows) and raw:
                    block = np.broadcast_to(
                        np.frombuffer(raw, dtype=np.uint8), (len(rows), len(raw))
                    )
                    _scatter(out, cursor[rows], block)
        elif filled.any():
            _scatter(out, cursor[filled], data[filled])
        cursor = cursor + np.maximum(lengths, 0)
    return BinaryRows(out, offsets)


def _scatter(out: np.ndarray, at: np.ndarray, block: np.ndarray) -> None:
    """Write row ``i`` of ``block`` (rows x width bytes) at ``out[at[i]:at[i] + width]``."""
    width = block.shape[1]
    if width == 0 or len(at) == 0:
        return
    out[at[:, None] + np.arange(width)] = block


def pg_micros_to_ns(values: np.ndarray) -> np.ndarray:
    """``timestamptz`` as binary COPY sends it (microseconds since 2000) -> Unix ns."""
    return (values + PG_EPOCH_US) * 1000


def read_ts_rows(
    cur: Any,
    query: sql.Composable,
    width: int,
    numeric: Collection[int] = (),
    *,
    scale_on_server: bool = False,
) -> np.ndarray:
    """The rows of ``query`` (values inlined as literals; its first column a non-NULL
    ``timestamptz``, the other ``width - 1`` non-NULL ``bigint``, or ``numeric`` for the
    column indexes in ``numeric``) as a (rows, width) int64 matrix, the first column in
    Unix nanoseconds, numerics as fixed-point with 9 decimals (exactly as ``(value *
    1000000000)::int8``), rows sorted by the first column. The server sends every row in
    one ``bytea`` (``string_agg`` of the columns' binary send functions) and numpy decodes
    it: no message or object per row. Numerics go as they are stored, decoded by
    :mod:`market_backfill.db.numeric_kernel` (a third less server time than the cast; for
    a task that loads numba anyway), or with ``scale_on_server`` cast by the server (for a
    task that does not load numba otherwise: its import and start cost about half a
    second). Rows come sorted whatever the query's order (checked; sorted here when
    not): a range read of a month or so is better sent without ``ORDER BY``, which the
    planner meets with a bitmap scan and a sort on the server (a fifth of a month's read);
    without it the rows come in heap order, in order already for bars loaded in order,
    sorted here in a millisecond otherwise. Runs in the caller's transaction."""
    names = [sql.Identifier(f"c{i}") for i in range(width)]
    on_client = bool(numeric) and not scale_on_server
    send_numeric = (
        "numeric_send(q.{}::numeric)" if on_client else "int8send((q.{} * 1000000000)::int8)"
    )
    sends = [sql.SQL("timestamptz_send(q.{})").format(names[0])] + [
        sql.SQL(send_numeric if i in numeric else "int8send(q.{})").format(n)
        for i, n in enumerate(names[1:], start=1)
    ]
    stmt = sql.SQL("SELECT string_agg({}, ''::bytea) FROM ({}) AS q({})").format(
        sql.SQL(" || ").join(sends), query, sql.SQL(", ").join(names)
    )
    cur.execute(stmt, binary=True)
    data = cur.fetchone()[0] or b""
    if on_client:
        from market_backfill.db.numeric_kernel import DecodeError, decode  # numba: here only

        try:
            rows = decode(data, tuple(i in numeric for i in range(width)))
        except DecodeError as exc:
            at = "" if exc.first is None else f" (at {from_ns(int(pg_micros_to_ns(exc.first)))})"
            raise ValueError(f"{exc}{at}, column {exc.column + 1} of the read") from exc
    else:
        rows = np.frombuffer(data, dtype=">i8").astype(np.int64).reshape(-1, width)
    rows[:, 0] = pg_micros_to_ns(rows[:, 0])
    ts = rows[:, 0]
    if len(ts) > 1 and not bool((ts[1:] > ts[:-1]).all()):
        rows = rows[np.argsort(ts, kind="stable")]
    return rows


def read_timestamps(cur: Any, query: sql.Composable) -> np.ndarray:
    """The one ``timestamptz`` column of ``query`` as sorted Unix nanoseconds
    (:func:`read_ts_rows`)."""
    return np.ascontiguousarray(read_ts_rows(cur, query, 1)[:, 0])
