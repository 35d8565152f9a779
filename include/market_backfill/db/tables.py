"""Names of the contract's tables (``shared/spec/interfaces.md``), defined once."""

from __future__ import annotations

SYMBOLS_TABLE = "market_symbols"
CLEAN_TABLE = "market_bars_ohlcv_1m_clean"
LEGACY_TABLE = "market_bars_ohlcv_1m"
EVENTS_TABLE = "triangle_events_v1"
GAPS_TABLE = "ohlcv_gaps"
RUNS_TABLE = "backfill_runs"
AGG_TABLE = "market_bars_ohlcv_agg"
FEATURES_TABLE = "market_features_v1"
TRIANGLE_PROGRESS_TABLE = "triangle_progress"
FEATURE_PROGRESS_TABLE = "feature_progress"
MONTH_COUNTS_TABLE = "bar_month_counts"
"""Stored 1-minute bars per series and UTC month, kept by triggers on the clean table."""
