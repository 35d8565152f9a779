"""Reading Databento DBN ``ohlcv-1m`` data as bar frames, without pandas.

A *bar frame* (:data:`Bars`) is a dict of equally long numpy columns, those of
:data:`BAR_FRAME_COLUMNS`: ``symbol`` (the registry symbol, object), ``ts`` (bar open
time, int64 ns UTC) and ``open``..``close`` as int64 fixed-point prices (1e-9, exactly as
Databento sends them), ``volume`` int64, plus ``instrument_id``: the contract the
continuous symbol held at that minute (from the DBN records and their symbology mapping).
Keeping integers end to end means no float drift and no datetime-unit surprises.

The records are decoded straight from the bytes (an ``ohlcv-1m`` record is a fixed
56-byte struct, the same in DBN versions 1 to 3, the dtype ``databento_dbn`` gives), and
the metadata, whose layout differs between versions, by ``databento_dbn``:
neither pandas nor the ``databento`` client is imported to read a file (about 0.5 s and
70 MB of a chunk task's start: docs/benchmark-history.md).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from market_backfill.names import BAR_COLUMNS, DAY_NS, OHLCV_1M, PRICE_COLUMNS

log = logging.getLogger(__name__)

_READ_BLOCK = 1 << 16
"""Records decoded per step (3.5 MB: about two months of one symbol's 1-minute bars). A
read stops after the block that reaches past its range, so a chunk of a long file decodes
the months up to its end and less than one block more (the twelve monthly chunks of a
one-year file: 0.4 s, 0.5-0.6 s with blocks of 2**18 records)."""


class DbnDataError(ValueError):
    """A DBN input cannot be used (corrupt, truncated, wrong schema); the message names it."""


Bars = dict[str, np.ndarray]
"""A bar frame: the columns of :data:`BAR_FRAME_COLUMNS`, equally long numpy arrays."""
BAR_FRAME_COLUMNS = (*BAR_COLUMNS, "instrument_id")


def empty_bars() -> Bars:
    """A bar frame with no rows."""
    return {
        "symbol": np.empty(0, dtype=object),
        **{c: np.empty(0, dtype=np.int64) for c in BAR_FRAME_COLUMNS[1:]},
    }


def bar_count(bars: Bars) -> int:
    """The rows of a bar frame."""
    return len(bars["ts"])


def concat_bars(parts: Sequence[Bars]) -> Bars:
    """One bar frame of ``parts`` in order (an empty one when there is none)."""
    parts = [p for p in parts if bar_count(p)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return empty_bars()
    return {c: np.concatenate([p[c] for p in parts]) for c in BAR_FRAME_COLUMNS}


@dataclass(frozen=True)
class _Interval:
    instrument_id: int
    start_day: int  # days since epoch, inclusive
    end_day: int  # exclusive
    raw_symbol: str


def _intervals(metadata: Any) -> list[_Interval]:
    out = []
    for raw_symbol, intervals in (metadata.mappings or {}).items():
        for iv in intervals:
            try:
                iid = int(iv["symbol"])
            except (TypeError, ValueError):
                continue
            out.append(
                _Interval(
                    iid, day_number(iv["start_date"]), day_number(iv["end_date"]), str(raw_symbol)
                )
            )
    return out


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def day_number(value: date | str) -> int:
    """Days since 1970-01-01 of a date (the unit of DBN symbol mappings), or of a
    datetime's date, or of an ISO date string."""
    if isinstance(value, datetime):
        value = value.date()
    elif not isinstance(value, date):
        value = date.fromisoformat(str(value)[:10])
    return value.toordinal() - _EPOCH_DAY


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBN_PREFIX = 8  # b"DBN", the version byte, the metadata's length (uint32 little-endian)


class _ZstdFrames:
    """The decompressed bytes of every zstd frame of ``raw``, read on demand. Input that
    ends inside a frame raises ``EOFError`` (zstandard's stream reader ends such input
    early and quietly: a file cut short would read as a shorter, whole one)."""

    CHUNK = 1 << 17  # compressed bytes read at a time, at most
    SMALL = 1 << 12  # ... and at least: a header's read decompresses a few kB, not MBs

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._frame: Any = None  # the current frame's decompressor
        self._buffer = bytearray()
        self._ended = False

    def _more(self, wanted: int) -> None:
        """Decompress the next chunk of input (about ``wanted`` bytes' worth, within
        :data:`SMALL` and :data:`CHUNK`) into the buffer (frames one after another)."""
        chunk = self._raw.read(min(self.CHUNK, max(self.SMALL, wanted)))
        if not chunk:
            if self._frame is not None and not self._frame.eof:
                raise EOFError("the zstd data end inside a frame: the file is cut short")
            self._ended = True
            return
        while chunk:
            if self._frame is None or self._frame.eof:
                self._frame = self._dctx.decompressobj()
            self._buffer += self._frame.decompress(chunk)
            chunk = self._frame.unused_data if self._frame.eof else b""

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that are left when negative); fewer only at the end."""
        while (n < 0 or len(self._buffer) < n) and not self._ended:
            self._more(self.CHUNK if n < 0 else n - len(self._buffer))
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        with memoryview(self._buffer) as view:
            out = bytes(view[:size])
        del self._buffer[:size]
        return out


@contextmanager
def _decompressed(source: Path | bytes) -> Iterator[BinaryIO]:
    """The DBN bytes of a file or of bytes, zstd-compressed (every frame: input cut inside
    one raises ``EOFError`` when read, :class:`_ZstdFrames`) or not."""
    raw: BinaryIO = source.open("rb") if isinstance(source, Path) else io.BytesIO(source)
    with raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic != _ZSTD_MAGIC:
            yield raw
            return
        yield _ZstdFrames(raw)  # type: ignore[misc]


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes of ``stream``, fewer only at its end (a decompressor may answer a read
    with less than asked)."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _header(stream: BinaryIO) -> tuple[Any, int]:
    """The DBN metadata at the start of ``stream`` and its length in bytes (prefix
    included): where the records start."""
    import databento_dbn

    head = _read_up_to(stream, _DBN_PREFIX)
    if len(head) < _DBN_PREFIX or head[:3] != b"DBN":
        raise ValueError("no DBN prefix")
    length = int.from_bytes(head[4:8], "little")
    body = _read_up_to(stream, length)
    if len(body) < length:
        raise EOFError("DBN header cut short")
    metadata = databento_dbn.Metadata.decode(
        head + body, upgrade_policy=databento_dbn.VersionUpgradePolicy.AS_IS
    )
    return metadata, _DBN_PREFIX + length


def peek_metadata(path: Path) -> Any | None:
    """The DBN metadata of a ``.dbn`` / ``.dbn.zst`` file, read from its header alone
    (a few kB decompressed, no record touched), or None when the header is
    not readable: :func:`open_store` then says why. For choosing the files a range
    needs without opening every file of a long glob."""
    try:
        with _decompressed(path) as stream:
            return _header(stream)[0]
    except Exception:  # noqa: BLE001 - any unreadable header: let open_store report it
        return None


def may_hold(metadata: Any, dataset: str, start_ns: int, end_ns: int) -> bool:
    """False when DBN ``metadata`` rules an ``ohlcv-1m`` file out for ``dataset`` and
    ``[start_ns, end_ns)``: another dataset, or a span (start and end both known)
    outside the range. A file of another schema may hold anything: True, so that
    :func:`open_store` refuses it."""
    if str(metadata.schema) != OHLCV_1M:
        return True
    return metadata.dataset == dataset and not outside_range(metadata, start_ns, end_ns)


def outside_range(metadata: Any, start_ns: int, end_ns: int) -> bool:
    """True when DBN ``metadata`` states a span (start and end both known) that misses
    ``[start_ns, end_ns)``: the file holds no record of the range."""
    if metadata.start is None or metadata.end is None:
        return False
    return metadata.start >= end_ns or bool(metadata.end and metadata.end <= start_ns)


class DbnStore:
    """An ``ohlcv-1m`` DBN file or bytes: its metadata, read once, and its records,
    decoded block by block each time :meth:`blocks` is iterated (the file is opened
    then and closed when the iteration ends or is abandoned)."""

    def __init__(self, source: Path | bytes, name: str, metadata: Any, offset: int) -> None:
        import databento_dbn

        self.source = source
        self.name = name
        self.metadata = metadata
        self._offset = offset
        fields = list(databento_dbn.OHLCVMsg._dtypes)
        if metadata.ts_out:  # a gateway's send time follows each record
            fields.append(("ts_out", "u8"))
        self.dtype = np.dtype(fields)
        self._rtype = int(databento_dbn.RType.OHLCV_1M.value)

    def blocks(self, count: int) -> Iterator[np.ndarray]:
        """The records, ``count`` at a time, as structured arrays (fields as
        ``databento_dbn.OHLCVMsg``). Raises :class:`DbnDataError` on a record cut short,
        a record of another type or undecodable bytes."""
        size = self.dtype.itemsize
        try:
            with _decompressed(self.source) as stream:
                _read_up_to(stream, self._offset)
                while data := _read_up_to(stream, count * size):
                    if len(data) % size:
                        raise DbnDataError(
                            f"{self.name}: the DBN file is truncated: it ends in "
                            f"{len(data) % size} bytes of an incomplete record; refusing a "
                            "partial read"
                        )
                    block = np.frombuffer(data, dtype=self.dtype)
                    if not np.all(block["rtype"] == self._rtype):
                        raise DbnDataError(
                            f"{self.name}: DBN records cannot be decoded: a record is not "
                            "ohlcv-1m; the file may be corrupt"
                        )
                    yield block
        except DbnDataError:
            raise
        except Exception as exc:
            raise DbnDataError(
                f"{self.name}: DBN records cannot be decoded, the file may be truncated or "
                f"corrupt ({type(exc).__name__}: {exc})"
            ) from exc


def open_store(source: Path | bytes, name: str) -> DbnStore:
    """Open DBN bytes or a ``.dbn`` / ``.dbn.zst`` file (its header read); check the schema."""
    try:
        with _decompressed(source) as stream:
            metadata, offset = _header(stream)
    except Exception as exc:
        raise DbnDataError(
            f"{name}: not a readable DBN file ({type(exc).__name__}: {exc})"
        ) from exc
    schema = str(metadata.schema) if metadata.schema is not None else None
    if schema != OHLCV_1M:
        raise DbnDataError(f"{name}: DBN schema is {schema!r}, but ohlcv-1m bars are required")
    return DbnStore(source, name, metadata, offset)


def _blocks(store: DbnStore, name: str) -> Iterator[np.ndarray]:
    """Decode records block by block (a seam for tests that count the blocks decoded)."""
    return store.blocks(_READ_BLOCK)


def read_bars(
    store: DbnStore,
    wanted: Mapping[str, str],
    start_ns: int,
    end_ns: int,
    name: str = "DBN data",
) -> Bars:
    """Bars of ``store`` whose mapped symbol is a key of ``wanted`` (e.g. ``{'NQ.v.0':
    'GLBX.MDP3:NQ'}``) and whose open time is in ``[start_ns, end_ns)``, in file order.

    Streams the records block by block, so a large file never sits in memory whole, and
    stops after the block that reaches past the range while the records are in time order.
    """
    meta = store.metadata
    if outside_range(meta, start_ns, end_ns):
        return empty_bars()
    intervals = [iv for iv in _intervals(meta) if iv.raw_symbol in wanted]
    single = _single_symbol(meta, wanted)
    if not intervals and single is None:
        log.info("%s holds none of %s (it has %s)", name, sorted(wanted), list(meta.symbols)[:5])
        return empty_bars()
    frames = []
    ordered, last = True, np.iinfo(np.int64).min
    for block in _blocks(store, name):
        ts = block["ts_event"].astype(np.int64)
        if len(ts) == 0:
            continue
        ordered = ordered and ts[0] >= last and bool(np.all(ts[1:] >= ts[:-1]))
        last = int(ts[-1])
        if ordered and ts[0] >= end_ns:
            break  # time-ordered (as Databento writes): nothing later is in range
        frame = _block_bars(block, ts, (start_ns, end_ns), wanted, intervals, single)
        if frame is not None:
            frames.append(frame)
        if ordered and last >= end_ns:
            break  # the block reaches past the range: the next one is not decoded
    return concat_bars(frames)


def _block_bars(
    block: np.ndarray,
    ts: np.ndarray,
    span: tuple[int, int],
    wanted: Mapping[str, str],
    intervals: Sequence[Any],
    single: str | None,
) -> Bars | None:
    """The bars of one decoded block within ``span`` (``[start_ns, end_ns)``) whose
    instrument maps to a wanted symbol on its day (every bar when the file holds the
    ``single`` symbol); None when there is none."""
    in_range = (ts >= span[0]) & (ts < span[1])
    if not in_range.any():
        return None
    block, ts = block[in_range], ts[in_range]
    symbols = np.full(len(block), None, dtype=object)
    if single is not None:
        symbols[:] = single
    else:
        iids = block["instrument_id"].astype(np.int64)
        days = ts // DAY_NS
        for iv in intervals:
            hit = (iids == iv.instrument_id) & (days >= iv.start_day) & (days < iv.end_day)
            symbols[hit] = wanted[iv.raw_symbol]
    keep = symbols != None  # noqa: E711 - elementwise comparison on an object array
    if not keep.any():
        return None
    return {
        "symbol": symbols[keep],
        "ts": ts[keep],
        **{c: block[c][keep].astype(np.int64) for c in PRICE_COLUMNS},
        "volume": block["volume"][keep].astype(np.int64),
        "instrument_id": block["instrument_id"][keep].astype(np.int64),
    }


def _single_symbol(meta: Any, wanted: Mapping[str, str]) -> str | None:
    """A file requested for exactly one wanted symbol needs no instrument mapping."""
    symbols = list(meta.symbols or [])
    if len(symbols) == 1 and symbols[0] in wanted and not (meta.mappings or {}).get(symbols[0]):
        return wanted[symbols[0]]
    return None


def files_for(patterns: Sequence[str]) -> list[Path]:
    """Expand file paths and globs (``*.dbn``, ``*.dbn.zst``); sorted, de-duplicated."""
    import glob

    found: set[Path] = set()
    for pattern in patterns:
        matches = glob.glob(str(Path(pattern).expanduser()), recursive=True)
        found.update(Path(m) for m in matches if Path(m).is_file())
    return sorted(found)
