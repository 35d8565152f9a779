-- market-backfill schema. Applied by the first task of every DAG in ONE transaction,
-- serialised by an advisory lock so concurrent runs cannot race on CREATE.
-- Every statement is idempotent: running this file again changes nothing.
SELECT pg_advisory_xact_lock(724031977);

-- Symbol registry: one row per DATASET:ROOT, with the settings every stage reads.
CREATE TABLE IF NOT EXISTS market_symbols (
    symbol                  text PRIMARY KEY,
    dataset                 text NOT NULL,
    root                    text NOT NULL,
    roll_rule               text NOT NULL DEFAULT 'v' CHECK (roll_rule IN ('v', 'c', 'n')),
    rank                    integer NOT NULL DEFAULT 0 CHECK (rank >= 0),
    price_floor             numeric(20, 9),  -- NULL: no floor (prices may be negative)
    calendar                text NOT NULL,
    -- legacy-table hygiene thresholds (triangle-signals.md section 1)
    discontinuity           numeric NOT NULL DEFAULT 500,
    small_range             numeric NOT NULL DEFAULT 10,
    small_range_gap         numeric NOT NULL DEFAULT 150,
    flat_discontinuity      numeric NOT NULL DEFAULT 50,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_symbols_symbol_format CHECK (symbol = dataset || ':' || root)
);

-- Migrations of databases made by earlier versions (each idempotent). Each ALTER TABLE
-- runs only when the catalog shows it is needed: ALTER TABLE locks its table against
-- every reader and writer (ADD COLUMN IF NOT EXISTS too, column there or not), so on an
-- up-to-date database it would make every run wait behind any scan, write or vacuum of
-- the table, and every later reader of it wait behind the run.
CREATE OR REPLACE FUNCTION pg_temp.has_column(tbl regclass, col name) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = col AND NOT attisdropped
    )
$$;

-- 0.2: the price floor is optional; a NULL floor keeps negative prices (crude oil, 2020-04-20).
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'market_symbols'::regclass AND attname = 'price_floor'
          AND (attnotnull OR atthasdef)
    ) THEN
        ALTER TABLE market_symbols ALTER COLUMN price_floor DROP NOT NULL;
        ALTER TABLE market_symbols ALTER COLUMN price_floor DROP DEFAULT;
    END IF;
END $$;

-- 0.3: the tick size and where a root's trading session opens ("HH:MM Area/City", the
-- session anchor: 18:00 New York on CME Globex, 19:00 Chicago for the grains).
DO $$
BEGIN
    IF NOT (pg_temp.has_column('market_symbols', 'tick_size')
            AND pg_temp.has_column('market_symbols', 'session_anchor')) THEN
        ALTER TABLE market_symbols ADD COLUMN IF NOT EXISTS tick_size numeric(20, 9);
        ALTER TABLE market_symbols ADD COLUMN IF NOT EXISTS session_anchor text NOT NULL
            DEFAULT '18:00 America/New_York';
    END IF;
END $$;

-- The main GLBX.MDP3 roots of each CME asset class, with their pandas_market_calendars
-- calendar ('CME Globex Equity' carries a dated session history, trading_calendar.py).
-- NULL price floor: prices may go negative (energy). Add more with
-- `python -m market_backfill.registry add`.
INSERT INTO market_symbols
    (symbol, dataset, root, roll_rule, rank, price_floor, calendar, tick_size, session_anchor)
VALUES
    ('GLBX.MDP3:NQ', 'GLBX.MDP3', 'NQ', 'v', 0, 1000, 'CME Globex Equity', 0.25, '18:00 America/New_York'),
    ('GLBX.MDP3:ES', 'GLBX.MDP3', 'ES', 'v', 0, 1000, 'CME Globex Equity', 0.25, '18:00 America/New_York'),
    ('GLBX.MDP3:YM', 'GLBX.MDP3', 'YM', 'v', 0, 1000, 'CME Globex Equity', 1, '18:00 America/New_York'),
    ('GLBX.MDP3:RTY', 'GLBX.MDP3', 'RTY', 'v', 0, 1000, 'CME Globex Equity', 0.1, '18:00 America/New_York'),
    ('GLBX.MDP3:MES', 'GLBX.MDP3', 'MES', 'v', 0, 1000, 'CME Globex Equity', 0.25, '18:00 America/New_York'),
    ('GLBX.MDP3:MNQ', 'GLBX.MDP3', 'MNQ', 'v', 0, 1000, 'CME Globex Equity', 0.25, '18:00 America/New_York'),
    ('GLBX.MDP3:CL', 'GLBX.MDP3', 'CL', 'v', 0, NULL, 'CMEGlobex_Energy', 0.01, '18:00 America/New_York'),
    ('GLBX.MDP3:NG', 'GLBX.MDP3', 'NG', 'v', 0, NULL, 'CMEGlobex_Energy', 0.001, '18:00 America/New_York'),
    ('GLBX.MDP3:RB', 'GLBX.MDP3', 'RB', 'v', 0, NULL, 'CMEGlobex_Energy', 0.0001, '18:00 America/New_York'),
    ('GLBX.MDP3:HO', 'GLBX.MDP3', 'HO', 'v', 0, NULL, 'CMEGlobex_Energy', 0.0001, '18:00 America/New_York'),
    ('GLBX.MDP3:GC', 'GLBX.MDP3', 'GC', 'v', 0, 0, 'CMEGlobex_Metals', 0.1, '18:00 America/New_York'),
    ('GLBX.MDP3:SI', 'GLBX.MDP3', 'SI', 'v', 0, 0, 'CMEGlobex_Metals', 0.005, '18:00 America/New_York'),
    ('GLBX.MDP3:HG', 'GLBX.MDP3', 'HG', 'v', 0, 0, 'CMEGlobex_Metals', 0.0005, '18:00 America/New_York'),
    ('GLBX.MDP3:ZN', 'GLBX.MDP3', 'ZN', 'v', 0, 0, 'CME Globex Fixed Income', 0.015625, '18:00 America/New_York'),
    ('GLBX.MDP3:ZB', 'GLBX.MDP3', 'ZB', 'v', 0, 0, 'CME Globex Fixed Income', 0.03125, '18:00 America/New_York'),
    ('GLBX.MDP3:ZF', 'GLBX.MDP3', 'ZF', 'v', 0, 0, 'CME Globex Fixed Income', 0.0078125, '18:00 America/New_York'),
    ('GLBX.MDP3:ZT', 'GLBX.MDP3', 'ZT', 'v', 0, 0, 'CME Globex Fixed Income', 0.00390625, '18:00 America/New_York'),
    ('GLBX.MDP3:SR3', 'GLBX.MDP3', 'SR3', 'v', 0, 0, 'CME Globex Fixed Income', 0.0025, '18:00 America/New_York'),
    ('GLBX.MDP3:6E', 'GLBX.MDP3', '6E', 'v', 0, 0, 'CMEGlobex_FX', 0.00005, '18:00 America/New_York'),
    ('GLBX.MDP3:6J', 'GLBX.MDP3', '6J', 'v', 0, 0, 'CMEGlobex_FX', 0.0000005, '18:00 America/New_York'),
    ('GLBX.MDP3:6B', 'GLBX.MDP3', '6B', 'v', 0, 0, 'CMEGlobex_FX', 0.0001, '18:00 America/New_York'),
    ('GLBX.MDP3:ZC', 'GLBX.MDP3', 'ZC', 'v', 0, 0, 'CMEGlobex_Grains', 0.25, '19:00 America/Chicago'),
    ('GLBX.MDP3:ZS', 'GLBX.MDP3', 'ZS', 'v', 0, 0, 'CMEGlobex_Grains', 0.25, '19:00 America/Chicago'),
    ('GLBX.MDP3:ZW', 'GLBX.MDP3', 'ZW', 'v', 0, 0, 'CMEGlobex_Grains', 0.25, '19:00 America/Chicago')
ON CONFLICT (symbol) DO NOTHING;
-- rows of earlier versions get the tick size they lacked
UPDATE market_symbols SET tick_size = v.tick
FROM (VALUES ('GLBX.MDP3:NQ', 0.25), ('GLBX.MDP3:ES', 0.25), ('GLBX.MDP3:YM', 1),
             ('GLBX.MDP3:RTY', 0.1)) AS v(symbol, tick)
WHERE market_symbols.symbol = v.symbol AND market_symbols.tick_size IS NULL;

-- Clean 1-minute bars: ts is the bar OPEN time (UTC). Prices are exact decimals:
-- Databento's int64 fixed-point (1e-9) prices fit numeric(20, 9) without rounding.
-- A continuous series is (symbol, roll_rule, rank): NQ.v.0 and NQ.c.1 are stored side by
-- side; instrument_id is the contract the series held that minute.
CREATE TABLE IF NOT EXISTS market_bars_ohlcv_1m_clean (
    symbol         text NOT NULL,
    roll_rule      text NOT NULL,
    rank           smallint NOT NULL,
    ts             timestamptz NOT NULL,
    open           numeric(20, 9) NOT NULL,
    high           numeric(20, 9) NOT NULL,
    low            numeric(20, 9) NOT NULL,
    close          numeric(20, 9) NOT NULL,
    volume         bigint NOT NULL,
    instrument_id  bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_bars_ohlcv_1m_clean_pkey PRIMARY KEY (symbol, roll_rule, rank, ts)
);

-- Legacy bars: same columns, ts is the bar CLOSE time. Only read.
CREATE TABLE IF NOT EXISTS market_bars_ohlcv_1m (
    symbol      text NOT NULL,
    ts          timestamptz NOT NULL,
    open        numeric(20, 9) NOT NULL,
    high        numeric(20, 9) NOT NULL,
    low         numeric(20, 9) NOT NULL,
    close       numeric(20, 9) NOT NULL,
    volume      bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ts)
);

-- Triangle events: one row per (bar, direction, settings, source, logic version).
CREATE TABLE IF NOT EXISTS triangle_events_v1 (
    symbol                   text NOT NULL,
    roll_rule                text NOT NULL,
    rank                     smallint NOT NULL,
    ts                       timestamptz NOT NULL,
    direction                text NOT NULL CHECK (direction IN ('BULL', 'BEAR')),
    bias_1m                  text NOT NULL,
    bias_5m                  text NOT NULL,
    bias_15m                 text NOT NULL,
    bias_1h                  text NOT NULL,
    bias_4h                  text NOT NULL,
    bias_1d                  text NOT NULL,
    htf_bullish              boolean NOT NULL,
    htf_bearish              boolean NOT NULL,
    anchor                   text NOT NULL,
    warmup                   integer NOT NULL,
    htf_aligned_only         boolean NOT NULL,
    use_5m                   boolean NOT NULL,
    use_15m                  boolean NOT NULL,
    use_1h                   boolean NOT NULL,
    use_4h                   boolean NOT NULL,
    use_1d                   boolean NOT NULL,
    require_engulfing        boolean NOT NULL,
    require_sweep_engulfing  boolean NOT NULL,
    source_table             text NOT NULL,
    logic_version            text NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT triangle_events_v1_uniq UNIQUE (
        symbol, roll_rule, rank, ts, direction, anchor, warmup, htf_aligned_only,
        use_5m, use_15m, use_1h, use_4h, use_1d,
        require_engulfing, require_sweep_engulfing, source_table, logic_version
    )
);

-- Gaps: maximal runs of missing trading minutes, keyed by (symbol, gap_start).
CREATE TABLE IF NOT EXISTS ohlcv_gaps (
    symbol       text NOT NULL,
    roll_rule    text NOT NULL,
    rank         smallint NOT NULL,
    gap_start    timestamptz NOT NULL,
    gap_end      timestamptz NOT NULL,
    minutes      integer NOT NULL CHECK (minutes > 0),
    -- open: to repair; filled: no longer missing; unfillable: max_attempts repairs found
    -- no bars (a halt, a quiet market): no longer requested unless retry_unfillable
    status       text NOT NULL DEFAULT 'open'
                 CONSTRAINT ohlcv_gaps_status_check CHECK (status IN ('open', 'filled', 'unfillable')),
    attempts     integer NOT NULL DEFAULT 0,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    filled_at    timestamptz,
    last_error   text,
    CONSTRAINT ohlcv_gaps_pkey PRIMARY KEY (symbol, roll_rule, rank, gap_start)
);

-- 0.2: a gap may become 'unfillable' (the check of 0.1 allowed open and filled only)
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'ohlcv_gaps_status_check'
          AND pg_get_constraintdef(oid) LIKE '%unfillable%'
    ) THEN
        ALTER TABLE ohlcv_gaps DROP CONSTRAINT IF EXISTS ohlcv_gaps_status_check;
        ALTER TABLE ohlcv_gaps ADD CONSTRAINT ohlcv_gaps_status_check
            CHECK (status IN ('open', 'filled', 'unfillable'));
    END IF;
END $$;

-- Audit trail: one row per chunk of a DAG run (a cleared chunk updates its row and
-- counts the attempt); the summary task adds a row with symbol '*' and chunk 'total'.
CREATE TABLE IF NOT EXISTS backfill_runs (
    id           bigserial PRIMARY KEY,
    dag_id       text NOT NULL,
    run_id       text NOT NULL,
    symbol       text NOT NULL,
    chunk        text NOT NULL,
    counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    attempts     integer NOT NULL DEFAULT 1,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text,
    CONSTRAINT backfill_runs_chunk_uniq UNIQUE (dag_id, run_id, symbol, chunk)
);

-- 0.2: a continuous series is an identity. Tables made by 0.1 gain roll_rule and rank
-- (filled with each symbol's registry default, else v/0) in their keys, and the bars
-- their instrument_id. Runs once per table: only while its key is the 0.1 key.
CREATE OR REPLACE FUNCTION pg_temp.key_columns(tbl regclass, con name) RETURNS name[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(a.attname ORDER BY k.ord)
    FROM pg_constraint c
    CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
    WHERE c.conrelid = tbl AND c.conname = con
$$;

CREATE OR REPLACE FUNCTION pg_temp.add_series(tbl regclass, con name, kind text, cols text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF 'roll_rule' = ANY(coalesce(pg_temp.key_columns(tbl, con), '{}')) THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS roll_rule text, '
                   'ADD COLUMN IF NOT EXISTS rank smallint', tbl);
    EXECUTE format('UPDATE %s t SET roll_rule = s.roll_rule, rank = s.rank FROM market_symbols s '
                   'WHERE s.symbol = t.symbol AND t.roll_rule IS NULL', tbl);
    EXECUTE format('UPDATE %s SET roll_rule = coalesce(roll_rule, ''v''), '
                   'rank = coalesce(rank, 0) WHERE roll_rule IS NULL OR rank IS NULL', tbl);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN roll_rule SET NOT NULL, '
                   'ALTER COLUMN rank SET NOT NULL', tbl);
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', tbl, con);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s (%s)', tbl, con, kind, cols);
END $$;

SELECT pg_temp.add_series('market_bars_ohlcv_1m_clean', 'market_bars_ohlcv_1m_clean_pkey',
                          'PRIMARY KEY', 'symbol, roll_rule, rank, ts');
DO $$
BEGIN
    IF NOT pg_temp.has_column('market_bars_ohlcv_1m_clean', 'instrument_id') THEN
        ALTER TABLE market_bars_ohlcv_1m_clean ADD COLUMN instrument_id bigint;
    END IF;
END $$;
SELECT pg_temp.add_series('ohlcv_gaps', 'ohlcv_gaps_pkey',
                          'PRIMARY KEY', 'symbol, roll_rule, rank, gap_start');
SELECT pg_temp.add_series('triangle_events_v1', 'triangle_events_v1_uniq', 'UNIQUE',
                          'symbol, roll_rule, rank, ts, direction, anchor, warmup, '
                          'htf_aligned_only, use_5m, use_15m, use_1h, use_4h, use_1d, '
                          'require_engulfing, require_sweep_engulfing, source_table, '
                          'logic_version');

-- Writes to the clean bars, logged for the stages that derive from them (0.2). A chunk
-- logs its range before writing (rows_written NULL) and the rows it wrote after; a NULL
-- (a write that died) counts as a change. Triangle catch-up recomputes the segments of
-- every change since it last ran (triangle_progress).
CREATE TABLE IF NOT EXISTS bar_changes (
    id            bigserial PRIMARY KEY,
    symbol        text NOT NULL,
    roll_rule     text NOT NULL,
    rank          smallint NOT NULL,
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    rows_written  integer,
    logged_at     timestamptz NOT NULL DEFAULT now()
);
-- (CREATE INDEX IF NOT EXISTS locks the table against writers before it looks)
DO $$
BEGIN
    IF to_regclass('bar_changes_series') IS NULL THEN
        CREATE INDEX bar_changes_series ON bar_changes (symbol, roll_rule, rank, id);
    END IF;
END $$;

-- The bar changes each series x triangle settings has absorbed: a catch-up run notes the
-- newest change it saw (pending) and, when it succeeds, makes it its own (last).
CREATE TABLE IF NOT EXISTS triangle_progress (
    symbol             text NOT NULL,
    roll_rule          text NOT NULL,
    rank               smallint NOT NULL,
    settings_key       text NOT NULL,
    last_change_id     bigint NOT NULL DEFAULT 0,
    pending_change_id  bigint,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, roll_rule, rank, settings_key)
);

-- Higher-timeframe bars rolled up from the clean 1-minute bars (features.md section 1).
-- ts is the bucket's start; complete: the series has a 1-minute bar at or after its end.
CREATE TABLE IF NOT EXISTS market_bars_ohlcv_agg (
    symbol      text NOT NULL,
    roll_rule   text NOT NULL,
    rank        smallint NOT NULL,
    timeframe   text NOT NULL CHECK (timeframe IN ('5m', '15m', '1h', '4h', '1d')),
    ts          timestamptz NOT NULL,
    open        numeric(20, 9) NOT NULL,
    high        numeric(20, 9) NOT NULL,
    low         numeric(20, 9) NOT NULL,
    close       numeric(20, 9) NOT NULL,
    volume      bigint NOT NULL,
    bars        integer NOT NULL CHECK (bars > 0),
    complete    boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_bars_ohlcv_agg_pkey PRIMARY KEY (symbol, roll_rule, rank, timeframe, ts)
);

-- Ten features per bar and timeframe (features.md section 2); NULL where undefined.
CREATE TABLE IF NOT EXISTS market_features_v1 (
    symbol         text NOT NULL,
    roll_rule      text NOT NULL,
    rank           smallint NOT NULL,
    timeframe      text NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')),
    ts             timestamptz NOT NULL,
    ret_1          double precision,
    log_ret_1      double precision,
    tr             double precision,
    atr_14         double precision,
    rsi_14         double precision,
    ema_20         double precision,
    sma_50         double precision,
    vol_30         double precision,
    vwap_session   double precision,
    volume_z_20    double precision,
    logic_version  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_features_v1_pkey PRIMARY KEY (symbol, roll_rule, rank, timeframe, ts)
);

-- The bar changes each series x timeframe's features have absorbed (as triangle_progress;
-- settings_key is the timeframe).
CREATE TABLE IF NOT EXISTS feature_progress (
    symbol             text NOT NULL,
    roll_rule          text NOT NULL,
    rank               smallint NOT NULL,
    settings_key       text NOT NULL,
    last_change_id     bigint NOT NULL DEFAULT 0,
    pending_change_id  bigint,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, roll_rule, rank, settings_key)
);

-- Stored bars per series and UTC month, kept by statement-level triggers on the clean
-- bars inside every writing statement (COPY, INSERT, upsert, DELETE, TRUNCATE), so it
-- always equals count(*) of the bars in the same snapshot. The console's completeness
-- reads it instead of counting years of minutes. Net changes only: an upsert that
-- rewrites existing bars writes nothing here. changed (0.4) takes a new number of the
-- bar_month_changes sequence whenever the month's set of stored minutes changes (a key
-- UPDATE inside a month too, though its count stays): a gap scan's result for the month
-- (gap_scan_months) holds while changed does. Numbers are never reused, not even after a
-- TRUNCATE.
CREATE SEQUENCE IF NOT EXISTS bar_month_changes;

CREATE OR REPLACE FUNCTION bar_month_counts_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- a transition table exists only for its own event: one statement per event; the
    -- rows go in key order, so concurrent writers lock count rows in one order
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM bar_month_counts;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO bar_month_counts AS c (symbol, roll_rule, rank, month, bars)
        SELECT symbol, roll_rule, rank, date_trunc('month', ts AT TIME ZONE 'UTC')::date,
               count(*)
        FROM new_bars GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (symbol, roll_rule, rank, month)
        DO UPDATE SET bars = c.bars + excluded.bars, changed = excluded.changed;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO bar_month_counts AS c (symbol, roll_rule, rank, month, bars)
        SELECT symbol, roll_rule, rank, date_trunc('month', ts AT TIME ZONE 'UTC')::date,
               -count(*)
        FROM old_bars GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (symbol, roll_rule, rank, month)
        DO UPDATE SET bars = c.bars + excluded.bars, changed = excluded.changed;
    ELSE  -- UPDATE: only a changed key moves a bar (an upsert's rewrites move none)
        INSERT INTO bar_month_counts AS c (symbol, roll_rule, rank, month, bars)
        SELECT symbol, roll_rule, rank, date_trunc('month', ts AT TIME ZONE 'UTC')::date,
               sum(n)
        FROM (
            SELECT *, 1 AS n FROM (
                SELECT symbol, roll_rule, rank, ts FROM new_bars
                EXCEPT ALL
                SELECT symbol, roll_rule, rank, ts FROM old_bars
            ) arrived
            UNION ALL
            SELECT *, -1 FROM (
                SELECT symbol, roll_rule, rank, ts FROM old_bars
                EXCEPT ALL
                SELECT symbol, roll_rule, rank, ts FROM new_bars
            ) departed
        ) moved
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (symbol, roll_rule, rank, month)
        DO UPDATE SET bars = c.bars + excluded.bars, changed = excluded.changed;
    END IF;
    RETURN NULL;
END $$;

-- The table, the triggers and the first count go in together, the bars locked against
-- writers meanwhile: once, and again whenever the table or a trigger has gone missing.
DO $$
BEGIN
    IF to_regclass('bar_month_counts') IS NULL
       OR (SELECT count(*) FROM pg_trigger
           WHERE tgrelid = 'market_bars_ohlcv_1m_clean'::regclass
             AND tgname LIKE 'bar\_month\_counts\_%') < 4 THEN
        LOCK TABLE market_bars_ohlcv_1m_clean IN SHARE ROW EXCLUSIVE MODE;
        CREATE TABLE IF NOT EXISTS bar_month_counts (
            symbol     text NOT NULL,
            roll_rule  text NOT NULL,
            rank       smallint NOT NULL,
            month      date NOT NULL,
            bars       bigint NOT NULL,
            changed    bigint NOT NULL DEFAULT nextval('bar_month_changes'),
            PRIMARY KEY (symbol, roll_rule, rank, month)
        );
        DROP TRIGGER IF EXISTS bar_month_counts_insert ON market_bars_ohlcv_1m_clean;
        DROP TRIGGER IF EXISTS bar_month_counts_update ON market_bars_ohlcv_1m_clean;
        DROP TRIGGER IF EXISTS bar_month_counts_delete ON market_bars_ohlcv_1m_clean;
        DROP TRIGGER IF EXISTS bar_month_counts_truncate ON market_bars_ohlcv_1m_clean;
        CREATE TRIGGER bar_month_counts_insert AFTER INSERT ON market_bars_ohlcv_1m_clean
            REFERENCING NEW TABLE AS new_bars
            FOR EACH STATEMENT EXECUTE FUNCTION bar_month_counts_apply();
        CREATE TRIGGER bar_month_counts_update AFTER UPDATE ON market_bars_ohlcv_1m_clean
            REFERENCING OLD TABLE AS old_bars NEW TABLE AS new_bars
            FOR EACH STATEMENT EXECUTE FUNCTION bar_month_counts_apply();
        CREATE TRIGGER bar_month_counts_delete AFTER DELETE ON market_bars_ohlcv_1m_clean
            REFERENCING OLD TABLE AS old_bars
            FOR EACH STATEMENT EXECUTE FUNCTION bar_month_counts_apply();
        CREATE TRIGGER bar_month_counts_truncate AFTER TRUNCATE ON market_bars_ohlcv_1m_clean
            FOR EACH STATEMENT EXECUTE FUNCTION bar_month_counts_apply();
        DELETE FROM bar_month_counts;
        INSERT INTO bar_month_counts (symbol, roll_rule, rank, month, bars)
        SELECT symbol, roll_rule, rank, date_trunc('month', ts AT TIME ZONE 'UTC')::date,
               count(*)
        FROM market_bars_ohlcv_1m_clean GROUP BY 1, 2, 3, 4;
    END IF;
END $$;

-- 0.4: counts of earlier versions gain changed (each row its own number). Checked first:
-- ALTER TABLE would lock the counts against every writer on each run.
DO $$
BEGIN
    IF NOT pg_temp.has_column('bar_month_counts', 'changed') THEN
        ALTER TABLE bar_month_counts
            ADD COLUMN changed bigint NOT NULL DEFAULT nextval('bar_month_changes');
    END IF;
END $$;

-- What a gap scan found in a whole UTC month of a series on a calendar (its name and
-- sessions-cache key: trading_calendar.calendar_version): the trading minutes missing
-- there, as int64 (first minute ns, minutes) pairs, while bar_month_counts.changed is
-- still the number in changed. A scan reads only the months whose number moved since
-- (gaps/scanned_months.py). Any row may be deleted: the next scan reads its month again.
CREATE TABLE IF NOT EXISTS gap_scan_months (
    symbol     text NOT NULL,
    roll_rule  text NOT NULL,
    rank       smallint NOT NULL,
    month      date NOT NULL,
    calendar   text NOT NULL,
    changed    bigint NOT NULL,
    missing    bytea NOT NULL,
    PRIMARY KEY (symbol, roll_rule, rank, month, calendar)
);
