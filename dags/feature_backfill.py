"""``feature_backfill``: higher-timeframe bars and bar features from the stored 1-minute bars.

Thin wiring only: the task bodies live in ``market_backfill.features.tasks``.
"""

from __future__ import annotations

from airflow.sdk import TriggerRule, dag, task

from market_backfill.airflow.assets import CLEAN_BARS, FEATURES
from market_backfill.airflow.notify import RunFailureNotifier
from market_backfill.airflow.params import (
    DEFAULT_ARGS,
    batch_size_param,
    date_param,
    flag,
    param,
    range_params,
    series_params,
    symbols_per_task_param,
    writers_param,
)
from market_backfill.names import TIMEFRAMES

DOC = """
### Higher-timeframe bars and bar features

From the clean 1-minute bars, per series and calendar month (one mapped task per month and
group of up to `symbols_per_task` series, labelled like `NQ 2025-12` or `ES,NQ,+8 2025-12`;
the summary stays per series and month):

1. **rollup** (`NQ 2025-12 agg`): `5m`, `15m`, `1h` (clock buckets, UTC), `4h` (from the
   18:00 New York session open) and `1d` (one bar per session) bars into
   `market_bars_ohlcv_agg`, with `bars` and `complete`;
2. **features**: ten features per bar and timeframe (`1m` included) into
   `market_features_v1`: `ret_1`, `log_ret_1`, `tr`, `atr_14`, `rsi_14`, `ema_20`,
   `sma_50`, `vol_30`, `vwap_session`, `volume_z_20` (the project's `features.md`).

A chunk equals one pass over the whole series (it starts from 400 bars before its month).
Runs after every update of the bars (Asset schedule) in catch-up mode.

**Params**
- `symbols`, `roll_rule`, `rank`: the series.
- `start`, `end` (UTC dates, inclusive): compute the feature rows **missing** in that
  window; stored feature rows are untouched (the rollup still rewrites a stored bucket of
  `market_bars_ohlcv_agg` whose bars changed, as every run does). Both empty: **catch
  up** from each series' and timeframe's newest feature row (recomputing the newest,
  possibly incomplete, bar) to the newest bar, plus every range whose bars changed since
  it was computed.
- `timeframes`: any of `1m, 5m, 15m, 1h, 4h, 1d` (default all).
- `force_recalc` with `since` (and optionally `end`): recompute from `since` on and
  overwrite every row whose values differ (a corrected bar, a new logic version).
- `symbols_per_task`: series of one month computed by one mapped task (25).
"""


@dag(
    dag_id="feature_backfill",
    description="Higher-timeframe bars and bar features from stored 1-minute bars",
    doc_md=DOC,
    schedule=[CLEAN_BARS],
    catchup=False,
    max_active_runs=1,
    max_active_tasks=4,
    tags=["market-data", "features", "backfill"],
    default_args=DEFAULT_ARGS,
    on_failure_callback=RunFailureNotifier(),
    params={
        **range_params("catch up from the newest feature rows"),
        **series_params(),
        "timeframes": param(
            list(TIMEFRAMES),
            type="array",
            minItems=1,
            uniqueItems=True,
            items={"type": "string", "enum": list(TIMEFRAMES)},
            title="Timeframes",
            description="Which timeframes to compute (1m is the clean bars themselves).",
        ),
        "force_recalc": flag(
            "Force recalc", "Recompute from Since on and overwrite rows whose values differ."
        ),
        "since": date_param("Since (UTC)", "With Force recalc: the first day recomputed."),
        "batch_size": batch_size_param(),
        "writers": writers_param(),
        "symbols_per_task": symbols_per_task_param(),
    },
)
def feature_backfill() -> None:
    @task
    def ensure_schema() -> None:
        """Create the tables and the symbol registry if missing (idempotent)."""
        from market_backfill.airflow.chunks import ensure_schema as run

        run()

    @task
    def plan() -> list[dict]:
        """Validate the params and cut the work into months of groups of series."""
        from market_backfill.airflow.context import current_run
        from market_backfill.features.tasks import plan_chunks

        return plan_chunks(current_run())

    @task(
        multiple_outputs=False, map_index_template="{{ chunk_label }}", max_active_tis_per_dagrun=4
    )
    def rollup_chunk(chunk: dict) -> dict:
        """Roll the month's 1-minute bars of each series up into the higher timeframes."""
        from market_backfill.airflow.context import current_run
        from market_backfill.features.tasks import rollup_label, run_rollup_group

        return run_rollup_group(chunk, current_run(rollup_label(chunk)))

    @task(
        multiple_outputs=False,
        map_index_template="{{ chunk_label }}",
        max_active_tis_per_dagrun=4,
        trigger_rule=TriggerRule.NONE_FAILED,
    )
    def feature_chunk(chunk: dict) -> dict:
        """Compute the month's features of each series per timeframe and write them."""
        from market_backfill.airflow.context import current_run
        from market_backfill.features.tasks import run_feature_group

        return run_feature_group(chunk, current_run(chunk["label"]))

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[FEATURES])
    def summarize(ti=None) -> dict:
        """Per-chunk table and totals into the log and backfill_runs; fails if a chunk did."""
        from market_backfill.airflow.context import current_run
        from market_backfill.features.tasks import summarize as run

        return run(ti.xcom_pull(task_ids="plan"), current_run())

    chunks = plan()
    ensure_schema() >> chunks
    rollup_chunk.expand(chunk=chunks) >> feature_chunk.expand(chunk=chunks) >> summarize()


feature_backfill()
