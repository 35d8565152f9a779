"""Reading and writing Databento DBN ``ohlcv-1m`` data as bar frames.

A *bar frame* is a DataFrame with the columns of :data:`BAR_COLUMNS`: ``symbol`` (the
registry symbol), ``ts`` (bar open time, int64 ns UTC) and ``open``..``close`` as int64
fixed-point prices (1e-9, exactly as Databento sends them), ``volume`` int64, plus
``instrument_id``: the contract the continuous symbol held at that minute (from the DBN
records and their symbology mapping). Keeping integers end to end means no float drift
and no pandas datetime-unit surprises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from market_backfill.names import BAR_COLUMNS, DAY_NS, OHLCV_1M, PRICE_COLUMNS

if TYPE_CHECKING:
    from databento import DBNStore

log = logging.getLogger(__name__)

_READ_BLOCK = 1 << 16
"""Records decoded per step (3.5 MB: about two months of one symbol's 1-minute bars). A
read stops after the block that reaches past its range, so a chunk of a long file decodes
the months up to its end and less than one block more (the twelve monthly chunks of a
one-year file: 0.4 s, 0.5-0.6 s with blocks of 2**18 records)."""


class DbnDataError(ValueError):
    """A DBN input cannot be used (corrupt, truncated, wrong schema); the message names it."""


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows."""
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype=object),
            **{c: pd.Series([], dtype=np.int64) for c in (*BAR_COLUMNS[1:], "instrument_id")},
        }
    )


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


def day_number(value: Any) -> int:
    """Days since 1970-01-01 of a date (the unit of DBN symbol mappings)."""
    return (pd.Timestamp(value).date() - date(1970, 1, 1)).days


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBN_PREFIX = 8  # b"DBN", the version byte, the metadata's length (uint32 little-endian)


def peek_metadata(path: Path) -> Any | None:
    """The DBN metadata of a ``.dbn`` / ``.dbn.zst`` file, read from its header alone
    (a few hundred bytes decompressed, no record touched), or None when the header is
    not readable: :func:`open_store` then says why. For choosing the files a range
    needs without opening every file of a long glob."""
    import databento_dbn

    try:
        with path.open("rb") as raw:
            stream: Any = raw
            if raw.read(4) == _ZSTD_MAGIC:
                import zstandard

                raw.seek(0)
                stream = zstandard.ZstdDecompressor().stream_reader(raw)
            else:
                raw.seek(0)
            head = _read_exactly(stream, _DBN_PREFIX)
            if head[:3] != b"DBN":
                return None
            body = _read_exactly(stream, int.from_bytes(head[4:8], "little"))
        decoder = databento_dbn.DBNDecoder()
        decoder.write(head + body)
        decoded = decoder.decode()
    except Exception:  # noqa: BLE001 - any unreadable header: let open_store report it
        return None
    return decoded[0] if decoded and isinstance(decoded[0], databento_dbn.Metadata) else None


def _read_exactly(stream: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = stream.read(n - len(data))
        if not part:
            raise EOFError("DBN header cut short")
        data += part
    return data


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


def open_store(source: Path | bytes, name: str) -> DBNStore:
    """Open DBN bytes or a ``.dbn`` / ``.dbn.zst`` file as a ``DBNStore``; check the schema."""
    from databento import DBNStore

    try:
        store = (
            DBNStore.from_bytes(source) if isinstance(source, bytes) else DBNStore.from_file(source)
        )
        schema = str(store.schema) if store.schema is not None else None
    except Exception as exc:
        raise DbnDataError(
            f"{name}: not a readable DBN file ({type(exc).__name__}: {exc})"
        ) from exc
    if schema != OHLCV_1M:
        raise DbnDataError(f"{name}: DBN schema is {schema!r}, but ohlcv-1m bars are required")
    return store


def _blocks(store: Any, name: str) -> Iterator[np.ndarray]:
    """Decode records block by block; a truncated or corrupt stream is an error, not a
    warning (the client would otherwise drop the broken tail silently)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield from store.to_ndarray(count=_READ_BLOCK)
        except Exception as exc:
            raise DbnDataError(
                f"{name}: DBN records cannot be decoded, the file may be truncated or corrupt "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    for warning in caught:
        if "truncated" in str(warning.message) or "incomplete" in str(warning.message):
            raise DbnDataError(f"{name}: {warning.message}; refusing a partial read")


def read_bars(
    store: Any,
    wanted: Mapping[str, str],
    start_ns: int,
    end_ns: int,
    name: str = "DBN data",
) -> pd.DataFrame:
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
    if not frames:
        return empty_bars()
    return pd.concat(frames, ignore_index=True)


def _block_bars(
    block: np.ndarray,
    ts: np.ndarray,
    span: tuple[int, int],
    wanted: Mapping[str, str],
    intervals: Sequence[Any],
    single: str | None,
) -> pd.DataFrame | None:
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
    return pd.DataFrame(
        {
            "symbol": symbols[keep],
            "ts": ts[keep],
            **{c: block[c][keep].astype(np.int64) for c in PRICE_COLUMNS},
            "volume": block["volume"][keep].astype(np.int64),
            "instrument_id": block["instrument_id"][keep].astype(np.int64),
        }
    )


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
