"""A literal, slow reference of features.md: plain Python, one bar at a time, datetimes
and decimals, written from the spec's words without the library's code.

Bars are ``(ts, open, high, low, close, volume)`` tuples: ``ts`` an aware UTC datetime
(the bar's open), prices :class:`~decimal.Decimal`, volume int.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
Bar = tuple[datetime, Decimal, Decimal, Decimal, Decimal, int]
CLOCK = {"5m": timedelta(minutes=5), "15m": timedelta(minutes=15), "1h": timedelta(hours=1)}


def trade_date(ts: datetime) -> date:
    """date(ts in New York + 6 hours)."""
    return (ts.astimezone(NY).replace(tzinfo=None) + timedelta(hours=6)).date()


def session_open(d: date) -> datetime:
    """18:00 New York on the day before trade date ``d``, in UTC."""
    return datetime.combine(d - timedelta(days=1), time(18), tzinfo=NY).astimezone(UTC)


def bucket(ts: datetime, tf: str) -> tuple[datetime, datetime]:
    """(start, end) of the ``tf`` bucket holding a 1-minute bar open at ``ts``."""
    if tf in CLOCK:
        step = CLOCK[tf]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        start = epoch + (ts - epoch) // step * step
        return start, start + step
    d = trade_date(ts)
    opened = session_open(d)
    if tf == "1d":
        return opened, session_open(d + timedelta(days=1))
    if tf == "4h":
        start = opened + (ts - opened) // timedelta(hours=4) * timedelta(hours=4)
        return start, start + timedelta(hours=4)
    raise ValueError(tf)


def aggregate(bars: list[Bar], tf: str) -> list[dict]:
    """The ``tf`` bars of a series' 1-minute bars (features.md section 1)."""
    if tf == "1m":
        return [
            {
                "ts": b[0],
                "open": b[1],
                "high": b[2],
                "low": b[3],
                "close": b[4],
                "volume": b[5],
                "bars": 1,
                "complete": True,
            }
            for b in bars
        ]
    last_ts = max(b[0] for b in bars) if bars else None
    out: dict[datetime, dict] = {}
    for ts, o, h, lo, c, v in bars:
        start, end = bucket(ts, tf)
        agg = out.get(start)
        if agg is None:
            out[start] = {
                "ts": start,
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": v,
                "bars": 1,
                "complete": last_ts >= end,
            }
        else:
            agg["high"] = max(agg["high"], h)
            agg["low"] = min(agg["low"], lo)
            agg["close"] = c
            agg["volume"] += v
            agg["bars"] += 1
    return [out[k] for k in sorted(out)]


def _rma_or_ema(values: list[float], length: int, alpha: float) -> list[float | None]:
    out: list[float | None] = []
    y = None
    for k, x in enumerate(values):
        if k < length - 1:
            out.append(None)
            continue
        if k == length - 1:
            y = sum(values[:length]) / length
        else:
            y = alpha * x + (1 - alpha) * y
        out.append(y)
    return out


def features(bars: list[dict]) -> list[dict]:
    """The ten features of each bar of one series and timeframe (section 2)."""
    c = [float(b["close"]) for b in bars]
    h = [float(b["high"]) for b in bars]
    lo = [float(b["low"]) for b in bars]
    v = [float(b["volume"]) for b in bars]
    n = len(bars)
    ret: list[float | None] = [None] * n
    log_ret: list[float | None] = [None] * n
    tr: list[float] = []
    for i in range(n):
        if i == 0:
            tr.append(h[i] - lo[i])
            continue
        c1 = c[i - 1]
        tr.append(max(h[i] - lo[i], abs(h[i] - c1), abs(lo[i] - c1)))
        if c1 != 0:
            ret[i] = c[i] / c1 - 1
            if c[i] / c1 > 0:
                log_ret[i] = math.log(c[i] / c1)
    atr = _rma_or_ema(tr, 14, 1 / 14)
    ups = [max(c[i] - c[i - 1], 0.0) for i in range(1, n)]
    downs = [max(c[i - 1] - c[i], 0.0) for i in range(1, n)]
    up_rma = [None, *_rma_or_ema(ups, 14, 1 / 14)]
    down_rma = [None, *_rma_or_ema(downs, 14, 1 / 14)]
    ema = _rma_or_ema(c, 20, 2 / 21)
    rows = []
    pv = vv = 0.0
    for i in range(n):
        u, d = up_rma[i] if i < len(up_rma) else None, down_rma[i] if i < len(down_rma) else None
        if u is None:
            rsi = None
        elif d == 0 and u > 0:
            rsi = 100.0
        elif u == 0 and d > 0:
            rsi = 0.0
        elif u == 0 and d == 0:
            rsi = 50.0
        else:
            rsi = 100 - 100 / (1 + u / d)
        sma = sum(c[i - 49 : i + 1]) / 50 if i >= 49 else None
        vol = None
        if i >= 30:
            window = log_ret[i - 29 : i + 1]
            if all(x is not None for x in window):
                mean = sum(window) / 30
                vol = math.sqrt(sum((x - mean) ** 2 for x in window) / 29)
        if i == 0 or trade_date(bars[i]["ts"]) != trade_date(bars[i - 1]["ts"]):
            pv = vv = 0.0
        pv += (h[i] + lo[i] + c[i]) / 3 * v[i]
        vv += v[i]
        vwap = pv / vv if vv != 0 else None
        vz = None
        if i >= 19:
            window = v[i - 19 : i + 1]
            mean = sum(window) / 20
            std = math.sqrt(sum((x - mean) ** 2 for x in window) / 20)
            vz = (v[i] - mean) / std if std != 0 else None
        rows.append(
            {
                "ts": bars[i]["ts"],
                "ret_1": ret[i],
                "log_ret_1": log_ret[i],
                "tr": tr[i],
                "atr_14": atr[i],
                "rsi_14": rsi,
                "ema_20": ema[i],
                "sma_50": sma,
                "vol_30": vol,
                "vwap_session": vwap,
                "volume_z_20": vz,
            }
        )
    return rows


def close_enough(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    """features.md section 3: 1e-9 relative, or 1e-9 absolute below 1; NULLs exactly."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
