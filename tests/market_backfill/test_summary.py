from __future__ import annotations

from market_backfill.summary import format_table, totals


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
