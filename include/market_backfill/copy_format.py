"""Vectorised formatting of DataFrame columns into PostgreSQL COPY text format.

No row loops: each column is turned into an array of strings with numpy/pandas, then the
columns are joined once. Prices held as int64 fixed-point (1e-9, Databento's encoding) are
written as exact decimal strings, so no float ever touches them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from market_backfill.dbn import FIXED_SCALE_INT as FIXED_SCALE

ColumnKind = Literal["text", "int", "float", "bool", "ts_ns", "timestamptz", "fixed9", "json"]

NULL = "\\N"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def infer_kind(series: pd.Series) -> ColumnKind:
    """Guess a column's COPY kind from its dtype (fixed-point prices must be named explicitly)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamptz"
    return "text"


def _escape_text(values: pd.Series) -> pd.Series:
    out = values.astype("string")
    for raw, escaped in _ESCAPES:
        if out.str.contains(raw, regex=False).any():
            out = out.str.replace(raw, escaped, regex=False)
    return out.fillna(NULL).astype(object)


def format_fixed9(values: np.ndarray) -> np.ndarray:
    """int64 fixed-point (1e-9) -> exact decimal strings such as ``'21034.250000000'``."""
    ints = np.asarray(values, dtype=np.int64)
    neg = ints < 0
    mag = np.abs(ints.astype(object)) if neg.any() else ints
    whole = (mag // FIXED_SCALE).astype(np.int64).astype(str)
    frac = np.char.zfill((mag % FIXED_SCALE).astype(np.int64).astype(str), 9)
    out = np.char.add(np.char.add(whole, "."), frac)
    if neg.any():
        out = np.where(neg, np.char.add("-", out), out)
    return out.astype(object)


def format_ts_ns(values: np.ndarray) -> np.ndarray:
    """int64 nanoseconds since the epoch (UTC) -> ISO strings with a ``+00`` offset."""
    stamps = np.asarray(values, dtype=np.int64).astype("datetime64[ns]")
    return np.char.add(np.datetime_as_string(stamps, unit="us"), "+00").astype(object)


def format_column(series: pd.Series, kind: ColumnKind) -> np.ndarray:
    """Format one column as COPY text values (``\\N`` for nulls)."""
    nulls = series.isna().to_numpy()
    if kind == "text" or kind == "json":
        return _escape_text(series).to_numpy()
    if nulls.any():
        filled = series.where(~series.isna(), 0)
    else:
        filled = series
    if kind == "fixed9":
        out = format_fixed9(filled.to_numpy(dtype=np.int64))
    elif kind == "ts_ns":
        out = format_ts_ns(filled.to_numpy(dtype=np.int64))
    elif kind == "timestamptz":
        ns = pd.to_datetime(filled, utc=True).dt.as_unit("ns").astype("int64").to_numpy()
        out = format_ts_ns(ns)
    elif kind == "int":
        out = filled.to_numpy(dtype=np.int64).astype(str).astype(object)
    elif kind == "float":
        out = np.array([repr(float(v)) for v in filled.to_numpy(dtype=np.float64)], dtype=object)
    elif kind == "bool":
        out = np.where(filled.to_numpy(dtype=bool), "t", "f").astype(object)
    else:  # pragma: no cover - Literal guards this
        raise ValueError(f"unknown column kind {kind!r}")
    if nulls.any():
        out[nulls] = NULL
    return out


def frame_to_lines(
    frame: pd.DataFrame, columns: Sequence[str], kinds: Mapping[str, ColumnKind] | None = None
) -> np.ndarray:
    """Return one COPY text line (no newline) per row of ``frame``, columns in ``columns`` order."""
    kinds = dict(kinds or {})
    if frame.empty:
        return np.array([], dtype=object)
    parts = [
        format_column(frame[name], kinds.get(name) or infer_kind(frame[name])) for name in columns
    ]
    lines = parts[0]
    for part in parts[1:]:
        lines = np.char.add(np.char.add(lines.astype(str), "\t"), part.astype(str))
    return np.asarray(lines, dtype=object)


def value_to_text(value: Any) -> str:
    """Format one Python value for COPY text (used for iterators of tuples)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, Decimal, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        return NULL if np.isnan(value) else repr(float(value))
    text = str(value)
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def tuples_to_lines(rows: Iterable[Sequence[Any]]) -> list[str]:
    """COPY text lines for an iterable of row tuples."""
    return ["\t".join(value_to_text(v) for v in row) for row in rows]
