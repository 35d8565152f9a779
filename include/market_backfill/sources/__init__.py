"""Bar sources: the Databento historical API and DBN files on disk.

Both return bar frames (numpy columns, see :mod:`market_backfill.sources.dbn`) for a set
of wanted continuous symbols over ``[start, end)``. Errors a retry cannot fix raise
:class:`PermanentSourceError`, so the task fails at once instead of retrying for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from market_backfill.sources.dbn import Bars

log = logging.getLogger(__name__)


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

    def fetch(self, dataset: str, wanted: dict[str, str], start: datetime, end: datetime) -> Bars:
        """Bars of ``wanted`` (continuous symbol -> registry symbol) in ``[start, end)``."""
        ...


Credentials = Callable[[], tuple[str, str | None]]
"""Returns the Databento (key, gateway or None); called only when the API is the source."""


def make_source(
    source: str,
    dbn_path: str | None,
    *,
    credentials: Credentials,
    cache_dir: Path | None = None,
    companions: Mapping[str, Sequence[str]] | None = None,
) -> BarSource:
    """The bar source a run's params ask for (``source`` is one of :data:`SOURCES`)."""
    if source == "dbn_file":
        from market_backfill.sources.dbn_file import DbnFileSource

        return DbnFileSource(dbn_path or "")
    if source == "databento":
        from market_backfill.sources.databento_api import DatabentoSource

        key, gateway = credentials()
        if gateway:
            log.info("Databento gateway from connection: %s", gateway)
        return DatabentoSource(key, gateway, cache_dir=cache_dir, companions=companions)
    raise PermanentSourceError(f"unknown source {source!r}")
