"""Binary COPY: every supported type round-trips through a real PostgreSQL, NULLs too,
through both inserter paths (direct COPY and the staging upsert)."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from market_backfill.airflow.connections import hook_connector
from market_backfill.db import copy_binary
from market_backfill.db.copy_binary import SIGNATURE, TRAILER, encode_rows
from market_backfill.db.inserter import BatchInserter, ConflictPolicy
from market_backfill.timeutil import from_ns, to_ns

KINDS = {
    "t": "text",
    "s": "int2",
    "i": "int4",
    "b": "int8",
    "f": "float8",
    "ok": "bool",
    "ts": "ts_ns",
    "n": "numeric9",
}
DDL = (
    "CREATE TABLE bin_check (t text, s smallint, i integer, b bigint, f double precision, "
    "ok boolean, ts timestamptz NOT NULL PRIMARY KEY, n numeric(20, 9))"
)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": ["NQ", "Zürich \t\\ 東京", None, "", "NQ"],
            "s": [1, -2, 3, 32767, 0],
            "i": [10, -20, 2**31 - 1, 0, 5],
            "b": [2**62, -(2**62), 0, 7, 9],
            "f": [0.1, -1e-300, np.nan, 1 / 3, 21034.123456789],
            "ok": [True, False, True, False, True],
            "ts": [to_ns(f"2025-03-0{d}T14:3{d}:00") for d in range(1, 6)],
            "n": pd.array([21034_250000000, -37_123456789, None, 1, 2**63 - 1], dtype="Int64"),
        }
    )


def test_the_stream_is_signature_rows_trailer():
    encoded = encode_rows(frame(), list(KINDS), KINDS)
    assert len(encoded) == 5
    payload = encoded.payload(1, 3)
    assert payload.startswith(SIGNATURE)
    assert payload.endswith(TRAILER)
    # row 2: the field count, then a NULL text field (length -1)
    row = encoded.data[encoded.offsets[2] : encoded.offsets[3]].tobytes()
    assert row[:2] == (8).to_bytes(2, "big")
    assert row[2:6] == b"\xff\xff\xff\xff"


def test_no_rows_encode_to_an_empty_stream():
    encoded = encode_rows(frame().iloc[:0], list(KINDS), KINDS)
    assert len(encoded) == 0
    assert encoded.payload(0, 0) == SIGNATURE + TRAILER


def numpy_columns() -> dict[str, np.ndarray]:
    """``frame()`` as numpy arrays: None in text, NaN in floats; numbers without NULLs
    (a numpy integer has none)."""
    data = frame()
    cols = {name: data[name].to_numpy() for name in KINDS if name != "n"}
    cols["t"] = np.array(data["t"].tolist(), dtype=object)
    cols["n"] = data["n"].fillna(0).to_numpy(dtype=np.int64)
    return cols


def test_numpy_columns_encode_as_the_dataframe_does():
    """The triangle stage hands the inserter numpy arrays (no pandas in its tasks): the
    bytes are those of the same values in a DataFrame, NULLs included."""
    cols = numpy_columns()
    same = frame().assign(n=cols["n"])
    want = encode_rows(same, list(KINDS), KINDS)
    got = encode_rows(cols, list(KINDS), KINDS)
    assert got.data.tobytes() == want.data.tobytes()
    assert got.offsets.tolist() == want.offsets.tolist()
    nullable = {**cols, "b": np.array([1, None, 3, 4, 5], dtype=object)}
    row = encode_rows(nullable, list(KINDS), KINDS)
    field = row.data[row.offsets[1] : row.offsets[2]].tobytes()
    lengths_before_b = 2 + (4 + len("Zürich \t\\ 東京".encode())) + (4 + 2) + (4 + 4)
    assert field[lengths_before_b : lengths_before_b + 4] == b"\xff\xff\xff\xff"  # NULL bigint
    assert len(encode_rows({k: v[:0] for k, v in cols.items()}, list(KINDS), KINDS)) == 0


@pytest.mark.parametrize("distinct", [1, 3, 40])
def test_numpy_text_with_few_or_many_distinct_values_and_nulls(distinct):
    """Text columns are factorised by comparison up to 16 distinct values, by sorting
    beyond: both give the DataFrame's bytes, fixed-width and object arrays alike."""
    rng = np.random.default_rng(distinct)
    words = np.array([f"sym{i:02d}" for i in range(distinct)], dtype=object)
    texts = words[rng.integers(0, distinct, 500)]
    texts[rng.integers(0, 500, 20)] = None
    kinds = {"t": "text", "u": "text"}
    fixed = np.array([w or "" for w in texts])  # "<U5": no NULLs in fixed-width text
    want = encode_rows(pd.DataFrame({"t": texts, "u": fixed.astype(object)}), ["t", "u"], kinds)
    got = encode_rows({"t": texts, "u": fixed}, ["t", "u"], kinds)
    assert got.data.tobytes() == want.data.tobytes()


@pytest.mark.parametrize("breaker", ["null", "longer text"])
def test_rows_of_one_width_encode_as_rows_of_any_width(monkeypatch, breaker):
    """Rows without a NULL whose texts have one length (a chunk's bars) take the
    fixed-width path (no per-field scatter); their bytes are those the general path
    gives the same rows in a frame where one more row has a NULL or a longer text."""
    data = frame().drop(index=2).reset_index(drop=True)
    data["t"] = ["NQ", "ES", "NQ", "YM"]
    data["u"] = ["", "", "", ""]  # empty texts: fields of length 0
    kinds = {**KINDS, "u": "text"}
    extra = data.iloc[[0]].assign(t="RTY" if breaker == "longer text" else None)
    general = encode_rows(pd.concat([data, extra], ignore_index=True), list(kinds), kinds)

    def no_scatter(*_args: object) -> None:
        raise AssertionError("rows of one width were scattered field by field")

    with monkeypatch.context() as patched:
        patched.setattr(copy_binary, "_scatter", no_scatter)
        fixed = encode_rows(data, list(kinds), kinds)
        single = encode_rows(data.iloc[:1].assign(t="NQ"), list(kinds), kinds)
        empty = encode_rows(data.iloc[:0], list(kinds), kinds)
    assert fixed.offsets.tolist() == general.offsets[:5].tolist()
    assert fixed.data.tobytes() == general.data[: general.offsets[4]].tobytes()
    assert single.data.tobytes() == general.data[: general.offsets[1]].tobytes()
    assert fixed.payload(1, 3) == general.payload(1, 3)
    assert empty.payload(0, 0) == SIGNATURE + TRAILER


@pytest.mark.parametrize("batch_size", [2, 500])
def test_every_kind_round_trips_through_both_paths(market_db, batch_size):
    with market_db.connect() as conn:
        conn.execute(DDL)
    policy = ConflictPolicy(key=("ts",), update=("t", "s", "i", "b", "f", "ok", "n"))
    data = frame()
    with BatchInserter(
        hook_connector(), "bin_check", list(KINDS), policy, binary=KINDS, batch_size=batch_size
    ) as ins:
        first = ins.insert(data.iloc[:3])
        assert first.written == 3
        again = ins.insert(data)  # meets stored rows: the staging path, binary too
        assert ins.upsert_mode
        assert again.written == 2  # the two new rows; the three stored are the same
    with market_db.connect() as conn:
        rows = conn.execute("SELECT t, s, i, b, f, ok, ts, n FROM bin_check ORDER BY ts").fetchall()
    assert len(rows) == 5
    for got, (_, want) in zip(rows, data.iterrows(), strict=True):
        assert got[0] == (None if pd.isna(want.t) else want.t)
        assert got[1:4] == (want.s, want.i, want.b)
        assert (got[4] is None and math.isnan(want.f)) or got[4] == want.f
        assert got[5] is bool(want.ok)
        assert got[6] == from_ns(int(want.ts))
        assert got[7] == (None if pd.isna(want.n) else Decimal(int(want.n)).scaleb(-9))


def test_numeric9_is_exact_for_every_magnitude_and_sign(market_db):
    """Random fixed-point values of every size (as Databento prices), both signs, the
    extremes: the stored numerics equal ``v / 1e9`` exactly, and the server's own
    ``(n * 1e9)::int8`` gives ``v`` back."""
    rng = np.random.default_rng(9)
    values = np.concatenate(
        [
            rng.integers(-(2**63) + 1, 2**63 - 1, 2000, dtype=np.int64),
            rng.integers(-(10**12), 10**12, 2000, dtype=np.int64),
            np.array([0, 1, -1, 10**9, -(10**9), 999_999_999, 10**13, 2**63 - 1, -(2**63) + 1]),
        ]
    )
    with market_db.connect() as conn:
        conn.execute("CREATE TABLE num_check (i serial PRIMARY KEY, n numeric(20, 9) NOT NULL)")
    frame = pd.DataFrame({"n": values})
    kinds = {"n": "numeric9"}
    with BatchInserter(
        hook_connector(), "num_check", ["n"], ConflictPolicy(key=("i",)), binary=kinds
    ) as ins:
        assert ins.insert(frame).written == len(values)
    with market_db.connect() as conn:
        got = conn.execute(
            "SELECT n, (n * 1000000000)::int8, n::text FROM num_check ORDER BY i"
        ).fetchall()
    assert [g[0] for g in got] == [Decimal(int(v)).scaleb(-9) for v in values]
    assert [g[1] for g in got] == values.tolist()
    assert got[-1][2] == "-9223372036.854775807"


def test_read_timestamps_returns_sorted_ns_whatever_the_row_order(market_db):
    from psycopg import sql

    from market_backfill.db.copy_binary import read_timestamps

    rng = np.random.default_rng(3)
    minutes = rng.choice(500_000, 5000, replace=False)
    want = np.sort(to_ns("2011-01-02T23:00:00") + minutes.astype(np.int64) * 60 * 10**9)
    with market_db.connect() as conn:
        conn.execute("CREATE TABLE ts_check (ts timestamptz NOT NULL)")
        with conn.cursor() as cur:  # stored in random order
            cur.executemany(
                "INSERT INTO ts_check VALUES (%s)",
                [(from_ns(int(t)),) for t in rng.permutation(want)],
            )
        with conn.cursor() as cur:
            unordered = read_timestamps(cur, sql.SQL("SELECT ts FROM ts_check"))
            ordered = read_timestamps(cur, sql.SQL("SELECT ts FROM ts_check ORDER BY ts DESC"))
            none = read_timestamps(cur, sql.SQL("SELECT ts FROM ts_check WHERE false"))
    assert unordered.tolist() == ordered.tolist() == want.tolist()
    assert unordered.dtype == np.int64
    assert len(none) == 0


def test_read_ts_rows_keeps_each_row_together_when_it_sorts(market_db):
    from psycopg import sql

    from market_backfill.db.copy_binary import read_ts_rows

    ts = to_ns("2025-03-02T23:00:00") + np.arange(2000, dtype=np.int64) * 60 * 10**9
    prices = 21_000 * 10**9 + np.arange(2000, dtype=np.int64) * 250_000_000
    order = np.random.default_rng(4).permutation(2000)
    with market_db.connect() as conn:
        conn.execute("CREATE TABLE row_check (ts timestamptz NOT NULL, p bigint, v bigint)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO row_check VALUES (%s, %s, %s)",
                [(from_ns(int(ts[i])), int(prices[i]), -int(i)) for i in order],
            )
            rows = read_ts_rows(cur, sql.SQL("SELECT ts, p, v FROM row_check"), 3)
    assert rows.tolist() == np.column_stack([ts, prices, -np.arange(2000)]).tolist()
