"""A ``[core] hostname_callable`` for several workers on one machine: the name in
``MARKET_BACKFILL_WORKER_NAME`` (set per worker by the test harness), else the host's.
A task instance's ``hostname`` then says which worker ran it."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("MARKET_BACKFILL_WORKER_NAME") or socket.getfqdn()
