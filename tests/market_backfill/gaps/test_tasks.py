from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from market_backfill.gaps.tasks import announce_repairs


def test_repairs_that_wrote_bars_are_announced_others_skip():
    assert announce_repairs([{"rows_written": 12}, {"rows_written": 0}, None]) == 12
    for nothing in ([], None, [{"rows_written": 0}]):
        with pytest.raises(AirflowSkipException, match="wrote no bars"):
            announce_repairs(nothing)
