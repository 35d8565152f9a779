"""DBN files on disk (Databento batch downloads, ``.dbn`` or ``.dbn.zst``) as a bar source."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from market_backfill.sources import PermanentSourceError
from market_backfill.sources.dbn import (
    Bars,
    DbnDataError,
    concat_bars,
    files_for,
    may_hold,
    open_store,
    peek_metadata,
    read_bars,
)
from market_backfill.timeutil import to_ns

log = logging.getLogger(__name__)


class DbnFileSource:
    """Read bars from files matching ``patterns``; each file is streamed, filtered to the
    wanted symbols and range. A file whose header names another dataset or a span outside
    the range is not opened (a chunk of a 15-year glob of monthly files opens one file,
    not 180)."""

    name = "dbn_file"

    def __init__(self, patterns: str | Sequence[str]) -> None:
        self.patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if not self.patterns or not all(p.strip() for p in self.patterns):
            raise PermanentSourceError("source 'dbn_file' needs param 'dbn_path' (a file or glob)")

    def fetch(self, dataset: str, wanted: dict[str, str], start: datetime, end: datetime) -> Bars:
        files = files_for(self.patterns)
        if not files:
            raise PermanentSourceError(f"dbn_path {self.patterns} matches no file")
        start_ns, end_ns = to_ns(start), to_ns(end)
        frames, opened = [], 0
        for path in files:
            header = peek_metadata(path)
            if header is not None and not may_hold(header, dataset, start_ns, end_ns):
                continue  # another dataset or span: the file is not opened
            try:
                store = open_store(path, str(path))
            except DbnDataError as exc:
                raise PermanentSourceError(str(exc)) from exc
            opened += 1
            if store.metadata.dataset != dataset:
                log.info(
                    "%s: dataset %s, not %s; skipped", path.name, store.metadata.dataset, dataset
                )
                continue
            try:
                frames.append(read_bars(store, wanted, start_ns, end_ns, path.name))
            except DbnDataError as exc:
                raise PermanentSourceError(str(exc)) from exc
        log.info("%d of %d files cover %s..%s of %s", opened, len(files), start, end, dataset)
        return concat_bars(frames)
