"""DBN files on disk (Databento batch downloads, ``.dbn`` or ``.dbn.zst``) as a bar source."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from market_backfill.sources import PermanentSourceError
from market_backfill.sources.dbn import DbnDataError, empty_bars, files_for, open_store, read_bars
from market_backfill.timeutil import to_ns

log = logging.getLogger(__name__)


class DbnFileSource:
    """Read bars from files matching ``patterns``; each file is streamed, filtered to the
    wanted symbols and range, and files whose metadata lies outside the range are skipped."""

    name = "dbn_file"

    def __init__(self, patterns: str | Sequence[str]) -> None:
        self.patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if not self.patterns or not all(p.strip() for p in self.patterns):
            raise PermanentSourceError("source 'dbn_file' needs param 'dbn_path' (a file or glob)")

    def fetch(
        self, dataset: str, wanted: dict[str, str], start: datetime, end: datetime
    ) -> pd.DataFrame:
        files = files_for(self.patterns)
        if not files:
            raise PermanentSourceError(f"dbn_path {self.patterns} matches no file")
        frames = []
        for path in files:
            try:
                store = open_store(path, str(path))
            except DbnDataError as exc:
                raise PermanentSourceError(str(exc)) from exc
            if store.metadata.dataset != dataset:
                log.info(
                    "%s: dataset %s, not %s; skipped", path.name, store.metadata.dataset, dataset
                )
                continue
            try:
                frames.append(read_bars(store, wanted, to_ns(start), to_ns(end), path.name))
            except DbnDataError as exc:
                raise PermanentSourceError(str(exc)) from exc
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else empty_bars()
