"""The sessions cache: each calendar year's trading periods, computed once per host.

A gap scan, a repair's check and the console need a calendar's trading periods; computing
them needs pandas and ``pandas_market_calendars`` (about a second to import and build in
a fresh task process). The periods of one calendar year (those opening in it, as int64
ns [open, close) pairs) are kept as a ``.npy`` file under the data directory
(``MARKET_BACKFILL_DATA_DIR``, see :mod:`market_backfill.sources.cache`):
``calendars/<calendar>-<key>/<year>.npy``. The key is a digest of what the periods depend
on (the calendar's name, the installed ``pandas_market_calendars`` and
``exchange_calendars`` versions, the calendar's dated session history and this format's
version), so an upgrade that changes a holiday, or an edited session history, is never
served stale periods: it gets a new folder.

Files are written atomically (a temporary file renamed into place), so concurrent
workers at worst compute the same year twice. A file that cannot be read is computed
again and rewritten; a data directory that cannot be written leaves the periods
uncached (computed each time, as without the cache).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from market_backfill.sources.cache import data_dir

log = logging.getLogger(__name__)

FORMAT = 1
"""Bumped whenever the meaning of a cached file changes."""
_DEPENDS_ON = ("pandas_market_calendars", "exchange_calendars")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


@cache
def cache_key(calendar: str, history: str) -> str:
    """The digest naming ``calendar``'s folder: its name, the calendar libraries'
    versions, its session ``history`` (a text form of its eras) and :data:`FORMAT`."""
    parts = [str(FORMAT), calendar, history, *(f"{d}={_version(d)}" for d in _DEPENDS_ON)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def year_file(calendar: str, history: str, year: int) -> Path:
    """Where ``calendar``'s periods of ``year`` are kept."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", calendar)
    return data_dir() / "calendars" / f"{slug}-{cache_key(calendar, history)}" / f"{year}.npy"


def load_year(calendar: str, history: str, year: int) -> np.ndarray | None:
    """``calendar``'s periods of ``year`` from its file, or None when there is none (or
    it cannot be read: it is then computed and written again)."""
    path = year_file(calendar, history, year)
    try:
        periods = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        log.warning("%s: unreadable (%s); computing it again", path, type(exc).__name__)
        return None
    if periods.dtype != np.int64 or periods.ndim != 2 or periods.shape[1] != 2:
        log.warning("%s: not a sessions file; computing it again", path)
        return None
    return periods


def store_year(calendar: str, history: str, year: int, periods: np.ndarray) -> None:
    """Keep ``calendar``'s periods of ``year``, written atomically; a folder that cannot
    be written is logged and left alone (the periods stay uncached)."""
    path = year_file(calendar, history, year)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.save(out, periods, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.info("sessions cache not written (%s: %s)", type(exc).__name__, exc)
