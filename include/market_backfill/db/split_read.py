"""One range read as two, over two connections at once.

A month of 1-minute bars costs the server far more than the client (each row's prices
scaled and sent: see :func:`market_backfill.db.copy_binary.read_ts_rows`); read as two
halves on two connections, two server processes share it, on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from psycopg.errors import LockNotAvailable

from market_backfill.db.connection import Connection, Connector, close_quietly, release
from market_backfill.names import MINUTE_NS

RangeRead = Callable[[Connection, int, int], np.ndarray]
"""``read(conn, lo_ns, hi_ns)``: the rows with first column in ``[lo, hi)``, sorted by it."""

SPLIT_FROM_NS = 7 * 24 * 60 * MINUTE_NS
"""Ranges shorter than a week are read on one connection: a second connection's start
costs more than its half of a short read saves."""

HELPER_LOCK_TIMEOUT = "200ms"
"""How long a helper connection's read may wait for a table lock. The caller's
transaction may hold a lock on the table while its thread waits for the helper; a lock
request queued in between (an ``ALTER TABLE``: a migration's) would make the helper wait
for it, it for the caller's transaction, and the caller for the helper: a deadlock no
server can see. After this wait the helper gives up and the caller reads its part."""


def helper_read(
    helper: Connection, read: Callable[[Connection, Any, Any], np.ndarray], lo: Any, hi: Any
) -> np.ndarray | None:
    """``read`` on ``helper`` in a transaction of its own that waits at most
    :data:`HELPER_LOCK_TIMEOUT` for a lock (``SET LOCAL``) and is rolled back as soon as
    the read ends, its locks with it: the caller's reads never queue behind a request
    that waits for the helper. None when the wait timed out."""
    try:
        helper.execute(f"SET LOCAL lock_timeout = '{HELPER_LOCK_TIMEOUT}'")
        return read(helper, lo, hi)
    except LockNotAvailable:
        return None
    finally:
        helper.rollback()


def read_split(
    conn: Connection,
    connect: Connector | None,
    read: RangeRead,
    lo_ns: int,
    hi_ns: int,
) -> np.ndarray:
    """``read`` over ``[lo, hi)`` as one sorted matrix. With ``connect`` and a range of at
    least :data:`SPLIT_FROM_NS`, the first half (cut at a whole minute) is read by a
    thread on a connection from ``connect`` while this thread reads the second on
    ``conn``; the helper connection is given back after (:func:`release`), or closed when
    a read failed. The helper waits at most :data:`HELPER_LOCK_TIMEOUT` for a lock, then
    this thread reads the first half too (no deadlock with a lock request queued behind
    the caller's transaction). A failure is raised once both reads ended: this thread's
    own (the helper's, if any, then dropped), else the helper's; a lost connection as
    such, so the caller's transaction retries the whole read.

    Transaction behaviour: the second half is read in the caller's transaction on
    ``conn``; the first in a transaction of its own (read committed, rolled back when the
    helper is given back). Each half sees the rows committed before its query began, as
    two reads on ``conn`` would."""
    if connect is None or hi_ns - lo_ns < SPLIT_FROM_NS:
        return read(conn, lo_ns, hi_ns)
    mid = lo_ns + (hi_ns - lo_ns) // 2 // MINUTE_NS * MINUTE_NS
    helper = connect()
    ended = False
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="range reader") as pool:
            first = pool.submit(helper_read, helper, read, lo_ns, mid)
            second = read(conn, mid, hi_ns)  # on a failure the pool's exit waits for the first
            head = first.result()
        ended = True
        if head is None:  # the helper met a lock: read here, in the caller's transaction
            head = read(conn, lo_ns, mid)
    finally:
        if ended:
            release(connect, helper)
        else:  # a read failed or was interrupted: the helper's state is not known
            close_quietly(helper)
    return np.concatenate([head, second])
