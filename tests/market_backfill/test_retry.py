from __future__ import annotations

import pytest

from market_backfill.retry import Backoff


def test_delays_double_up_to_the_cap():
    backoff = Backoff(attempts=6, base_s=1.5, max_s=10.0)
    assert [backoff.delay(k) for k in range(1, 6)] == [1.5, 3.0, 6.0, 10.0, 10.0]


def test_wait_sleeps_through_the_module_clock(sleeps):
    backoff = Backoff(base_s=2.0)
    assert backoff.wait(2) == 4.0
    assert backoff.wait(1, delay_s=0.25) == 0.25  # e.g. Retry-After
    assert sleeps == [4.0, 0.25]


def test_at_least_one_attempt():
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        Backoff(attempts=0)
