"""The SQL files of market-backfill (installed as the package ``market_backfill.sql``)."""
