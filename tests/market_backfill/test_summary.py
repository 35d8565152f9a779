from __future__ import annotations

from market_backfill.db.inserter import Cadence
from market_backfill.reingest.load import ReingestSummary
from market_backfill.summary import format_table, totals, zero_counts


def test_summarize_and_table():
    rows = [
        {
            "rows_in": 3,
            "rows_valid": 2,
            "rows_skipped": {"PRICE_FLOOR": 1},
            "batches": 1,
            "commits": 1,
            "retries": 0,
            "rows_written": 2,
        },
        {
            "rows_in": 5,
            "rows_valid": 5,
            "rows_skipped": {},
            "batches": 1,
            "commits": 1,
            "retries": 2,
            "rows_written": 5,
        },
    ]
    result = totals(rows)
    assert result["rows_in"] == 8
    assert result["retries"] == 2
    assert result["rows_skipped"] == {"PRICE_FLOOR": 1}
    table = format_table(
        [{"chunk": "NQ 2025-12", "rows_skipped": {"PRICE_FLOOR": 1}}],
        ["chunk", "rows_skipped", "retries"],
    )
    assert table.splitlines()[2].split() == ["NQ", "2025-12", "PRICE_FLOOR=1", "-"]


def test_the_zero_of_a_summary_holds_its_counts_and_no_other_field():
    zeros = zero_counts(ReingestSummary, Cadence)
    assert zeros == {
        "rows_in": 0,
        "rows_valid": 0,
        "rows_skipped": {},
        "rows_written": 0,
        "batches": 0,
        "commits": 0,
        "retries": 0,
    }
    assert totals([], zeros) == {**zeros, "chunks": 0}
    summed = totals([{"rows_in": 2, "rows_skipped": {"PRICE_FLOOR": 1}}], zeros)
    assert (summed["rows_in"], summed["rows_written"]) == (2, 0)
    assert summed["rows_skipped"] == {"PRICE_FLOOR": 1}
    assert zeros["rows_skipped"] == {}  # the zeros are copied, not summed into
