"""Where Databento responses are kept: one data directory shared by every worker of a host.

``MARKET_BACKFILL_DATA_DIR`` (default ``market_backfill_data`` in Airflow's home) holds the
response cache, keyed by request (dataset, symbols, window): a response is written once,
atomically and durably (a temporary file flushed to disk, then renamed into place:
:func:`durable_replace`) under a file lock that holds across processes, so sibling chunks
on other workers, retries and later runs read it instead of paying again. Gap repairs
keep theirs per run (:func:`repair_cache_dir`). Several hosts share it only if it is on
shared storage.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

DATA_DIR_ENV = "MARKET_BACKFILL_DATA_DIR"


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``MARKET_BACKFILL_DATA_DIR``, else ``market_backfill_data`` in Airflow's home
    (``$AIRFLOW_HOME``, which Airflow itself defaults to ``~/airflow``)."""
    configured = environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    home = environ.get("AIRFLOW_HOME") or "~/airflow"
    return Path(home).expanduser() / "market_backfill_data"


@contextmanager
def file_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold the exclusive lock ``<folder>/<name>.lock`` (``flock``: across the processes of
    a host, released when the holder ends, even by a crash) meanwhile; ``folder`` is made
    if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def durable_replace(partial: Path, target: Path) -> None:
    """Put the completely written file ``partial`` in place as ``target``, so that after a
    crash of the host ``target`` is either absent or whole: the file's data reach the disk
    before the rename (``fsync``), and the rename reaches it before this returns (``fsync``
    of the folder, where the filesystem can flush one). Without the first, a host that
    crashes soon after the rename can leave a renamed file with its data missing: a cached
    response that reads as damaged. A failed flush is raised; when it is the folder's, the
    target is removed first (not known to last, so not kept); the file's leaves
    ``partial`` to the caller."""
    with open(partial, "rb") as handle:  # Linux flushes a file through any descriptor
        os.fsync(handle.fileno())
    os.replace(partial, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    except OSError as exc:
        if exc.errno not in _NO_FOLDER_FSYNC:
            target.unlink(missing_ok=True)  # not known to last: not kept
            raise
    finally:
        os.close(folder)


_NO_FOLDER_FSYNC = frozenset((errno.EINVAL, errno.ENOTSUP, errno.EBADF))
"""What a filesystem that cannot flush a folder answers (some network and FUSE mounts):
the rename is then as durable as that filesystem makes it."""


def response_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of cached Databento responses inside the data directory."""
    return data_dir(environ) / "databento" / "responses"


REPAIR_CACHE_DAYS = 7
"""How long a run's repair responses are kept (a cleared repair task of the run reads them)."""


def _repairs_root(environ: Mapping[str, str]) -> Path:
    """The folder holding each run's repair responses (:func:`repair_cache_dir`)."""
    return data_dir(environ) / "databento" / "repairs"


def repair_cache_dir(run_id: str, environ: Mapping[str, str] = os.environ) -> Path:
    """The cached Databento responses of one ``gap_detection`` run's repairs: a repair
    retried inside its task, by Airflow or cleared by hand reads the response the run
    paid for; a later run asks Databento afresh (a gap left open may be published since,
    and ``retry_unfillable`` means asking again)."""
    return _repairs_root(environ) / re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


def prune_repair_caches(
    environ: Mapping[str, str] = os.environ, max_age_days: float = REPAIR_CACHE_DAYS
) -> int:
    """Delete the repair responses of runs older than ``max_age_days`` (by the folder's
    last change); return how many runs' folders went."""
    root = _repairs_root(environ)
    if not root.is_dir():
        return 0
    cutoff = time.time() - max_age_days * 86_400
    old = [p for p in root.iterdir() if p.is_dir() and p.stat().st_mtime < cutoff]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return len(old)
