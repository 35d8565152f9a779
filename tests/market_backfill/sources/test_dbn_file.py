from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.sources import PermanentSourceError, dbn, dbn_file
from market_backfill.sources.dbn import bar_count
from market_backfill.sources.dbn_file import DbnFileSource
from market_backfill_devtools.dbn_writer import write_bars
from market_backfill_devtools.sample import bar_frame
from tests.support.dbn_files import trades_header

WANTED = {"NQ.v.0": "GLBX.MDP3:NQ"}


def _write(path, start, n=60, dataset="GLBX.MDP3"):
    bars = bar_frame(n, start=start)
    bars["symbol"] = "NQ.v.0"
    return write_bars(path, bars, dataset=dataset, instruments={"NQ.v.0": 1})


def test_glob_over_daily_files_filters_to_the_range(tmp_path):
    for day in range(1, 6):
        _write(tmp_path / f"glbx-2025120{day}.ohlcv-1m.dbn.zst", f"2025-12-0{day}T10:00Z")
    _write(tmp_path / "other.dbn", "2025-12-02T10:00Z", dataset="XNAS.ITCH")
    source = DbnFileSource(str(tmp_path / "*.dbn*"))
    bars = source.fetch(
        "GLBX.MDP3", WANTED, datetime(2025, 12, 2, tzinfo=UTC), datetime(2025, 12, 4, tzinfo=UTC)
    )
    assert bar_count(bars) == 120


def test_no_matching_file_is_permanent(tmp_path):
    with pytest.raises(PermanentSourceError, match="matches no file"):
        DbnFileSource(str(tmp_path / "*.dbn")).fetch(
            "GLBX.MDP3", WANTED, datetime.now(UTC), datetime.now(UTC)
        )


def test_unreadable_file_is_permanent_and_named(tmp_path):
    (tmp_path / "bad.dbn").write_bytes(b"\x00" * 64)
    with pytest.raises(PermanentSourceError, match="bad.dbn"):
        DbnFileSource(str(tmp_path / "bad.dbn")).fetch(
            "GLBX.MDP3", WANTED, datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        )


def test_path_is_required():
    with pytest.raises(PermanentSourceError, match="dbn_path"):
        DbnFileSource("")


def test_only_the_files_whose_header_covers_the_range_are_opened(tmp_path, monkeypatch):
    for month in range(1, 13):
        _write(tmp_path / f"glbx-2025-{month:02d}.dbn.zst", f"2025-{month:02d}-02T10:00Z")
    _write(tmp_path / "other-2025-06.dbn", "2025-06-02T10:00Z", dataset="XNAS.ITCH")
    opened = []

    def spy(path, name):
        opened.append(path.name)
        return dbn.open_store(path, name)

    monkeypatch.setattr(dbn_file, "open_store", spy)
    bars = DbnFileSource(str(tmp_path / "*.dbn*")).fetch(
        "GLBX.MDP3", WANTED, datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    )
    assert opened == ["glbx-2025-06.dbn.zst"]
    assert bar_count(bars) == 60


def test_a_file_of_another_schema_in_the_glob_is_refused_even_outside_the_range(tmp_path):
    _write(tmp_path / "glbx-2025-06.dbn", "2025-06-02T10:00Z")
    # another dataset and span too: the header alone cannot rule the file out
    (tmp_path / "trades.dbn").write_bytes(trades_header("XNAS.ITCH"))
    with pytest.raises(PermanentSourceError, match="trades.dbn: DBN schema is 'trades'"):
        DbnFileSource(str(tmp_path / "*.dbn")).fetch(
            "GLBX.MDP3", WANTED, datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
        )
