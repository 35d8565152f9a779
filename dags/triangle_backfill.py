"""``triangle_backfill``: triangle signals from stored bars into ``triangle_events_v1``.

Thin wiring only: the task bodies live in ``market_backfill.triangles.tasks``.
"""

from __future__ import annotations

from airflow.sdk import TriggerRule, dag, task

from market_backfill.airflow.assets import CLEAN_BARS, TRIANGLES
from market_backfill.airflow.notify import RunFailureNotifier
from market_backfill.airflow.params import (
    DEFAULT_ARGS,
    batch_size_param,
    choice_param,
    flag,
    int_param,
    range_params,
    series_params,
    symbols_per_task_param,
    text_param,
    writers_param,
)

DOC = """
### Triangle signals from 1-minute bars

Computes *triangles* (the fair-value-gap bias of the bars flipping to Bullish or Bearish,
optionally gated by higher-timeframe agreement and engulfing candles; the exact
definition is the project's `triangle-signals.md`) and writes them to
`triangle_events_v1`, one mapped task per **calendar month and group of up to
`symbols_per_task` symbols** (labelled like `NQ 2025-12`, or `ES,NQ,+8 2025-12`); the
summary stays per symbol and month.

Each chunk reads from the start of the weekly segment (Sunday at the root's session open,
18:00 New York on CME Globex) that contains its first minute, so monthly chunks give
exactly the rows of one run over the whole range. Re-running adds nothing; `purge`
replaces the chunk's rows for the same settings. Runs after every update of the bars (a
successful `ohlcv_reingest`, gap repairs that wrote bars: Asset schedule) in catch-up
mode.

**Params**
- `symbols`, `start`, `end` (UTC dates, inclusive; both empty: catch up from the latest
  event of these settings to the last stored bar).
- `anchor`: `weekly` (default), `session` (daily at the session open) or `fixed` (one segment
  from `anchor_at`). `warmup`: bars per segment before a triangle may fire (5).
- `source_table`: `clean` (bars stamped at their open) or `legacy` (close-stamped,
  extra corruption filters; needs `allow_legacy`).
- `htf_aligned_only` with `use_5m` .. `use_1d`: only triangles the enabled higher
  timeframes agree with. `require_engulfing`, `require_sweep_engulfing`: candle filters.
- `purge`: delete and rewrite the chunk's rows for these settings.
- `symbols_per_task`: symbols of one month computed by one mapped task (25): fewer tasks,
  less of Airflow's fixed cost per task.
"""


@dag(
    dag_id="triangle_backfill",
    description="Triangle signals from stored 1-minute bars",
    doc_md=DOC,
    schedule=[CLEAN_BARS],
    catchup=False,
    max_active_runs=1,
    max_active_tasks=4,
    tags=["market-data", "signals", "backfill"],
    default_args=DEFAULT_ARGS,
    on_failure_callback=RunFailureNotifier(),
    params={
        **range_params("catch up from the latest event of these settings"),
        **series_params(),
        "anchor": choice_param(
            "weekly", ["weekly", "session", "fixed"], "Anchor", "Where all engine state resets."
        ),
        "anchor_at": text_param(
            "Fixed anchor (UTC)", "For anchor 'fixed', e.g. 2010-06-06T00:00:00Z."
        ),
        "warmup": int_param(
            5, 0, 10000, "Warm-up bars", "Bars of a segment before a triangle may fire."
        ),
        "source_table": choice_param(
            "clean",
            ["clean", "legacy"],
            "Source table",
            "clean: bars stamped at their open. legacy: close-stamped, extra corruption "
            "filters (needs Allow legacy).",
        ),
        "allow_legacy": flag("Allow legacy", "Needed to read the legacy (close-stamped) table."),
        "htf_aligned_only": flag("HTF aligned only", "Only triangles the enabled HTFs agree with."),
        "use_5m": flag("Use 5m", "5-minute bias must agree (with HTF aligned only)."),
        "use_15m": flag("Use 15m", "15-minute bias must agree."),
        "use_1h": flag("Use 1h", "1-hour bias must agree."),
        "use_4h": flag("Use 4h", "4-hour bias must agree."),
        "use_1d": flag("Use 1d", "Daily (UTC day) bias must agree."),
        "require_engulfing": flag("Require engulfing", "The bar must engulf the previous one."),
        "require_sweep_engulfing": flag(
            "Require sweep engulfing", "Engulfing that also sweeps the previous bar's extreme."
        ),
        "purge": flag("Purge", "Replace the chunk's rows for these settings."),
        "batch_size": batch_size_param(),
        "writers": writers_param(),
        "symbols_per_task": symbols_per_task_param(),
    },
)
def triangle_backfill() -> None:
    @task
    def ensure_schema() -> None:
        """Create the tables and the symbol registry if missing (idempotent)."""
        from market_backfill.airflow.chunks import ensure_schema as run

        run()

    @task
    def plan() -> list[dict]:
        """Validate the params and cut the work into months of groups of symbols."""
        from market_backfill.airflow.context import current_run
        from market_backfill.triangles.tasks import plan_chunks

        return plan_chunks(current_run())

    @task(
        multiple_outputs=False, map_index_template="{{ chunk_label }}", max_active_tis_per_dagrun=4
    )
    def triangle_chunk(chunk: dict) -> dict:
        """Per symbol of the group: read bars from the segment start, compute, insert."""
        from market_backfill.airflow.context import current_run
        from market_backfill.triangles.tasks import run_group

        return run_group(chunk, current_run(chunk["label"]))

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[TRIANGLES])
    def summarize(ti=None) -> dict:
        """Per-chunk table and totals into the log and backfill_runs; fails if a chunk did."""
        from market_backfill.airflow.context import current_run
        from market_backfill.triangles.tasks import summarize as run

        return run(ti.xcom_pull(task_ids="plan"), current_run())

    chunks = plan()
    ensure_schema() >> chunks
    triangle_chunk.expand(chunk=chunks) >> summarize()


triangle_backfill()
