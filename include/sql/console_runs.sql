-- The newest %(limit)s runs in backfill_runs (optionally of one DAG), each with its total
-- and estimate rows and its chunk rows (the run-wide rows have symbol '*').
WITH recent AS (
    SELECT dag_id, run_id, min(started_at) AS started_at, max(finished_at) AS finished_at
    FROM backfill_runs
    WHERE %(dag_id)s::text IS NULL OR dag_id = %(dag_id)s
    GROUP BY dag_id, run_id
    ORDER BY min(started_at) DESC, run_id
    LIMIT %(limit)s
)
SELECT r.dag_id, r.run_id, r.started_at, r.finished_at,
       (SELECT jsonb_build_object('status', t.status, 'counts', t.counts, 'error', t.error)
        FROM backfill_runs t
        WHERE (t.dag_id, t.run_id, t.symbol, t.chunk) = (r.dag_id, r.run_id, '*', 'total')),
       (SELECT e.counts FROM backfill_runs e
        WHERE (e.dag_id, e.run_id, e.symbol, e.chunk) = (r.dag_id, r.run_id, '*', 'estimate')),
       (SELECT jsonb_agg(jsonb_build_object(
                   'symbol', c.symbol, 'chunk', c.chunk, 'status', c.status,
                   'attempts', c.attempts, 'started_at', c.started_at,
                   'finished_at', c.finished_at, 'counts', c.counts, 'error', c.error)
               ORDER BY c.symbol, c.chunk)
        FROM backfill_runs c
        WHERE c.dag_id = r.dag_id AND c.run_id = r.run_id AND c.symbol <> '*')
FROM recent r
ORDER BY r.started_at DESC, r.run_id
