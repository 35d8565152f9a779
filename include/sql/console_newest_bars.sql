-- The newest stored bar of each series with bars (%(symbol)s NULL: all): found in its
-- newest counted month through the primary key.
SELECT c.symbol, c.roll_rule, c.rank, s.calendar, newest.ts
FROM (
    SELECT symbol, roll_rule, rank, max(month) AS month
    FROM bar_month_counts
    WHERE bars > 0 AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
    GROUP BY symbol, roll_rule, rank
) c
LEFT JOIN market_symbols s ON s.symbol = c.symbol
CROSS JOIN LATERAL (
    SELECT max(b.ts) AS ts FROM market_bars_ohlcv_1m_clean b
    WHERE (b.symbol, b.roll_rule, b.rank) = (c.symbol, c.roll_rule, c.rank)
      AND b.ts >= c.month::timestamp AT TIME ZONE 'UTC'
      AND b.ts < (c.month + interval '1 month') AT TIME ZONE 'UTC'
) newest
ORDER BY c.symbol, c.roll_rule, c.rank
