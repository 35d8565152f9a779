from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market_backfill.sources import dbn
from market_backfill.sources.dbn import (
    DbnDataError,
    bar_count,
    may_hold,
    open_store,
    peek_metadata,
    read_bars,
)
from market_backfill.timeutil import to_ns
from market_backfill_devtools.dbn_writer import encode_bars, quarterly_rolls, write_bars
from market_backfill_devtools.sample import bar_frame
from tests.support.dbn_files import trades_header

WANTED = {"NQ.v.0": "GLBX.MDP3:NQ"}


def _continuous(n: int, start: str = "2025-03-08T00:00Z"):
    bars = bar_frame(n, start=start)
    bars["symbol"] = "NQ.v.0"
    return bars


def _remade_metadata(data: bytes, **changes):
    """The metadata of single-symbol DBN ``data`` made again with ``changes`` (no symbol
    mappings), and where the records of ``data`` start."""
    from databento_dbn import Metadata

    offset = 8 + int.from_bytes(data[4:8], "little")
    meta = Metadata.decode(data[:offset])
    fields = ("dataset", "start", "end", "stype_in", "stype_out", "schema")
    kept = {name: getattr(meta, name) for name in fields}
    return Metadata(**kept, symbols=list(meta.symbols), **changes), offset


def test_quarterly_rolls_change_instrument_in_quarter_months():
    ivs = quarterly_rolls(date(2025, 1, 1), date(2025, 7, 1), 100)
    assert ivs == [
        (date(2025, 1, 1), date(2025, 3, 10), 100),
        (date(2025, 3, 10), date(2025, 6, 10), 101),
        (date(2025, 6, 10), date(2025, 7, 2), 102),
    ]


@pytest.mark.parametrize("suffix", [".dbn", ".dbn.zst"])
def test_round_trip_through_a_file_across_a_roll(tmp_path: Path, suffix):
    bars = _continuous(4 * 1440)  # 2025-03-08 .. 03-12: crosses the 03-10 roll
    rolls = quarterly_rolls(date(2025, 2, 20), date(2025, 3, 12), 7)
    path = write_bars(
        tmp_path / f"x{suffix}", bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": rolls}
    )
    store = open_store(path, path.name)
    got = pd.DataFrame(
        read_bars(store, WANTED, to_ns("2025-03-09T12:00Z"), to_ns("2025-03-11T00:00Z"))
    )
    want = bars[(bars.ts >= to_ns("2025-03-09T12:00Z")) & (bars.ts < to_ns("2025-03-11T00:00Z"))]
    assert len(got) == len(want) == 36 * 60
    assert set(got.symbol) == {"GLBX.MDP3:NQ"}
    assert set(got.instrument_id) == {7, 8}
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())


def test_a_read_stops_after_the_block_that_reaches_past_its_range(tmp_path: Path, monkeypatch):
    """Time-ordered records (as Databento writes them): the first day of a ten-day file is
    read from the first blocks only; the rest of the file is never decoded."""
    bars = _continuous(10 * 1440)
    path = write_bars(tmp_path / "x.dbn.zst", bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    monkeypatch.setattr(dbn, "_READ_BLOCK", 1000)
    decoded = []
    blocks = dbn._blocks

    def counted(store, name):
        for block in blocks(store, name):
            decoded.append(len(block))
            yield block

    monkeypatch.setattr(dbn, "_blocks", counted)
    first_day = read_bars(open_store(path, path.name), WANTED, 0, to_ns("2025-03-09T00:00Z"))
    np.testing.assert_array_equal(first_day["ts"], bars.ts.to_numpy()[:1440])
    assert decoded == [1000, 1000]  # the day's 1,440 records: two blocks, not three
    whole = read_bars(open_store(path, path.name), WANTED, 0, to_ns("2026-01-01"))
    assert bar_count(whole) == sum(decoded[2:]) == 10 * 1440


def test_other_symbols_and_ranges_give_nothing(tmp_path: Path):
    path = write_bars(
        tmp_path / "x.dbn", _continuous(10), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5}
    )
    store = open_store(path, "x")
    assert bar_count(read_bars(store, {"ES.v.0": "GLBX.MDP3:ES"}, 0, 2**62)) == 0
    assert bar_count(read_bars(store, WANTED, to_ns("2026-01-01"), to_ns("2026-02-01"))) == 0


def test_truncated_file_is_a_clear_error(tmp_path: Path):
    data = encode_bars(_continuous(100), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    path = tmp_path / "cut.dbn"
    path.write_bytes(data[:-20])
    with pytest.raises(DbnDataError, match="cut.dbn: the DBN file is truncated"):
        read_bars(open_store(path, "cut.dbn"), WANTED, 0, 2**62, "cut.dbn")


def test_garbage_is_not_a_dbn_file(tmp_path: Path):
    path = tmp_path / "junk.dbn"
    path.write_bytes(b"this is not DBN at all" * 10)
    with pytest.raises(DbnDataError, match="junk.dbn: not a readable DBN file"):
        open_store(path, "junk.dbn")


def test_another_schema_is_refused(tmp_path: Path):
    path = tmp_path / "trades.dbn"
    path.write_bytes(trades_header())
    with pytest.raises(DbnDataError, match="schema is 'trades', but ohlcv-1m"):
        open_store(path, "trades.dbn")


@pytest.mark.parametrize("suffix", [".dbn", ".dbn.zst"])
def test_a_header_peek_reads_the_metadata_a_store_reads(tmp_path: Path, suffix):
    path = write_bars(
        tmp_path / f"x{suffix}", _continuous(90), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5}
    )
    peeked, stored = peek_metadata(path), open_store(path, path.name).metadata
    assert (peeked.dataset, peeked.start, peeked.end, list(peeked.symbols)) == (
        stored.dataset,
        stored.start,
        stored.end,
        list(stored.symbols),
    )
    assert may_hold(peeked, "GLBX.MDP3", stored.start, stored.start + 1)
    assert not may_hold(peeked, "XNAS.ITCH", stored.start, stored.start + 1)
    assert not may_hold(peeked, "GLBX.MDP3", stored.end, stored.end + 10**12)
    assert not may_hold(peeked, "GLBX.MDP3", stored.start - 10**12, stored.start)


def test_a_header_peek_of_an_unreadable_file_is_none(tmp_path: Path):
    data = encode_bars(_continuous(10), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    cases = {"junk.dbn": b"this is not DBN at all" * 10, "cut.dbn": data[:20], "empty.dbn": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert peek_metadata(tmp_path / name) is None, name


@pytest.mark.parametrize("suffix", [".dbn", ".dbn.zst"])
def test_records_and_metadata_decode_as_the_databento_client_decodes_them(tmp_path, suffix):
    """The reader decodes records with numpy alone: field by field what the official
    client's ``DBNStore.to_ndarray`` gives for the same file (a roll: two instruments)."""
    from databento import DBNStore

    bars = _continuous(4 * 1440)  # 2025-03-08 .. 03-12: crosses the 03-10 roll
    rolls = quarterly_rolls(date(2025, 2, 20), date(2025, 3, 12), 7)
    path = write_bars(
        tmp_path / f"x{suffix}", bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": rolls}
    )
    store, client = open_store(path, path.name), DBNStore.from_file(path)
    ours = np.concatenate(list(store.blocks(1000)))
    theirs = client.to_ndarray()
    assert ours.dtype.names == theirs.dtype.names
    assert len(ours) == len(theirs) == 4 * 1440
    for field in theirs.dtype.names:
        np.testing.assert_array_equal(ours[field], theirs[field], err_msg=field)
    assert set(ours["instrument_id"]) == {7, 8}
    assert (store.metadata.dataset, store.metadata.mappings) == (
        client.metadata.dataset,
        client.metadata.mappings,
    )


def test_a_send_time_after_each_record_is_skipped(tmp_path):
    """With ``ts_out`` in the metadata every record carries 8 more bytes (a gateway's
    send time): the bars read are the same."""
    bars = _continuous(100)
    plain = encode_bars(bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    stamped, offset = _remade_metadata(plain, ts_out=True)
    records = np.frombuffer(plain[offset:], dtype=np.dtype([("r", "V56")]))
    with_out = np.zeros(len(records), dtype=[("r", "V56"), ("ts_out", "<u8")])
    with_out["r"] = records["r"]
    with_out["ts_out"] = np.arange(len(records)) + 10**18
    path = tmp_path / "out.dbn"
    path.write_bytes(bytes(stamped) + with_out.tobytes())
    got = read_bars(open_store(path, path.name), WANTED, 0, 2**62)
    np.testing.assert_array_equal(got["ts"], bars.ts.to_numpy())
    np.testing.assert_array_equal(got["close"], bars.close.to_numpy())


def test_a_zstd_file_of_several_frames_is_read_to_its_end(tmp_path):
    """A compressed file may hold several zstd frames (one per write): every frame counts."""
    import zstandard

    bars = _continuous(3000)
    data = encode_bars(bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    cut = len(data) - 56 * 1000  # the last thousand records in a frame of their own
    compressor = zstandard.ZstdCompressor()
    path = tmp_path / "frames.dbn.zst"
    path.write_bytes(compressor.compress(data[:cut]) + compressor.compress(data[cut:]))
    got = read_bars(open_store(path, path.name), WANTED, 0, 2**62)
    np.testing.assert_array_equal(got["ts"], bars.ts.to_numpy())


def test_a_compressed_file_cut_anywhere_is_an_error_never_a_shorter_read(tmp_path):
    """zstd data cut short can end on a whole record of what it decompresses to: a reader
    that stops quietly at the end of the input reads such a file as a whole, shorter
    one, and the bars after the cut are lost without a word. Every cut inside a frame is
    refused (here at each 1% of a file of about 17,000 bars, in many blocks of
    compressed data); the whole file reads every bar."""
    bars = _continuous(17_000)
    whole = write_bars(
        tmp_path / "whole.dbn.zst", bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 5}
    )
    data = whole.read_bytes()
    got = read_bars(open_store(whole, whole.name), WANTED, 0, 2**62)
    np.testing.assert_array_equal(got["ts"], bars.ts.to_numpy())
    cut = tmp_path / "cut.dbn.zst"
    read, refused = [], []
    for percent in range(1, 100):
        cut.write_bytes(data[: len(data) * percent // 100])
        try:
            got = read_bars(open_store(cut, cut.name), WANTED, 0, 2**62)
            read.append((percent, len(got["ts"])))
        except DbnDataError as exc:
            refused.append(str(exc))
    assert read == []
    assert all("cut.dbn.zst" in message for message in refused)


def test_a_file_of_several_frames_cut_inside_its_last_frame_is_an_error(tmp_path):
    import zstandard

    data = encode_bars(_continuous(3000), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    middle = len(data) - 56 * 1000
    compressor = zstandard.ZstdCompressor()
    first, last = compressor.compress(data[:middle]), compressor.compress(data[middle:])
    path = tmp_path / "frames.dbn.zst"
    path.write_bytes(first + last[: len(last) // 2])
    with pytest.raises(DbnDataError, match="cut short"):
        read_bars(open_store(path, path.name), WANTED, 0, 2**62)


def test_a_record_of_another_type_is_a_clear_error(tmp_path):
    data = bytearray(encode_bars(_continuous(10), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5}))
    data[-56 + 1] = 32  # the last record's rtype: ohlcv-1s under ohlcv-1m metadata
    path = tmp_path / "mixed.dbn"
    path.write_bytes(bytes(data))
    with pytest.raises(DbnDataError, match="mixed.dbn: DBN records cannot be decoded"):
        read_bars(open_store(path, path.name), WANTED, 0, 2**62)


def test_undecodable_compressed_bytes_are_a_clear_error(tmp_path):
    import zstandard

    data = encode_bars(_continuous(2000), dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    packed = bytearray(zstandard.ZstdCompressor(level=1).compress(data))
    packed[len(packed) // 2 :] = b"\x00" * (len(packed) - len(packed) // 2)
    path = tmp_path / "broken.dbn.zst"
    path.write_bytes(bytes(packed))
    with pytest.raises(DbnDataError, match="broken.dbn.zst"):
        read_bars(open_store(path, path.name), WANTED, 0, 2**62)


def test_day_numbers_of_dates_datetimes_and_iso_strings():
    from datetime import datetime

    assert dbn.day_number(date(1970, 1, 2)) == 1
    assert dbn.day_number(datetime(2025, 3, 10, 23, 59)) == dbn.day_number("2025-03-10") == 20157


@pytest.mark.parametrize("version", [1, 2, 3])
def test_files_of_every_dbn_version_read_the_same_bars(version):
    """The ``ohlcv-1m`` record is one struct in DBN versions 1 to 3; only the metadata's
    layout differs, and ``databento_dbn`` decodes it."""
    bars = _continuous(100)
    data = encode_bars(bars, dataset="GLBX.MDP3", instruments={"NQ.v.0": 5})
    versioned, offset = _remade_metadata(data, version=version)
    raw = bytes(versioned) + data[offset:]
    assert raw[3] == version
    store = open_store(raw, f"v{version}")
    assert store.metadata.version == version
    got = read_bars(store, WANTED, 0, 2**62)
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[col], bars[col].to_numpy())
