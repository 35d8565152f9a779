from __future__ import annotations

import numpy as np
import pandas as pd

from market_backfill.db.copy_format import (
    format_ts_ns,
    frame_to_lines,
    tuples_to_lines,
)


def test_fixed9_is_exact_for_large_negative_and_fractional_prices():
    values = np.array(
        [21034_250000000, 1, -1_500000000, 0, 9_223_372_036_854775807], dtype=np.int64
    )
    frame = pd.DataFrame({"p": values})
    assert frame_to_lines(frame, ["p"], {"p": "fixed9"}) == [
        "21034.250000000",
        "0.000000001",
        "-1.500000000",
        "0.000000000",
        "9223372036.854775807",
    ]


def test_ts_ns_renders_utc_iso():
    assert format_ts_ns(np.array([1_764_547_200_000_000_000])) == ["2025-12-01T00:00:00+00"]
    assert format_ts_ns(np.array([1_764_547_200_000_001_000])) == ["2025-12-01T00:00:00.000001+00"]


def test_nulls_in_typed_columns():
    frame = pd.DataFrame({"i": pd.array([1, None], dtype="Int64"), "f": [0.5, np.nan]})
    assert frame_to_lines(frame, ["i", "f"]) == ["1\t0.5", "\\N\t\\N"]


def test_frame_lines_escape_text_and_nulls():
    frame = pd.DataFrame(
        {"a": ["x\ty", None, "back\\slash"], "b": [1, 2, 3], "c": [True, False, True]}
    )
    assert frame_to_lines(frame, ["a", "b", "c"]) == [
        "x\\ty\t1\tt",
        "\\N\t2\tf",
        "back\\\\slash\t3\tt",
    ]


def test_frame_lines_of_an_empty_frame():
    assert len(frame_to_lines(pd.DataFrame({"a": []}), ["a"])) == 0


def test_tuples_lines():
    assert tuples_to_lines([("a\nb", None, 1.5, 2)]) == ["a\\nb\t\\N\t1.5\t2"]
