-- Keep what a scan on %(calendar)s found in whole months of one series, each with the
-- change number it was read under (a later scan's result replaces an earlier one).
INSERT INTO gap_scan_months AS g (symbol, roll_rule, rank, month, calendar, changed, missing)
SELECT %(symbol)s, %(roll_rule)s, %(rank)s, m.month, %(calendar)s, m.changed, m.missing
FROM unnest(%(months)s::date[], %(changed)s::bigint[], %(missing)s::bytea[])
     AS m (month, changed, missing)
ORDER BY m.month
ON CONFLICT (symbol, roll_rule, rank, month, calendar)
DO UPDATE SET changed = excluded.changed, missing = excluded.missing
