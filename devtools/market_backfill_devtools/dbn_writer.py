"""Writing Databento DBN ``ohlcv-1m`` data, as Databento sends it (sample data, test
fixtures, the https stand-in of the gateway). The runtime package only reads DBN."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from market_backfill.names import DAY_NS, MINUTE_NS, PRICE_COLUMNS
from market_backfill.sources.dbn import day_number

OHLCV_1M_RTYPE = 33  # the record type of ohlcv-1m bars

Interval = tuple[date, date, int]  # [start_date, end_date) -> instrument id


def quarterly_rolls(first: date, last: date, base_id: int) -> list[Interval]:
    """A continuous symbol's instrument intervals with a roll on the 10th of each quarter
    month (Mar, Jun, Sep, Dec), like a front-month future; ids count up from ``base_id``."""
    bounds = [first]
    year, month = first.year, first.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        roll = date(year, month, 10)
        if roll > last:
            break
        if month in (3, 6, 9, 12) and roll > first:
            bounds.append(roll)
    bounds.append(last + pd.Timedelta(days=1).to_pytimedelta())
    return [
        (a, b, base_id + i) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]


def encode_bars(
    bars: pd.DataFrame,
    *,
    dataset: str,
    instruments: Mapping[str, int | Sequence[Interval]],
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> bytes:
    """Encode a bar frame as uncompressed DBN ``ohlcv-1m`` bytes, as Databento sends them.

    ``instruments`` maps each continuous symbol in ``bars['symbol']`` (e.g. ``NQ.v.0``) to
    one instrument id for the whole span, or to ``(start_date, end_date, id)`` intervals
    (rolls); the metadata carries the same symbol mappings as a real response.
    """
    from types import SimpleNamespace

    from databento_dbn import Metadata, OHLCVMsg, Schema, SType

    bars = bars.sort_values("ts", kind="stable")
    ts = bars["ts"].to_numpy(dtype=np.int64)
    lo = int(ts.min()) if len(ts) else 0
    hi = int(ts.max()) + MINUTE_NS if len(ts) else 0
    start_ns = lo if start_ns is None else start_ns
    end_ns = hi if end_ns is None else end_ns
    first_day = pd.Timestamp(start_ns, unit="ns", tz="UTC").date()
    last_day = pd.Timestamp(max(end_ns - 1, start_ns), unit="ns", tz="UTC").date()
    spans: dict[str, list[Interval]] = {
        sym: [(first_day, last_day + pd.Timedelta(days=1).to_pytimedelta(), spec)]
        if isinstance(spec, int)
        else list(spec)
        for sym, spec in instruments.items()
    }
    mappings = [
        SimpleNamespace(
            raw_symbol=sym,
            intervals=[SimpleNamespace(start_date=a, end_date=b, symbol=str(i)) for a, b, i in ivs],
        )
        for sym, ivs in spans.items()
    ]
    meta = Metadata(
        dataset=dataset,
        start=start_ns,
        end=end_ns,
        stype_in=SType.CONTINUOUS,
        stype_out=SType.INSTRUMENT_ID,
        schema=Schema.OHLCV_1M,
        symbols=list(instruments),
        mappings=mappings,
    )
    records = np.zeros(len(bars), dtype=OHLCVMsg._dtypes)
    records["length"] = OHLCVMsg.size_hint // 4
    records["rtype"] = OHLCV_1M_RTYPE
    records["publisher_id"] = 1
    days = ts // DAY_NS
    symbols = bars["symbol"].to_numpy(dtype=object)
    iids = np.zeros(len(bars), dtype=np.uint32)
    for sym, ivs in spans.items():
        for a, b, iid in ivs:
            hit = (symbols == sym) & (days >= day_number(a)) & (days < day_number(b))
            iids[hit] = iid
    records["instrument_id"] = iids
    records["ts_event"] = ts.astype(np.uint64)
    for c in PRICE_COLUMNS:
        records[c] = bars[c].to_numpy(dtype=np.int64)
    records["volume"] = bars["volume"].to_numpy(dtype=np.uint64)
    return bytes(meta) + records.tobytes()


def write_bars(path: Path, bars: pd.DataFrame, **kwargs: Any) -> Path:
    """Write :func:`encode_bars` output to ``path`` (zstd-compressed for ``.zst``)."""
    data = encode_bars(bars, **kwargs)
    if path.suffix == ".zst":
        import zstandard

        data = zstandard.ZstdCompressor(level=3).compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
