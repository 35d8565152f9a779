-- Gaps overlapping [%(start)s, %(end)s), optionally of one symbol and status; oldest first.
SELECT symbol, roll_rule, rank, gap_start, gap_end, minutes, status, attempts,
       detected_at, filled_at, last_error
FROM ohlcv_gaps
WHERE (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND gap_end > %(start)s AND gap_start < %(end)s
ORDER BY symbol, roll_rule, rank, gap_start
LIMIT %(limit)s
