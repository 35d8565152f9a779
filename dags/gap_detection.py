"""``gap_detection``: find missing minutes against the trading calendar and repair them.

Thin wiring only: the task bodies live in ``market_backfill.gaps.tasks``.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, TriggerRule, dag, task

from market_backfill.airflow.assets import CLEAN_BARS
from market_backfill.airflow.notify import RunFailureNotifier
from market_backfill.airflow.params import (
    DEFAULT_ARGS,
    flag,
    int_param,
    param,
    range_params,
    source_params,
)
from market_backfill.airflow.schedules import DAILY, daily_start
from market_backfill.names import DATABENTO_POOL, DEFAULT_MAX_COST_USD

DOC = """
### Find and repair missing minutes

Compares the stored bars of each symbol with its trading calendar (`CME Globex Equity`
for NQ, ES, YM, RTY: Sunday 18:00 ET open, the 17:00-18:00 ET break, holidays and early
closes, with the hours of each era since 2010: the 15:15 CT close and 15:30 CT reopen
until 2012-11-16, the 15:15-15:30 CT halt through trade date 2021-06-25, none from
2021-06-28). A **gap** is a run of consecutive trading minutes with no stored bar, at
least `min_gap_minutes` long;
weekends, holidays, early closes and the daily break are never gaps, and shorter runs are
quiet minutes, not gaps.

Gaps go to `ohlcv_gaps` (re-detection updates, never duplicates). With `repair`, each open
gap is re-ingested (one mapped task per gap, labelled `NQ 2025-12-03 14:05 (35m)`,
at most `max_repairs` per run) through the `ohlcv_reingest` code, checked again and
marked `filled`, or left `open` with `attempts` and `last_error` when the source has no
data (not a failure); after `max_attempts` such repairs it becomes `unfillable` and is no
longer requested (`retry_unfillable` asks again). When repairs wrote bars, `announce`
emits the bars Asset (so `triangle_backfill` recomputes what changed); the DAG itself
runs daily and after every update of the bars Asset (reingest, repairs). The `report`
task ends with a completeness table (symbol x month: expected minutes, stored, percent,
open and unfillable gaps; the detection's figures, the months a repair touched scanned
again) in its log, XCom and `backfill_runs`.

**What a run checks**: with `start`/`end`, those UTC days; a scheduled (daily) or
Backfill run, its data interval and the 30 days before it; a manual or asset-triggered
run without dates, the last 30 days.

**Params**: `symbols`, `start`, `end` (empty: see above), `min_gap_minutes`,
`repair`, `max_repairs`, `max_attempts`, `retry_unfillable`, `max_cost_usd` and
`dry_run` (the repairs' Databento pre-flight, as in `ohlcv_reingest`), and the source
params of `ohlcv_reingest` for the repair (`source`: `databento` or `dbn_file`; a gap is
minutes to hours, so batch jobs, `databento_batch`, are left to bulk loads).
"""


@dag(
    dag_id="gap_detection",
    description="Find missing 1-minute bars against the trading calendar and repair them",
    doc_md=DOC,
    schedule=AssetOrTimeSchedule(timetable=DAILY, assets=CLEAN_BARS),
    start_date=daily_start()[0],
    catchup=False,  # one run after downtime is enough: its 30-day look-back covers the gap
    max_active_runs=1,
    max_active_tasks=4,
    tags=["market-data", "quality", "backfill"],
    default_args=DEFAULT_ARGS,
    on_failure_callback=RunFailureNotifier(),
    params={
        **range_params("the last 30 days"),
        "min_gap_minutes": int_param(
            5, 1, 100000, "Minimum gap (minutes)", "Shorter runs of missing minutes are quiet."
        ),
        "repair": param(
            True,
            type="boolean",
            title="Repair",
            description="Re-ingest each open gap and check it again.",
        ),
        "max_repairs": int_param(
            100, 0, 1024, "Max repairs per run", "Open gaps repaired per run, oldest first."
        ),
        "max_attempts": int_param(
            3,
            1,
            100,
            "Attempts before unfillable",
            "Repairs that find no bars before a gap is marked unfillable and no longer asked.",
        ),
        "max_cost_usd": param(
            DEFAULT_MAX_COST_USD,
            type="number",
            minimum=0,
            title="Cost cap (USD)",
            description="With the databento source: the repairs are not requested when "
            "Databento's estimate of them is over this.",
        ),
        "dry_run": flag("Dry run", "Detect and estimate the repairs; repair nothing."),
        "max_lag_minutes": int_param(
            60,
            1,
            100000,
            "Max lag (trading minutes)",
            "A series whose newest bar lags more trading minutes behind the range's end is "
            "reported stale and alerted (the run does not fail).",
        ),
        "retry_unfillable": flag(
            "Retry unfillable", "Repair the gaps marked unfillable again in this run."
        ),
        **source_params("repairs"),
    },
)
def gap_detection() -> None:
    @task
    def ensure_schema() -> None:
        """Create the tables and the symbol registry if missing (idempotent)."""
        from market_backfill.airflow.chunks import ensure_schema as run

        run()

    @task
    def plan() -> list[dict]:
        """Validate params; one detection target per symbol."""
        from market_backfill.airflow.context import current_run
        from market_backfill.gaps.tasks import plan_detection

        return plan_detection(current_run())

    @task(multiple_outputs=False, map_index_template="{{ chunk_label }}")
    def detect(target: dict) -> dict:
        """Scan one symbol against its calendar and record its gaps."""
        from market_backfill.airflow.context import current_run
        from market_backfill.gaps.tasks import detect as run

        return run(target, current_run(target["label"]))

    @task(pool=DATABENTO_POOL)  # the repairs' pre-flight
    def plan_repairs() -> list[dict]:
        """The open gaps to repair in this run (oldest first, capped)."""
        from market_backfill.airflow.context import current_run
        from market_backfill.gaps.tasks import plan_repairs as run

        return run(current_run())

    @task(
        multiple_outputs=False,
        map_index_template="{{ chunk_label }}",
        max_active_tis_per_dagrun=2,
        pool=DATABENTO_POOL,
    )
    def repair(gap: dict) -> dict:
        """Re-ingest one gap, check it again, mark it filled or leave it open."""
        from market_backfill.airflow.context import current_run
        from market_backfill.gaps.tasks import run_repair

        return run_repair(gap, current_run(gap["label"]))

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[CLEAN_BARS])
    def announce() -> int:
        """Emit the bars Asset when repairs wrote bars (skipped otherwise)."""
        from market_backfill.airflow.context import current_run
        from market_backfill.gaps.tasks import announce_repairs

        return announce_repairs(current_run())

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report(ti=None) -> dict:
        """Completeness (symbol x month) into the log, XCom and backfill_runs."""
        from market_backfill.airflow.context import current_run
        from market_backfill.gaps.tasks import report as run

        planned = ti.xcom_pull(task_ids="plan"), ti.xcom_pull(task_ids="plan_repairs")
        return run(*planned, current_run())

    targets = plan()
    ensure_schema() >> targets
    gaps = plan_repairs()
    detect.expand(target=targets) >> gaps
    repairs = repair.expand(gap=gaps)
    repairs >> [announce(), report()]


gap_detection()
