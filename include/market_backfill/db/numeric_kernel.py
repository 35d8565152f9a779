"""Decoding rows of ``timestamptz``/``bigint`` and ``numeric`` binary values (numba).

The server sends a price as ``numeric_send`` gives it, cheaper for it than computing
``(price * 1000000000)::int8`` (a month of bars: a third less server time). A numeric's
binary form is four big-endian int16 words (``ndigits``, ``weight``, ``sign``, ``dscale``)
and ``ndigits`` base-10000 digits, the first worth ``10000 ** weight``. The kernel turns
each one into int64 fixed-point with 9 decimals, exactly as that cast would: rounded half
away from zero beyond the 9th decimal, refused when it does not fit an int64, NaN and
infinities refused. Imported only where prices are read: other readers never load numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK, NOT_FINITE, OUT_OF_RANGE, TRUNCATED = 0, 1, 2, 3
"""The kernel's status codes."""

_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_INT64_MIN = np.iinfo(np.int64).min
_NUMERIC_POS, _NUMERIC_NEG = 0x0000, 0x4000
_FIXED_EXP = 9  # decimals of the fixed-point result


@njit(cache=True, inline="always")
def _u16(buf, p):
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@njit(cache=True, inline="always")
def _i64(buf, p):
    v = np.int64(0)
    for k in range(8):
        v = (v << 8) | np.int64(buf[p + k])
    return v


@njit(cache=True)
def decode_rows(buf, numeric, pow10):
    """Rows of ``len(numeric)`` values from ``buf`` (uint8): a column whose ``numeric``
    flag is set is a ``numeric_send`` value, the others 8-byte big-endian integers.

    Returns ``(rows, count, status, column)``: the (capacity, width) int64 matrix whose
    first ``count`` rows are filled, a status code and the column it stopped at (in row
    ``count``, whose earlier columns are filled)."""
    width = len(numeric)
    min_row = 8 * width  # an 8-byte integer, or a numeric's header
    out = np.empty((len(buf) // min_row + 1, width), dtype=np.int64)
    p = 0
    r = 0
    end = len(buf)
    while p < end:
        for c in range(width):
            if p + 8 > end:
                return out, r, TRUNCATED, c
            if not numeric[c]:
                out[r, c] = _i64(buf, p)
                p += 8
                continue
            ndigits = _u16(buf, p)
            weight = _u16(buf, p + 2)
            if weight >= 0x8000:
                weight -= 0x10000
            sign = _u16(buf, p + 4)
            p += 8
            if p + 2 * ndigits > end:
                return out, r, TRUNCATED, c
            if sign != _NUMERIC_POS and sign != _NUMERIC_NEG:
                return out, r, NOT_FINITE, c
            acc = np.int64(0)  # minus the magnitude: reaches -2**63
            for i in range(ndigits):
                d = _u16(buf, p + 2 * i)
                e = 4 * (weight - i) + _FIXED_EXP
                if e >= 0:
                    if d == 0:
                        continue
                    if e > 18:
                        return out, r, OUT_OF_RANGE, c
                    step = pow10[e]
                    if d > -(_INT64_MIN + 1) // step:
                        return out, r, OUT_OF_RANGE, c
                    term = d * step
                    if acc < _INT64_MIN + term:
                        return out, r, OUT_OF_RANGE, c
                    acc -= term
                elif e == -3:  # 10**-1 .. 10**-4 of the unit: the rounding digit
                    if acc < _INT64_MIN + d // 1000 + (d % 1000 >= 500):
                        return out, r, OUT_OF_RANGE, c
                    acc -= d // 1000 + (d % 1000 >= 500)
            p += 2 * ndigits
            if sign == _NUMERIC_NEG:
                out[r, c] = acc
            elif acc == _INT64_MIN:
                return out, r, OUT_OF_RANGE, c
            else:
                out[r, c] = -acc
        r += 1
    return out, r, OK, 0


class DecodeError(ValueError):
    """A value :func:`decode` refuses: ``row`` (0-based) and ``column`` where it is, and
    ``first``, the row's first value when it was read (a read's ``ts``), else None."""

    def __init__(self, message: str, row: int, column: int, first: int | None) -> None:
        super().__init__(message)
        self.row, self.column, self.first = row, column, first


_PROBLEMS = {
    NOT_FINITE: "a numeric value is NaN or infinite",
    OUT_OF_RANGE: "a numeric value is out of range for fixed-point int64",
    TRUNCATED: "the binary rows end inside a value",
}


def decode(data: bytes | memoryview, numeric: tuple[bool, ...]) -> np.ndarray:
    """The rows of ``data`` as a (rows, width) int64 matrix (see :func:`decode_rows`);
    raises :class:`DecodeError` for a NaN or infinite numeric, one out of int64
    fixed-point range, or bytes that end inside a row."""
    buf = np.frombuffer(data, dtype=np.uint8)
    out, count, status, column = decode_rows(buf, np.array(numeric, dtype=np.bool_), _POW10)
    if status != OK:
        first = int(out[count, 0]) if column > 0 else None
        raise DecodeError(f"row {count + 1}: {_PROBLEMS[status]}", count, column, first)
    return out[:count]
