"""DatabentoBatch through the official client against the https stand-in's batch API."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_backfill.sources import SourceError
from market_backfill.sources.costs import DataRequest
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.sources.databento_batch import DatabentoBatch
from market_backfill.sources.dbn_file import DbnFileSource
from tests.support.gateway import API_KEY

START = datetime(2025, 1, 20, tzinfo=UTC)
END = datetime(2025, 3, 10, tzinfo=UTC)  # three monthly files: Jan (part), Feb, Mar (part)
REQUEST = DataRequest("GLBX.MDP3", ("NQ.v.0", "ES.v.0"), START, END)
WANTED = {"NQ.v.0": "GLBX.MDP3:NQ", "ES.v.0": "GLBX.MDP3:ES"}


def _batch(gateway, root) -> DatabentoBatch:
    return DatabentoBatch(DatabentoSource(API_KEY, gateway.url), root)


def _wait_done(batch: DatabentoBatch, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while batch.state(job_id) != "done":
        assert time.monotonic() < deadline, "the stand-in's job never finished"
        time.sleep(0.1)


def test_a_job_is_submitted_once_and_found_again_by_its_parameters(gateway, tmp_path):
    gateway.state.batch_seconds = 0.3
    job_id, submitted = _batch(gateway, tmp_path / "a").submit_or_reuse(REQUEST)
    assert submitted
    form = gateway.state.submits()[0]["form"]
    assert (form["schema"], form["stype_in"], form["split_duration"]) == (
        "ohlcv-1m",
        "continuous",
        "month",
    )
    assert (form["encoding"], form["compression"], form["symbols"]) == (
        "dbn",
        "zstd",
        "ES.v.0,NQ.v.0",
    )
    assert _batch(gateway, tmp_path / "a").state(job_id) in ("queued", "processing")
    # another worker, another data directory, the same request: the job is reused
    again, submitted_again = _batch(gateway, tmp_path / "b").submit_or_reuse(
        DataRequest("GLBX.MDP3", ("ES.v.0", "NQ.v.0"), START, END)
    )
    assert (again, submitted_again) == (job_id, False)
    assert len(gateway.state.submits()) == 1
    # a different range is a different job
    other, submitted_other = _batch(gateway, tmp_path / "a").submit_or_reuse(
        DataRequest("GLBX.MDP3", REQUEST.symbols, START, datetime(2025, 3, 1, tzinfo=UTC))
    )
    assert submitted_other
    assert other != job_id
    assert len(gateway.state.submits()) == 2


def test_a_submit_whose_answer_was_lost_is_found_not_submitted_again(gateway, tmp_path, sleeps):
    """A job is billed when Databento makes it: a submit that made the job but whose
    answer was lost (a 502 from a proxy) is not sent again; the job is found."""
    from tests.support.gateway import SUBMIT_PATH, Scripted

    gateway.fail_with(Scripted(502, path=SUBMIT_PATH, lost_answer=True))
    job_id, submitted = _batch(gateway, tmp_path).submit_or_reuse(REQUEST)
    assert len(gateway.state.submits()) == 1  # one job made, and billed, once
    assert (job_id, submitted) == (next(iter(gateway.state.jobs)), True)
    assert sleeps == [2.0]  # the backoff before looking for it
    # a submit that failed before Databento made anything is sent again
    other = DataRequest("GLBX.MDP3", REQUEST.symbols, START, datetime(2025, 3, 1, tzinfo=UTC))
    gateway.fail_with(Scripted(503, path=SUBMIT_PATH))
    again, _ = _batch(gateway, tmp_path).submit_or_reuse(other)
    assert len(gateway.state.submits()) == 3  # the refused one, then the one that made it
    assert again != job_id
    assert len(gateway.state.jobs) == 2
    # a 429 is a refusal before any work: waited for as told and sent again, no lookup
    third = DataRequest("GLBX.MDP3", REQUEST.symbols, START, datetime(2025, 2, 15, tzinfo=UTC))
    gateway.fail_with(Scripted(429, retry_after=0.25, path=SUBMIT_PATH))
    sleeps.clear()
    looked = len(gateway.state.requests)
    _batch(gateway, tmp_path).submit_or_reuse(third)
    assert sleeps == [0.25]
    paths = [r["path"] for r in gateway.state.requests[looked:]]
    assert paths.count(SUBMIT_PATH) == 2
    assert paths.count("/v0/batch.list_jobs") == 1  # the one look before submitting
    assert len(gateway.state.jobs) == 3


def test_files_are_downloaded_once_and_hold_the_same_bars_as_get_range(
    gateway, tmp_path, monkeypatch
):
    from market_backfill.sources import cache, databento_batch

    placed = []  # each file goes in place through the flush-then-rename (spied, still run)

    def durable_replace(partial, target):
        placed.append(target)
        cache.durable_replace(partial, target)

    monkeypatch.setattr(databento_batch, "durable_replace", durable_replace)
    gateway.state.batch_seconds = 0.2
    batch = _batch(gateway, tmp_path)
    job_id, _ = batch.submit_or_reuse(REQUEST)
    _wait_done(batch, job_id)
    paths = batch.download(job_id)
    assert placed == paths
    assert [p.name for p in paths] == [
        "glbx-mdp3-20250120-20250131.ohlcv-1m.dbn.zst",
        "glbx-mdp3-20250201-20250228.ohlcv-1m.dbn.zst",
        "glbx-mdp3-20250301-20250309.ohlcv-1m.dbn.zst",
    ]
    assert all(p.parent == batch.job_dir(job_id) for p in paths)
    assert len(gateway.state.downloads()) == 3
    assert batch.downloaded == 3
    # a second run (another process) finds every file complete and fetches nothing
    second = _batch(gateway, tmp_path)
    assert second.download(job_id) == paths
    assert len(gateway.state.downloads()) == 3
    assert second.downloaded == 0

    from_files, streamed = (
        pd.DataFrame(source.fetch("GLBX.MDP3", WANTED, START, END)).sort_values(
            ["symbol", "ts"], ignore_index=True
        )
        for source in (
            DbnFileSource([str(p) for p in paths]),
            DatabentoSource(API_KEY, gateway.url),
        )
    )
    assert len(from_files) == len(streamed) > 0
    for col in ("symbol", "ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(from_files[col].to_numpy(), streamed[col].to_numpy())


def test_an_interrupted_download_resumes_where_it_stopped(gateway, tmp_path):
    gateway.state.batch_seconds = 0
    first = _batch(gateway, tmp_path / "first")
    job_id, _ = first.submit_or_reuse(REQUEST)
    whole = first.download(job_id)[1]
    body = whole.read_bytes()
    # another data directory holds half of that file, as a killed download leaves it
    resumed = _batch(gateway, tmp_path / "second")
    partial = resumed.root / "partial" / job_id / whole.name
    partial.parent.mkdir(parents=True)
    partial.write_bytes(body[: len(body) // 2])
    before = len(gateway.state.downloads())
    paths = resumed.download(job_id)
    asked = {r["form"]["file"]: r["form"]["range"] for r in gateway.state.downloads()[before:]}
    assert asked[f"{job_id}/{whole.name}"] == f"bytes={len(body) // 2}-{len(body) - 1}"
    assert paths[1].read_bytes() == body
    assert not partial.exists()


def _left_partial(gateway, tmp_path, content) -> tuple[DatabentoBatch, str, Path, Path]:
    """A done job, its first file fetched elsewhere (``good``), and a partial download of
    that file holding ``content(good bytes)`` where ``batch`` resumes downloads."""
    gateway.state.batch_seconds = 0
    batch = _batch(gateway, tmp_path)
    job_id, _ = batch.submit_or_reuse(REQUEST)
    good = _batch(gateway, tmp_path / "good").download(job_id)[0]
    partial = batch.root / "partial" / job_id / good.name
    partial.parent.mkdir(parents=True)
    partial.write_bytes(content(good.read_bytes()))
    return batch, job_id, good, partial


def test_a_corrupt_file_is_dropped_and_fetched_again(gateway, tmp_path):
    batch, job_id, good, partial = _left_partial(
        gateway,
        tmp_path,
        lambda body: b"\0" * len(body),  # full size, wrong bytes
    )
    with pytest.raises(SourceError, match="failed its checksum"):
        batch.download(job_id)
    assert not partial.exists()
    assert not (batch.job_dir(job_id) / good.name).exists()
    assert batch.download(job_id)[0].read_bytes() == good.read_bytes()


def test_a_partial_file_longer_than_the_manifest_says_is_fetched_afresh(gateway, tmp_path):
    batch, job_id, good, _ = _left_partial(
        gateway,
        tmp_path,
        lambda body: body + b"stale tail",  # left by another job's file
    )
    assert batch.download(job_id)[0].read_bytes() == good.read_bytes()
