"""Bar sources: the Databento historical API and DBN files on disk.

Both return bar frames (see :mod:`market_backfill.dbn`) for a set of wanted continuous
symbols over ``[start, end)``. Errors a retry cannot fix raise
:class:`PermanentSourceError`, so the task fails at once instead of retrying for nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd


class SourceError(RuntimeError):
    """The source could not deliver bars."""


class PermanentSourceError(SourceError):
    """Retrying will not help (bad key, no entitlement, invalid request, unusable file).

    ``run_wide`` marks errors no other chunk of the run can escape either (a rejected key,
    no entitlement), so the run stops requesting instead of failing chunk by chunk."""

    def __init__(self, message: str, *, run_wide: bool = False) -> None:
        super().__init__(message)
        self.run_wide = run_wide


class BarSource(Protocol):
    name: str

    def fetch(
        self, dataset: str, wanted: dict[str, str], start: datetime, end: datetime
    ) -> pd.DataFrame:
        """Bars of ``wanted`` (continuous symbol -> registry symbol) in ``[start, end)``."""
        ...
