-- The schema of market-backfill 0.1, as it made databases before 0.2 (a test fixture:
-- tests/market_backfill/db/test_schema.py migrates a database made by it).
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
    price_floor             numeric(20, 9) NOT NULL DEFAULT 0,
    calendar                text NOT NULL,
    -- legacy-table hygiene thresholds (triangle-signals.md section 1)
    discontinuity           numeric NOT NULL DEFAULT 500,
    small_range             numeric NOT NULL DEFAULT 10,
    small_range_gap         numeric NOT NULL DEFAULT 150,
    flat_discontinuity      numeric NOT NULL DEFAULT 50,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT market_symbols_symbol_format CHECK (symbol = dataset || ':' || root)
);

INSERT INTO market_symbols (symbol, dataset, root, roll_rule, rank, price_floor, calendar)
VALUES
    ('GLBX.MDP3:NQ', 'GLBX.MDP3', 'NQ', 'v', 0, 1000, 'CME Globex Equity'),
    ('GLBX.MDP3:ES', 'GLBX.MDP3', 'ES', 'v', 0, 1000, 'CME Globex Equity'),
    ('GLBX.MDP3:YM', 'GLBX.MDP3', 'YM', 'v', 0, 1000, 'CME Globex Equity'),
    ('GLBX.MDP3:RTY', 'GLBX.MDP3', 'RTY', 'v', 0, 1000, 'CME Globex Equity')
ON CONFLICT (symbol) DO NOTHING;

-- Clean 1-minute bars: ts is the bar OPEN time (UTC). Prices are exact decimals:
-- Databento's int64 fixed-point (1e-9) prices fit numeric(20, 9) without rounding.
CREATE TABLE IF NOT EXISTS market_bars_ohlcv_1m_clean (
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
        symbol, ts, direction, anchor, warmup, htf_aligned_only,
        use_5m, use_15m, use_1h, use_4h, use_1d,
        require_engulfing, require_sweep_engulfing, source_table, logic_version
    )
);

-- Gaps: maximal runs of missing trading minutes, keyed by (symbol, gap_start).
CREATE TABLE IF NOT EXISTS ohlcv_gaps (
    symbol       text NOT NULL,
    gap_start    timestamptz NOT NULL,
    gap_end      timestamptz NOT NULL,
    minutes      integer NOT NULL CHECK (minutes > 0),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'filled')),
    attempts     integer NOT NULL DEFAULT 0,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    filled_at    timestamptz,
    last_error   text,
    PRIMARY KEY (symbol, gap_start)
);

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
