"""``ohlcv_reingest``: load Databento 1-minute bars into ``market_bars_ohlcv_1m_clean``.

Thin wiring only: the task bodies live in ``market_backfill.reingest_tasks`` (imported
inside the tasks, so parsing this file touches no database, network or heavy library).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from market_backfill.dag_common import CLEAN_BARS, DEFAULT_ARGS, batch_size_param, range_params

DOC = """
### Reingest clean 1-minute bars

Loads `ohlcv-1m` bars of Databento continuous futures (e.g. `NQ.v.0`) into
`market_bars_ohlcv_1m_clean`, one mapped task per **symbol x calendar month**
(labelled like `NQ 2025-12`). Bars are validated first (undefined prices, OHLC integrity,
price floor, duplicate minutes); the good ones are upserted in committed batches of 500,
surviving dropped database connections. Every chunk is idempotent: clear a failed chunk
(with its downstream summary) to retry just that month.

**Params**
- `symbols`: registry symbols `DATASET:ROOT`, e.g. `GLBX.MDP3:NQ`.
- `start`, `end`: UTC dates, both inclusive. Leave both empty for *catch-up*: each symbol
  from its last stored bar up to the run's end (what the daily schedule does).
- `roll_rule` (`v` volume, `c` calendar, `n` open interest) and `rank` (0 = front):
  request `ROOT.<roll>.<rank>` from Databento.
- `source`: `databento` (the API, billed per request) or `dbn_file` (files on disk).
- `dbn_path`: a `.dbn` / `.dbn.zst` file or glob, for `dbn_file`.

The summary task prints a per-chunk table (rows in, valid, skipped by reason, written,
batches, commits, retries) and writes it to `backfill_runs`.
"""


@dag(
    dag_id="ohlcv_reingest",
    description="Load Databento 1-minute futures bars into the clean bars table",
    doc_md=DOC,
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=4,
    tags=["market-data", "databento", "backfill"],
    default_args=DEFAULT_ARGS,
    params={
        **range_params("catch-up mode, from each symbol's last stored bar"),
        "roll_rule": Param(
            "v",
            type="string",
            enum=["v", "c", "n"],
            title="Roll rule",
            values_display={"v": "v: volume", "c": "c: calendar", "n": "n: open interest"},
            description="How the continuous contract rolls.",
        ),
        "rank": Param(
            0,
            type="integer",
            minimum=0,
            maximum=9,
            title="Rank",
            description="0 = front month, 1 = second, ...",
        ),
        "source": Param(
            "databento",
            type="string",
            enum=["databento", "dbn_file"],
            title="Source",
            description="databento: the historical API (billed). dbn_file: DBN files on disk.",
        ),
        "dbn_path": Param(
            None,
            type=["null", "string"],
            title="DBN path",
            description="For source dbn_file: a .dbn or .dbn.zst file, or a glob.",
        ),
        "batch_size": batch_size_param(),
    },
)
def ohlcv_reingest() -> None:
    @task
    def ensure_schema() -> None:
        """Create the tables and the symbol registry if missing (idempotent)."""
        from market_backfill.chunk_tasks import ensure_schema as run

        run()

    @task
    def plan(params: dict | None = None) -> list[dict]:
        """Validate the params and cut the work into (symbol, month) chunks."""
        from market_backfill.reingest_tasks import plan_chunks

        return plan_chunks(params or {}, get_current_context())

    @task(map_index_template="{{ chunk_label }}", max_active_tis_per_dagrun=4)
    def reingest_chunk(chunk: dict, params: dict | None = None, dag_run=None) -> dict:
        """Fetch, validate and upsert one chunk; its counts are the XCom."""
        get_current_context()["chunk_label"] = chunk["label"]
        from market_backfill.reingest_tasks import run_chunk

        return run_chunk(chunk, params or {}, dag_id=dag_run.dag_id, run_id=dag_run.run_id)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[CLEAN_BARS])
    def summarize(dag_run=None, ti=None) -> dict:
        """Per-chunk table and totals into the log and backfill_runs; fails if a chunk did."""
        from market_backfill.reingest_tasks import summarize as run

        planned = ti.xcom_pull(task_ids="plan")
        return run(planned, dag_id=dag_run.dag_id, run_id=dag_run.run_id)

    chunks = plan()
    ensure_schema() >> chunks
    reingest_chunk.expand(chunk=chunks) >> summarize()


ohlcv_reingest()
