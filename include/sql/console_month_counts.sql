-- Stored bars and gaps per series and UTC month in [%(first)s, %(last)s] (month starts).
SELECT coalesce(c.symbol, g.symbol), coalesce(c.roll_rule, g.roll_rule),
       coalesce(c.rank, g.rank), coalesce(c.month, g.month),
       coalesce(c.bars, 0), coalesce(g.open_gaps, 0), coalesce(g.unfillable_gaps, 0)
FROM (
    SELECT symbol, roll_rule, rank, month, bars
    FROM bar_month_counts
    WHERE month BETWEEN %(first)s AND %(last)s
      AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
) c
FULL JOIN (
    SELECT symbol, roll_rule, rank,
           date_trunc('month', gap_start AT TIME ZONE 'UTC')::date AS month,
           count(*) FILTER (WHERE status = 'open') AS open_gaps,
           count(*) FILTER (WHERE status = 'unfillable') AS unfillable_gaps
    FROM ohlcv_gaps
    WHERE gap_start >= %(first)s::date::timestamp AT TIME ZONE 'UTC'
      AND gap_start < (%(last)s::date + interval '1 month') AT TIME ZONE 'UTC'
      AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
    GROUP BY 1, 2, 3, 4
) g USING (symbol, roll_rule, rank, month)
