"""Shared names and units, each defined once.

Times inside the library are int64 nanoseconds since the Unix epoch (UTC) or aware UTC
datetimes, never naive; prices are int64 fixed-point with :data:`FIXED_SCALE` (1e-9),
exactly as Databento encodes them. Names carry their unit (``start_ns``, ``backoff_s``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

# -- time ---------------------------------------------------------------------------------------
MINUTE = timedelta(minutes=1)
SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
DAY_S = 86_400
DAY_NS = DAY_S * SECOND_NS

# -- prices -------------------------------------------------------------------------------------
FIXED_SCALE = 1_000_000_000  # Databento fixed-point: 1 unit = 1e-9
UNDEF_PRICE = 2**63 - 1  # Databento's "no price": INT64_MAX
PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = ("symbol", "ts", *PRICE_COLUMNS, "volume")

# -- symbols and series -------------------------------------------------------------------------
# DATASET:ROOT; plain regex syntax, so the trigger form (JSON Schema, in the browser) can use it
SYMBOL_PATTERN = r"^[A-Z0-9]{2,16}\.[A-Z0-9]{2,16}:[A-Z0-9]{1,12}$"
ROLL_RULES = {"v": "volume", "c": "calendar", "n": "open interest"}
DEFAULT_SYMBOLS = ("GLBX.MDP3:NQ",)
DEFAULT_SESSION_ANCHOR = "18:00 America/New_York"  # CME Globex: sessions open 18:00 New York
OHLCV_1M = "ohlcv-1m"
SOURCES = ("databento", "dbn_file")  # where bars come from: the API, DBN files on disk
BATCH_SOURCE = "databento_batch"  # reingest only: Databento batch jobs, downloaded files
REINGEST_SOURCES = (*SOURCES, BATCH_SOURCE)

# -- pools (interfaces.md) ----------------------------------------------------------------------
DATABENTO_POOL = "databento"  # tasks that call Databento (data and metadata requests)
MARKET_DB_POOL = "market_db"  # every other task: reads and writes of the market database

# -- runs ---------------------------------------------------------------------------------------
DEFAULT_BATCH_SIZE = 500
DEFAULT_WRITERS = 2  # connections a reingest chunk writes its committed batches over at once
MAX_WRITERS = 8
DEFAULT_SYMBOLS_PER_TASK = 25  # every monthly stage: one mapped task per month and 25 symbols
DEFAULT_MAX_COST_USD = 50.0  # the Databento estimate a run may spend without raising it
CATCHUP_LOOKBACK = timedelta(days=7)  # where catch-up starts when nothing is stored yet

# -- triangles ----------------------------------------------------------------------------------
TRIANGLE_FLAGS = (
    "htf_aligned_only",
    "use_5m",
    "use_15m",
    "use_1h",
    "use_4h",
    "use_1d",
    "require_engulfing",
    "require_sweep_engulfing",
)
"""The boolean filter settings of a triangle run (DAG params, engine settings, columns)."""

# -- features -----------------------------------------------------------------------------------
Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
TIMEFRAMES: tuple[Timeframe, ...] = ("1m", "5m", "15m", "1h", "4h", "1d")
"""The feature timeframes (features.md): ``1m`` is the clean bars, the rest are rolled up."""
FEATURE_LOGIC_VERSION = "features-v1"
"""Stamped on every feature row; a change of the definition gets a new version."""
