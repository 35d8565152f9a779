"""``ohlcv_reingest``: load Databento 1-minute bars into ``market_bars_ohlcv_1m_clean``.

Thin wiring only: the task bodies live in ``market_backfill.reingest.tasks`` (imported
inside the tasks, so parsing this file touches no database, network or heavy library).
"""

from __future__ import annotations

from airflow.sdk import PokeReturnValue, TriggerRule, dag, task

from market_backfill.airflow.assets import CLEAN_BARS
from market_backfill.airflow.notify import RunFailureNotifier
from market_backfill.airflow.params import (
    DEFAULT_ARGS,
    batch_size_param,
    flag,
    param,
    range_params,
    source_params,
    symbols_per_task_param,
    writers_param,
)
from market_backfill.airflow.schedules import DAILY, batch_poke_seconds, daily_start
from market_backfill.names import (
    DATABENTO_POOL,
    DEFAULT_MAX_COST_USD,
    REINGEST_SOURCES,
)

DOC = """
### Reingest clean 1-minute bars

Loads `ohlcv-1m` bars of Databento continuous futures (e.g. `NQ.v.0`) into
`market_bars_ohlcv_1m_clean`, one mapped task per **calendar month and group of up to
`symbols_per_task` symbols** (labelled like `NQ 2025-12`, or `ES,NQ,+8 2025-12`); the
summary stays per symbol and month. Bars are validated first (undefined prices, OHLC
integrity, price floor, duplicate minutes); the good ones are upserted in committed
batches of 500, surviving dropped database connections. Every chunk is idempotent: clear a
failed task (with its downstream summary) to retry just that month of its symbols.

**What a run loads**
- *Trigger* with `start`/`end`: those UTC days, both inclusive. Without dates: catch-up,
  each symbol from its last stored bar up to now.
- *Schedule* (daily) and the *Backfill* dialog: each run loads exactly its data interval,
  one UTC day `[data_interval_start, data_interval_end)`. With `MARKET_BACKFILL_FIRST_DAY`
  set (an environment variable), unpausing or restarting after downtime creates a run
  for every missed day since it; unset, only the latest day runs and `gap_detection`
  repairs the days missed.

**Params**
- `symbols`: registry symbols `DATASET:ROOT`, e.g. `GLBX.MDP3:NQ`.
- `start`, `end`: UTC dates, both inclusive (manual runs).
- `roll_rule` (`v` volume, `c` calendar, `n` open interest) and `rank` (0 = front):
  request `ROOT.<roll>.<rank>` from Databento.
- `source`: `databento` (the API, billed per request), `databento_batch` (Databento batch
  jobs, one per dataset, split by month and downloaded once: for multi-year pulls) or
  `dbn_file` (files on disk).
- `dbn_path`: a `.dbn` / `.dbn.zst` file or glob, for `dbn_file`.
- `max_cost_usd`, `dry_run`: with `databento` or `databento_batch`, `plan` first clamps
  the range to what the dataset has published and asks Databento what the run's requests
  cost; over the cap the run stops there, before any data request. A dry run stops after
  the estimate.

With `databento_batch`, `batch_ready` (a sensor in reschedule mode: no worker slot is held
while Databento works) submits the jobs, or finds them already submitted, and waits for
them; `download_batch` brings their files into the data directory once. With the other
sources both finish at once.

The summary task prints a per-chunk table (rows in, valid, skipped by reason, written,
batches, commits, retries) and writes it to `backfill_runs`.
"""


# catch-up (every missed day's run, each loading its day) only from the day the operator
# set, MARKET_BACKFILL_FIRST_DAY; without it only the latest day runs
FIRST_DAY, CATCH_UP = daily_start()


@dag(
    dag_id="ohlcv_reingest",
    description="Load Databento 1-minute futures bars into the clean bars table",
    doc_md=DOC,
    schedule=DAILY,
    start_date=FIRST_DAY,
    catchup=CATCH_UP,
    max_active_runs=1,
    max_active_tasks=4,
    tags=["market-data", "databento", "backfill"],
    default_args=DEFAULT_ARGS,
    on_failure_callback=RunFailureNotifier(),
    params={
        **range_params("catch-up mode, from each symbol's last stored bar"),
        **source_params("the chunks", REINGEST_SOURCES),
        "batch_size": batch_size_param(),
        "writers": writers_param(),
        "symbols_per_task": symbols_per_task_param(),
        "max_cost_usd": param(
            DEFAULT_MAX_COST_USD,
            type="number",
            minimum=0,
            title="Cost cap (USD)",
            description="The run stops in plan, before any data request, when Databento's "
            "estimate of its requests is over this.",
        ),
        "dry_run": flag(
            "Dry run", "Plan and estimate the cost only: nothing requested or written."
        ),
    },
)
def ohlcv_reingest() -> None:
    @task
    def ensure_schema() -> None:
        """Create the tables and the symbol registry if missing (idempotent)."""
        from market_backfill.airflow.chunks import ensure_schema as run

        run()

    @task(pool=DATABENTO_POOL)  # the pre-flight's metadata requests
    def plan() -> list[dict]:
        """Validate the params and cut the work into (symbol, month) chunks."""
        from market_backfill.airflow.context import current_run
        from market_backfill.reingest.tasks import plan_chunks

        return plan_chunks(current_run())

    @task.sensor(
        mode="reschedule",
        poke_interval=batch_poke_seconds(),
        timeout=6 * 3600,
        pool=DATABENTO_POOL,
    )
    def batch_ready(chunks: list[dict]) -> PokeReturnValue:
        """databento_batch: submit or find the run's batch jobs; done when they are."""
        from market_backfill.airflow.context import current_run
        from market_backfill.reingest.tasks import batch_ready as poke

        jobs = poke(chunks, current_run())
        return PokeReturnValue(is_done=jobs is not None, xcom_value=jobs)

    @task(multiple_outputs=False, pool=DATABENTO_POOL)
    def download_batch(jobs: dict) -> dict:
        """databento_batch: the jobs' files, downloaded once into the data directory."""
        from market_backfill.reingest.tasks import download_batch as run

        return run(jobs)

    @task(
        multiple_outputs=False,
        map_index_template="{{ chunk_label }}",
        max_active_tis_per_dagrun=4,
        pool=DATABENTO_POOL,
    )
    def reingest_chunk(chunk: dict, files: dict) -> dict:
        """Fetch, validate and upsert one month of a group of symbols; counts are the XCom."""
        from market_backfill.airflow.context import current_run
        from market_backfill.reingest.tasks import run_group

        return run_group(chunk, current_run(chunk["label"]), files)

    @task(
        multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[CLEAN_BARS]
    )
    def summarize(ti=None) -> dict:
        """Per-chunk table and totals into the log and backfill_runs; fails if a chunk did."""
        from market_backfill.airflow.context import current_run
        from market_backfill.reingest.tasks import summarize as run

        return run(ti.xcom_pull(task_ids="plan"), current_run())

    chunks = plan()
    ensure_schema() >> chunks
    files = download_batch(batch_ready(chunks))
    reingest_chunk.partial(files=files).expand(chunk=chunks) >> summarize()


ohlcv_reingest()
