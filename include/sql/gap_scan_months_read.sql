-- The months in [%(first)s, %(stop)s) holding bars of one series: their change number
-- and what a scan on %(calendar)s found there while that number held (NULL when no scan
-- did).
SELECT c.month, c.changed,
       CASE WHEN g.changed = c.changed THEN g.missing END
FROM bar_month_counts c
LEFT JOIN gap_scan_months g
       ON g.symbol = c.symbol AND g.roll_rule = c.roll_rule AND g.rank = c.rank
      AND g.month = c.month AND g.calendar = %(calendar)s
WHERE c.symbol = %(symbol)s AND c.roll_rule = %(roll_rule)s AND c.rank = %(rank)s
  AND c.month >= %(first)s AND c.month < %(stop)s AND c.bars > 0
