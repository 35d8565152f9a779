"""Databento's batch API for multi-year pulls: one job per dataset and range, split by month.

A job is submitted once (``batch.submit_job``: ``ohlcv-1m``, continuous symbols, DBN, zstd,
``split_duration="month"``); a job already submitted with the same parameters and not
expired is found through ``batch.list_jobs`` and ``batch.get_job_details`` and reused, so a
cleared task or a second run pays nothing. Submitting happens under a file lock in the data
directory, so two workers cannot both submit the same job.

Files are downloaded (``batch.download``, one file at a time, resumed with ``Range`` after
an interruption) into ``<data dir>/databento/batch/partial/<job id>/``, their SHA-256 is
checked against the job's manifest, and each finished file is flushed to disk and renamed
into ``<data dir>/databento/batch/<job id>/``: a file there is complete, even after a crash
of the host, and is never fetched again. Every call goes through
:meth:`DatabentoSource.call` (429, 5xx and network errors retried; 4xx fail at once with a
hint). The files are then read as any DBN file.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from market_backfill.names import OHLCV_1M
from market_backfill.sources import PermanentSourceError, SourceError
from market_backfill.sources.cache import data_dir, durable_replace, file_lock
from market_backfill.sources.costs import DataRequest
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.timeutil import to_ns

log = logging.getLogger(__name__)

FIXED_PARAMS: dict[str, str] = {
    "schema": OHLCV_1M,
    "stype_in": "continuous",
    "encoding": "dbn",
    "compression": "zstd",
    "split_duration": "month",
    "delivery": "download",
}


def submit_params(request: DataRequest) -> dict[str, Any]:
    """The keyword arguments of ``batch.submit_job`` for the bars of ``request``."""
    return {
        "dataset": request.dataset,
        "symbols": sorted(request.symbols),
        "start": pd.Timestamp(request.start).isoformat(),
        "end": pd.Timestamp(request.end).isoformat(),
        **FIXED_PARAMS,
    }


def job_matches(request: DataRequest, job: dict[str, Any]) -> bool:
    """Whether ``job`` (as ``batch.get_job_details`` returns it) holds exactly ``request``."""
    if any(str(job.get(key)) != value for key, value in FIXED_PARAMS.items()):
        return False
    symbols = {s.strip() for s in str(job.get("symbols") or "").split(",") if s.strip()}
    return (
        job.get("dataset") == request.dataset
        and symbols == set(request.symbols)
        and bool(job.get("start"))
        and bool(job.get("end"))
        and to_ns(job["start"]) == to_ns(request.start)
        and to_ns(job["end"]) == to_ns(request.end)
    )


class DatabentoBatch:
    """Submit, find, watch and download batch jobs of one Databento account."""

    def __init__(self, api: DatabentoSource, root: Path | None = None) -> None:
        self.api = api
        self.root = root if root is not None else data_dir() / "databento" / "batch"
        self.downloaded = 0  # files fetched by this object (not those already on disk)

    def job_dir(self, job_id: str) -> Path:
        """Where the complete files of ``job_id`` are kept."""
        return self.root / job_id

    def find(self, request: DataRequest) -> str | None:
        """The id of a live job already submitted for ``request``, else None."""
        client = self.api.client()
        # no states filter: the API then lists every job but the expired ones, including
        # those just 'received' (a filter may only name queued, processing, done, expired)
        jobs = self.api.call("batch jobs", lambda: client.batch.list_jobs(states=None))
        for job in reversed(jobs):  # newest first
            details = self.api.call(
                f"batch job {job['id']}", lambda j=job: client.batch.get_job_details(j["id"])
            )
            if job_matches(request, details):
                return str(job["id"])
        return None

    def submit_or_reuse(self, request: DataRequest) -> tuple[str, bool]:
        """The job for ``request`` and whether it was submitted now (False: reused)."""
        with file_lock(self.root, "submit"):
            found = self.find(request)
            if found is not None:
                log.info("batch job %s already holds %s: reused", found, request.dataset)
                return found, False
            client = self.api.client()
            params = submit_params(request)
            what = f"batch job for {request.dataset} {len(request.symbols)} symbols"
            attempts = self.api.backoff.attempts
            for attempt in range(1, attempts + 1):
                try:  # one try at a time: a failed answer may hide a job Databento made
                    job = self.api.call(
                        what, lambda: client.batch.submit_job(**params), retry_unsure=False
                    )
                except PermanentSourceError:
                    raise
                except SourceError as exc:
                    if attempt == attempts:
                        raise SourceError(
                            f"Databento {what}: no job after {attempts} submits, last: {exc}"
                        ) from exc
                    self.api.backoff.wait(attempt)
                    found = self.find(request)
                    if found is not None:
                        log.warning(
                            "batch job %s was made by a submit whose answer was lost", found
                        )
                        return found, True
                else:
                    log.info("batch job %s submitted (%s)", job["id"], job.get("state"))
                    return str(job["id"]), True
            raise AssertionError("unreachable")  # pragma: no cover

    def state(self, job_id: str) -> str:
        """The job's state: 'received', 'queued', 'processing', 'done' or 'expired'."""
        client = self.api.client()
        details = self.api.call(f"batch job {job_id}", lambda: client.batch.get_job_details(job_id))
        return str(details["state"])

    def download(self, job_id: str) -> list[Path]:
        """Every file of the (done) job, complete, in :meth:`job_dir`; files already there
        are not fetched again. Idempotent and safe to run from several workers at once."""
        client = self.api.client()
        manifest = self.api.call(
            f"batch job {job_id} files", lambda: client.batch.list_files(job_id)
        )
        final_dir = self.job_dir(job_id)
        partial_root = self.root / "partial"
        paths = []
        with file_lock(self.root, job_id):
            final_dir.mkdir(parents=True, exist_ok=True)
            for entry in manifest:
                name, size = str(entry["filename"]), int(entry["size"])
                target = final_dir / name
                if target.exists() and target.stat().st_size == size:
                    paths.append(target)
                    continue
                partial = partial_root / job_id / name
                if partial.exists() and partial.stat().st_size > size:
                    partial.unlink()  # not this file: the client would refuse to resume it
                with warnings.catch_warnings():  # the client only warns on a bad checksum;
                    warnings.simplefilter("ignore")  # _check_hash below fails on it
                    self.api.call(
                        f"batch file {name}",
                        lambda n=name: client.batch.download(
                            job_id, output_dir=partial_root, filename_to_download=n
                        ),
                    )
                _check_hash(partial, str(entry.get("hash") or ""))
                durable_replace(partial, target)
                self.downloaded += 1
                paths.append(target)
        log.info("batch job %s: %d files, %d downloaded now", job_id, len(paths), self.downloaded)
        return sorted(paths)


def _check_hash(path: Path, expected: str) -> None:
    """Raise (and drop the file) when ``path`` does not have the manifest's SHA-256."""
    algo, _, digest = expected.partition(":")
    if algo != "sha256":
        log.warning("%s: no sha256 in the manifest; not checked", path.name)
        return
    found = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            found.update(chunk)
    if found.hexdigest() != digest:
        path.unlink()
        raise SourceError(f"batch file {path.name} failed its checksum; it will be fetched again")
