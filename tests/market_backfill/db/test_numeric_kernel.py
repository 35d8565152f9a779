"""Prices sent as ``numeric_send`` and decoded by the numba kernel: the same int64
fixed-point values as the server's ``(price * 1000000000)::int8``, the same refusals."""

from __future__ import annotations

import random
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np
import psycopg
import pytest
from psycopg import sql

from market_backfill.db.copy_binary import read_ts_rows
from market_backfill.db.numeric_kernel import decode

EDGES = [
    "0",
    "1",
    "-1",
    "0.000000001",
    "-0.000000001",
    "0.0000000005",  # half: away from zero, as the cast rounds
    "-0.0000000005",
    "0.00000000049999",
    "-0.00000000049999",
    "0.00000000050001",
    "21034.25",
    "0.5",
    "1e-20",
    "10000.0001",
    "99999999.999999999",
    "9223372036.854775807",  # int64's ends
    "-9223372036.854775808",
    "9223372036.8547758074",  # rounds down onto the end
]


def fits(text: str) -> bool:
    with localcontext(prec=80):
        scaled = (Decimal(text) * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return -(2**63) <= int(scaled) < 2**63


def random_numerics(count: int, seed: int) -> list[str]:
    """Decimal texts of every size and scale: whole, 9 decimals and more (rounded)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        digits = rng.choice([1, 3, 5, 9, 12, 16, 19, 21])
        value = rng.randrange(-(10**digits), 10**digits)
        out.append(f"{value}e-{rng.choice([0, 2, 4, 6, 9, 10, 11, 13])}")
    return [v for v in out if fits(v)]


@pytest.fixture
def values_table(market_db):
    values = EDGES + random_numerics(4000, seed=11)
    with market_db.connect() as conn:
        conn.execute("CREATE TABLE num_read (i bigint PRIMARY KEY, ts timestamptz, n numeric)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO num_read VALUES (%s, timestamptz '1999-12-31 23:00+00' "
                "+ make_interval(mins => %s), %s::numeric)",
                [(i, i, v) for i, v in enumerate(values)],
            )
    return values


@pytest.mark.parametrize("scale_on_server", [False, True])
def test_decoded_prices_equal_the_servers_cast(market_db, values_table, scale_on_server):
    """Every value, rounding cases and int64's ends included, beside the row's other
    columns (a timestamp before 2000, a negative bigint): the cast's exact result."""
    query = sql.SQL("SELECT ts, n, -i FROM num_read ORDER BY ts")
    with market_db.connect() as conn:
        want = conn.execute(
            "SELECT (extract(epoch FROM ts) * 1e9)::int8, (n * 1000000000)::int8, -i "
            "FROM num_read ORDER BY ts"
        ).fetchall()
        with conn.cursor() as cur:
            got = read_ts_rows(cur, query, 3, numeric=(1,), scale_on_server=scale_on_server)
    assert got.dtype == np.int64
    assert got.tolist() == [list(row) for row in want]
    assert len(got) == len(values_table)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NaN", "NaN or infinite"),
        ("Infinity", "NaN or infinite"),
        ("-Infinity", "NaN or infinite"),
        ("9223372036.8547758075", "out of range"),
        ("-9223372036.8547758085", "out of range"),
        ("1e30", "out of range"),
    ],
)
def test_values_the_cast_refuses_are_refused(market_db, text, message):
    query = sql.SQL("SELECT now(), {}::numeric").format(sql.Literal(text))
    with market_db.connect() as conn:
        cast = sql.SQL("SELECT ({}::numeric * 1000000000)::int8").format(sql.Literal(text))
        with pytest.raises((psycopg.DataError, psycopg.NotSupportedError)):  # as the cast
            conn.execute(cast)
        conn.rollback()
        with conn.cursor() as cur, pytest.raises(ValueError, match=f"row 1: .*{message}") as err:
            read_ts_rows(cur, query, 2, numeric=(1,))
        with conn.cursor() as cur, pytest.raises((psycopg.DataError, psycopg.NotSupportedError)):
            read_ts_rows(cur, query, 2, numeric=(1,), scale_on_server=True)  # the cast's error
        conn.rollback()
    assert re.search(r"\(at 20\d\d-\d\d-\d\d \d\d:\d\d:[\d.]+\+00:00\), column 2 ", str(err.value))


def test_a_refused_price_names_its_bar(market_db):
    """The bar's time and the column, in a read of many bars."""
    with market_db.connect() as conn:
        conn.execute("CREATE TABLE nan_bar (ts timestamptz, o numeric, c numeric)")
        conn.execute(
            "INSERT INTO nan_bar SELECT timestamptz '2025-03-03 14:00+00' "
            "+ make_interval(mins => g), g, CASE WHEN g = 7 THEN 'NaN' ELSE g::numeric END "
            "FROM generate_series(0, 9) g"
        )
        query = sql.SQL("SELECT ts, o, c FROM nan_bar ORDER BY ts")
        with conn.cursor() as cur, pytest.raises(ValueError, match="row 8: ") as err:
            read_ts_rows(cur, query, 3, numeric=(1, 2))
    assert str(err.value) == (
        "row 8: a numeric value is NaN or infinite (at 2025-03-03 14:07:00+00:00), "
        "column 3 of the read"
    )


def test_bytes_ending_inside_a_value_are_refused(market_db):
    with market_db.connect() as conn:
        data = conn.execute(
            "SELECT timestamptz_send(now()) || numeric_send(21034.25::numeric) || int8send(7)",
            binary=True,
        ).fetchone()[0]
    layout = (False, True, False)
    assert decode(data + data, layout).shape == (2, 3)
    for cut in (3, 9, 12, len(data) - 1):  # in the ts, the header, the digits, the int
        with pytest.raises(ValueError, match="row 2: the binary rows end inside a value"):
            decode(data + data[:cut], layout)
    assert decode(b"", layout).shape == (0, 3)
