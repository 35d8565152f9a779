-- The console's series: every series with stored bars (bar_month_counts), its first and
-- newest month and its calendar; %(symbol)s NULL means all.
SELECT c.symbol, c.roll_rule, c.rank, min(c.month), max(c.month), s.calendar
FROM bar_month_counts c
LEFT JOIN market_symbols s ON s.symbol = c.symbol
WHERE c.bars > 0 AND (%(symbol)s::text IS NULL OR c.symbol = %(symbol)s)
GROUP BY c.symbol, c.roll_rule, c.rank, s.calendar
ORDER BY c.symbol, c.roll_rule, c.rank
