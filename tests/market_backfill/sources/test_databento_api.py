"""DatabentoSource through the official client against the local https stand-in."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_backfill.retry import Backoff
from market_backfill.sources import PermanentSourceError, SourceError
from market_backfill.sources.databento_api import DatabentoSource
from market_backfill.sources.dbn import bar_count
from market_backfill.timeutil import to_ns
from tests.support.gateway import API_KEY, Scripted

START = datetime(2025, 2, 20, tzinfo=UTC)
END = datetime(2025, 3, 20, tzinfo=UTC)  # spans the March roll (new instrument id)
WANTED = {"NQ.v.0": "GLBX.MDP3:NQ", "ES.v.0": "GLBX.MDP3:ES"}


def _source(gateway, **kwargs) -> DatabentoSource:
    return DatabentoSource(API_KEY, gateway.url, **kwargs)


def test_one_request_for_several_symbols_maps_bars_exactly(gateway, synthetic_bars_continuous):
    source = _source(gateway)
    bars = pd.DataFrame(source.fetch("GLBX.MDP3", WANTED, START, END))
    assert source.requests == 1
    form = gateway.state.data_requests()[0]["form"]
    assert form["symbols"] == "ES.v.0,NQ.v.0"
    assert (form["schema"], form["stype_in"]) == ("ohlcv-1m", "continuous")
    src = synthetic_bars_continuous
    for cont, key in WANTED.items():
        want = src[(src.symbol == cont) & (src.ts >= to_ns(START)) & (src.ts < to_ns(END))]
        got = bars[bars.symbol == key].sort_values("ts")
        assert len(got) == len(want) > 0
        for col in ("ts", "open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())


def test_server_errors_and_rate_limits_are_retried(gateway, sleeps):
    gateway.fail_with(Scripted(500), Scripted(429, retry_after=0.25), Scripted(503))
    source = _source(gateway, backoff=Backoff(attempts=5, base_s=0.01))
    bars = source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert bar_count(bars) > 0
    assert (source.requests, source.retries) == (4, 3)
    assert sleeps == [0.01, 0.25, 0.04]


def test_network_errors_are_retried(gateway, sleeps, caplog):
    gateway.fail_with(Scripted(0), Scripted(0))
    source = _source(gateway, backoff=Backoff(attempts=3, base_s=0.01))
    bars = source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert bar_count(bars) > 0
    assert (source.requests, source.retries) == (3, 2)
    assert sleeps == [0.01, 0.02]
    assert len(gateway.state.data_requests()) == 3
    assert "network error ConnectionError, retrying" in caplog.text


def test_the_default_is_five_attempts_with_waits_doubling_from_two_seconds(gateway, sleeps):
    gateway.fail_with(*[Scripted(500)] * 5)
    with pytest.raises(SourceError, match="failed 5 times, last: 500 server error"):
        _source(gateway).fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert sleeps == [2.0, 4.0, 8.0, 16.0]
    assert len(gateway.state.data_requests()) == 5


def test_a_response_this_host_cannot_write_is_not_downloaded_again(gateway, tmp_path, sleeps):
    """A write that fails on this host (here a file size limit, as a full disk or a quota
    would) is not retried like a network error: every try would download and bill the
    month again. It stops the run (every chunk would meet the same disk)."""
    import resource
    import signal

    source = _source(gateway, cache_dir=tmp_path / "cache")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limit[1]))
    try:
        with pytest.raises(PermanentSourceError, match="could not be written") as err:
            source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    assert "File too large" in str(err.value)
    assert err.value.run_wide
    assert (len(gateway.state.data_requests()), sleeps) == (1, [])
    assert not list((tmp_path / "cache").glob("*.part"))  # nothing half-written kept


def test_retries_are_bounded(gateway):
    gateway.fail_with(*[Scripted(500)] * 3)
    source = _source(gateway, backoff=Backoff(attempts=3, base_s=0))
    with pytest.raises(SourceError, match="failed 3 times, last: 500 server error"):
        source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)


def test_a_rejected_key_fails_at_once_and_says_what_to_fix(gateway):
    source = DatabentoSource("db-WRONG", gateway.url)
    with pytest.raises(PermanentSourceError, match="connection 'databento'") as err:
        source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert "401" in str(err.value)
    assert "db-WRONG" not in str(err.value)
    assert source.requests == 1


@pytest.mark.parametrize(
    ("status", "hint"), [(422, "rejected as invalid"), (402, "payment"), (403, "no access")]
)
def test_client_errors_fail_at_once(gateway, status, hint):
    gateway.fail_with(Scripted(status, detail="end is after the available range"))
    source = _source(gateway)
    with pytest.raises(PermanentSourceError, match=hint) as err:
        source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert source.requests == 1
    # a refused key or account stops the whole run; an invalid request only this chunk
    assert err.value.run_wide is (status in (401, 402, 403))
    if status == 422:
        assert "end is after the available range" in str(err.value)


def test_no_key_is_a_clear_error():
    with pytest.raises(PermanentSourceError, match="DATABENTO_API_KEY"):
        DatabentoSource("", None)


def test_repr_hides_the_key(gateway):
    assert API_KEY not in repr(_source(gateway))


def test_the_key_is_never_logged(gateway, sleeps, caplog):
    """Every log line of a fetch with retries, a quote and a refused key, at DEBUG from
    every logger (the client's, requests' and urllib3's included), holds no key."""
    wrong = "db-WRONGKEY000000000000000000000"
    with caplog.at_level(logging.DEBUG):
        gateway.fail_with(Scripted(500), Scripted(0))
        source = _source(gateway, backoff=Backoff(attempts=3, base_s=0.01))
        source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
        source.quote("GLBX.MDP3", ["NQ.v.0"], START, END)
        with pytest.raises(PermanentSourceError):
            DatabentoSource(wrong, gateway.url).fetch(
                "GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END
            )
    assert "Databento" in caplog.text  # the requests were logged
    assert API_KEY not in caplog.text
    assert wrong not in caplog.text


def test_companions_share_one_cached_request(gateway, tmp_path, synthetic_bars_continuous):
    cache = tmp_path / "cache"
    companions = {"GLBX.MDP3": ["ES.v.0", "NQ.v.0"]}
    first = DatabentoSource(API_KEY, gateway.url, cache_dir=cache, companions=companions)
    nq = first.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    second = DatabentoSource(API_KEY, gateway.url, cache_dir=cache, companions=companions)
    es = second.fetch("GLBX.MDP3", {"ES.v.0": "GLBX.MDP3:ES"}, START, END)
    assert (first.requests, second.requests, len(gateway.state.data_requests())) == (1, 0, 1)
    assert set(nq["symbol"]) == {"GLBX.MDP3:NQ"}
    assert set(es["symbol"]) == {"GLBX.MDP3:ES"}
    src = synthetic_bars_continuous
    assert bar_count(es) == len(
        src[(src.symbol == "ES.v.0") & (src.ts >= to_ns(START)) & (src.ts < to_ns(END))]
    )
    assert not list(cache.glob("*.part"))


def test_a_failed_attempt_leaves_no_partial_file_behind(gateway, tmp_path):
    gateway.fail_with(Scripted(500))
    source = DatabentoSource(API_KEY, gateway.url, cache_dir=tmp_path)
    assert bar_count(source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)) > 0
    assert source.requests == 2
    assert [p.suffix for p in tmp_path.glob("*.dbn.zst")] == [".zst"]
    assert not list(tmp_path.glob("*.part"))


def _cached_files(cache):
    return sorted(cache.glob("*.dbn.zst"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # lost its end (a crash before the data reached disk)
        lambda data: b"\0" * len(data),  # zeros where the data should be
    ],
    ids=["cut", "zeroed"],
)
def test_a_damaged_cached_response_is_requested_once_more(gateway, tmp_path, caplog, damage):
    """A kept response that cannot be read would fail every retry and every later run
    that reads it: it is removed and requested again, once, and the bars are the same."""
    cache = tmp_path / "cache"
    wanted = {"NQ.v.0": "GLBX.MDP3:NQ"}
    first = _source(gateway, cache_dir=cache).fetch("GLBX.MDP3", wanted, START, END)
    (kept,) = _cached_files(cache)
    kept.write_bytes(damage(kept.read_bytes()))
    source = _source(gateway, cache_dir=cache)
    with caplog.at_level(logging.WARNING, logger="market_backfill.sources.databento_api"):
        again = source.fetch("GLBX.MDP3", wanted, START, END)
    assert "the cached response cannot be read" in caplog.text
    assert (source.requests, len(gateway.state.data_requests())) == (1, 2)
    pd.testing.assert_frame_equal(pd.DataFrame(again), pd.DataFrame(first))
    assert _cached_files(cache) == [kept]  # the new response is kept in its place
    third = _source(gateway, cache_dir=cache)
    third.fetch("GLBX.MDP3", wanted, START, END)
    assert third.requests == 0


@pytest.mark.parametrize("cut_to", [0.5, 0.001], ids=["in_its_records", "in_its_header"])
@pytest.mark.parametrize("cached", [True, False], ids=["cached", "uncached"])
def test_a_response_damaged_as_it_arrives_is_requested_once_more(
    gateway, tmp_path, caplog, cut_to, cached
):
    """A response that cannot be read as it arrives (cut short: the client takes the
    length it was given) is not kept and not retried as a network error: it is asked for
    once more, and the bars are those of a whole response."""
    cache = tmp_path / "cache" if cached else None
    wanted = {"NQ.v.0": "GLBX.MDP3:NQ"}
    whole = _source(gateway).fetch("GLBX.MDP3", wanted, START, END)
    gateway.fail_with(Scripted(200, cut_to=cut_to))
    source = _source(gateway, cache_dir=cache)
    with caplog.at_level(logging.WARNING, logger="market_backfill.sources.databento_api"):
        got = source.fetch("GLBX.MDP3", wanted, START, END)
    assert "the response cannot be read" in caplog.text
    assert "requesting it again" in caplog.text
    assert (source.requests, source.retries, len(gateway.state.data_requests())) == (2, 0, 3)
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(whole))
    if cached:
        assert len(_cached_files(cache)) == 1
        assert not list(cache.glob("*.part"))


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "uncached"])
def test_two_responses_in_a_row_that_cannot_be_read_stop_the_run(gateway, tmp_path, cached):
    """Two unreadable answers in a row look like a client that cannot read Databento's
    format: every chunk would pay for a response only to fail, so the run stops (no
    Airflow retry), with nothing kept."""
    cache = tmp_path / "cache" if cached else None
    gateway.fail_with(Scripted(200, cut_to=0.5), Scripted(200, cut_to=0.001))
    source = _source(gateway, cache_dir=cache)
    with pytest.raises(PermanentSourceError, match="two responses in a row") as err:
        source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert err.value.run_wide
    assert "upgrade databento" in str(err.value)
    assert (source.requests, len(gateway.state.data_requests())) == (2, 2)
    if cached:
        assert (_cached_files(cache), list(cache.glob("*.part"))) == ([], [])


def test_a_damaged_response_another_process_has_replaced_is_left_alone(gateway, tmp_path):
    """The damaged copy is removed only if it is still the one that was read: a response
    another process put in its place meanwhile is left for the next read."""
    import shutil

    cache = tmp_path / "cache"
    source = _source(gateway, cache_dir=cache)
    source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    symbols = ["NQ.v.0"]
    kept = source._cached_range("GLBX.MDP3", symbols, START, END)  # the copy read
    replacement = tmp_path / "replacement"
    shutil.copy(kept.path, replacement)
    os.replace(replacement, kept.path)  # another process's new copy: another file
    source._discard(kept)
    assert kept.path.exists()
    source._discard(source._cached_range("GLBX.MDP3", symbols, START, END))
    assert not kept.path.exists()


def test_an_io_error_reading_a_kept_response_keeps_it(gateway, tmp_path, monkeypatch):
    """An error of this host while reading (an I/O error, no memory) says nothing of the
    bytes: the kept response is not removed nor bought again; the attempt fails for a
    retry to read it. (The error is injected into the decompression: no disk here fails a
    read on demand.)"""
    import errno

    from market_backfill.sources import dbn

    cache = tmp_path / "cache"
    wanted = {"NQ.v.0": "GLBX.MDP3:NQ"}
    _source(gateway, cache_dir=cache).fetch("GLBX.MDP3", wanted, START, END)
    (kept,) = _cached_files(cache)

    def failing(self, wanted_bytes):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with monkeypatch.context() as patch:
        patch.setattr(dbn._ZstdFrames, "_more", failing)
        source = _source(gateway, cache_dir=cache)
        with pytest.raises(SourceError, match="Input/output error") as err:
            source.fetch("GLBX.MDP3", wanted, START, END)
    assert not isinstance(err.value, PermanentSourceError)
    assert (source.requests, len(gateway.state.data_requests()), _cached_files(cache)) == (
        0,
        1,
        [kept],
    )
    assert bar_count(_source(gateway, cache_dir=cache).fetch("GLBX.MDP3", wanted, START, END))


def _failing_fsync(monkeypatch, fails):
    """``os.fsync`` failing with ``fails(path)``'s errno (None: the real flush) for the
    file or folder its descriptor is open on."""
    real = os.fsync

    def fsync(fd):
        code = fails(Path(os.readlink(f"/proc/self/fd/{fd}")))
        if code is not None:
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_response_that_cannot_be_flushed_to_disk_stops_the_run(
    gateway, tmp_path, monkeypatch, what
):
    """The response's flush failing (an I/O error; the file's before its rename, or the
    folder's after it) is a host that cannot keep what it paid for: the run stops like a
    failed write, with nothing kept, instead of each retry paying again. (The error is
    injected into ``os.fsync``: no filesystem here fails a flush on demand.)"""
    import errno

    def fails(path):
        return errno.EIO if (path.is_file() if what == "file" else path.is_dir()) else None

    _failing_fsync(monkeypatch, fails)
    cache = tmp_path / "cache"
    source = _source(gateway, cache_dir=cache)
    with pytest.raises(PermanentSourceError, match="could not be written") as err:
        source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)
    assert err.value.run_wide
    assert "Input/output error" in str(err.value)
    assert len(gateway.state.data_requests()) == 1
    assert (_cached_files(cache), list(cache.glob("*.part"))) == ([], [])


def test_a_folder_its_filesystem_cannot_flush_keeps_the_response(gateway, tmp_path, monkeypatch):
    """Some network and FUSE filesystems refuse to flush a folder (EINVAL): the response,
    flushed and renamed, is kept and read."""
    import errno

    _failing_fsync(monkeypatch, lambda path: errno.EINVAL if path.is_dir() else None)
    cache = tmp_path / "cache"
    source = _source(gateway, cache_dir=cache)
    assert bar_count(source.fetch("GLBX.MDP3", {"NQ.v.0": "GLBX.MDP3:NQ"}, START, END)) > 0
    assert len(_cached_files(cache)) == 1


def test_metadata_the_published_end_and_quotes(gateway):
    gateway.state.published_end = "2025-03-10T00:00:00+00:00"
    source = _source(gateway)
    assert source.published_end("GLBX.MDP3") == datetime(2025, 3, 10, tzinfo=UTC)
    quote = source.quote("GLBX.MDP3", ["NQ.v.0"], START, datetime(2025, 3, 1, tzinfo=UTC))
    bars = gateway.state.bars
    n = int(
        (
            (bars.symbol == "NQ.v.0") & (bars.ts >= to_ns(START)) & (bars.ts < to_ns("2025-03-01"))
        ).sum()
    )
    assert quote.billable_bytes == 56 * n
    assert quote.cost_usd == pytest.approx(56 * n / 1e9 * gateway.state.usd_per_gb)
    assert gateway.state.data_requests() == []  # metadata is free


def test_two_worker_processes_loading_sibling_chunks_make_one_request(gateway, data_dir):
    """Two processes (as two Celery workers of a host) load NQ and ES of one month at the
    same moment through the shared data directory: one request, both get their bars."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from datetime import datetime, UTC\n"
        "from market_backfill.sources.cache import response_cache_dir\n"
        "from market_backfill.sources.databento_api import DatabentoSource\n"
        "key, url, mine = sys.argv[1:4]\n"
        "source = DatabentoSource(key, url, cache_dir=response_cache_dir(),\n"
        "    companions={'GLBX.MDP3': ['NQ.v.0', 'ES.v.0']})\n"
        "bars = source.fetch('GLBX.MDP3', {mine: 'X'}, datetime(2025, 2, 1, tzinfo=UTC),\n"
        "    datetime(2025, 3, 1, tzinfo=UTC))\n"
        "print(json.dumps([len(bars['ts']), source.requests]))\n"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, API_KEY, gateway.url, mine],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        for mine in ("NQ.v.0", "ES.v.0")
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    assert len(gateway.state.data_requests()) == 1
    assert sorted(requests for _, requests in results) == [0, 1]
    assert all(bars > 10_000 for bars, _ in results)
    assert list((data_dir / "databento" / "responses").glob("*.dbn.zst"))
