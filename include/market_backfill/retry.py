"""Exponential backoff, shared by every retry loop of the library (database batches and
transactions, Databento requests, gap repairs).

A :class:`Backoff` says how many attempts and how long to wait before each retry; it
sleeps through :func:`sleep`, looked up when it waits, so a test can replace the clock
once (``monkeypatch.setattr(retry, "sleep", ...)``) for every loop, DAG runs included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

sleep = time.sleep


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all; the wait before retry ``k`` (1-based) is
    ``base_s * 2 ** (k - 1)``, at most ``max_s``."""

    attempts: int = 3
    base_s: float = 1.0
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        return min(self.max_s, self.base_s * 2 ** (failed_attempt - 1))

    def wait(self, failed_attempt: int, delay_s: float | None = None) -> float:
        """Sleep before the next attempt (``delay_s`` overrides, e.g. a ``Retry-After``);
        return the seconds waited."""
        seconds = self.delay(failed_attempt) if delay_s is None else delay_s
        sleep(seconds)
        return seconds
