"""The ``databento_batch`` source of ``ohlcv_reingest``: multi-year pulls as batch jobs.

The run's chunks become one job per dataset (every symbol's series of the run, over the
chunks' whole span), quoted in ``plan`` like any Databento request. A sensor in reschedule
mode submits the jobs (or finds them already submitted) and waits for them without holding
a worker slot between pokes; a download task brings the monthly files into the data
directory once; the chunks then read their month from those files as DBN files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from market_backfill.planning import ChunkData
from market_backfill.reingest.params import ReingestParams
from market_backfill.sources.costs import DataRequest
from market_backfill.sources.databento_batch import DatabentoBatch
from market_backfill.symbols import Symbol, SymbolSettings, parse_symbol

log = logging.getLogger(__name__)

JobIds = dict[str, str]  # dataset -> batch job id
JobFiles = dict[str, list[str]]  # dataset -> the job's downloaded files


def batch_requests(
    chunks: Sequence[ChunkData],
    parsed: ReingestParams,
    registry: Mapping[Symbol, SymbolSettings],
) -> list[DataRequest]:
    """One request per dataset: the run's series of its symbols over the chunks' span."""
    spans: dict[str, tuple[str, str]] = {}
    for data in chunks:
        dataset = parse_symbol(data["symbol"]).dataset
        lo, hi = spans.get(dataset, (data["start"], data["end"]))
        spans[dataset] = (min(lo, data["start"]), max(hi, data["end"]))
    out = []
    for dataset, (lo, hi) in sorted(spans.items()):
        symbols = {
            registry[sym].series(parsed.roll_rule, parsed.rank).continuous
            for sym in parsed.symbols
            if sym.dataset == dataset
        }
        out.append(
            DataRequest(
                dataset,
                tuple(sorted(symbols)),
                datetime.fromisoformat(lo),
                datetime.fromisoformat(hi),
            )
        )
    return out


def submit_and_check(batch: DatabentoBatch, requests: Sequence[DataRequest]) -> JobIds | None:
    """Submit (or find) the job of every request; their ids once all are done, else None.
    Safe to repeat: a job already submitted with the same parameters is reused."""
    jobs: JobIds = {}
    waiting = []
    for request in requests:
        job_id, _ = batch.submit_or_reuse(request)
        jobs[request.dataset] = job_id
        state = batch.state(job_id)
        if state != "done":
            waiting.append(f"{job_id} {state}")
    if waiting:
        log.info("batch jobs not done yet: %s", ", ".join(waiting))
        return None
    return jobs


def download_all(batch: DatabentoBatch, jobs: JobIds) -> JobFiles:
    """Every file of every job, in the data directory (files already there are kept)."""
    return {dataset: [str(p) for p in batch.download(job_id)] for dataset, job_id in jobs.items()}
