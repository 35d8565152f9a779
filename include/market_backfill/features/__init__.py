"""The ``feature_backfill`` stage: higher-timeframe bars and bar features (features.md)."""
