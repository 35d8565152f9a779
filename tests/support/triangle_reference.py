"""A literal, slow implementation of triangle-signals.md, written straight from the spec.

Nothing here is shared with the fast engine: lists instead of heaps, a per-bar loop,
per-bar time-zone arithmetic for anchors, and HTF buckets opened and closed bar by bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
MIN = 60_000_000_000
TFS = [("5m", 5), ("15m", 15), ("1h", 60), ("4h", 240), ("1d", 1440)]


def anchor_for(ts_ns: int, anchor: str, fixed_ns: int | None) -> int | None:
    if anchor == "fixed":
        return fixed_ns if ts_ns >= fixed_ns else None
    local = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(NY)
    if anchor == "session":
        day = local.date()
    else:  # weekly: the Sunday of this week (Sunday = weekday 6)
        day = local.date() - timedelta(days=(local.weekday() + 1) % 7)
    cand = datetime(day.year, day.month, day.day, 18, tzinfo=NY)
    if cand > local:
        cand -= timedelta(days=7 if anchor == "weekly" else 1)
        cand = datetime(cand.year, cand.month, cand.day, 18, tzinfo=NY)
    return int(cand.astimezone(UTC).timestamp()) * 1_000_000_000


@dataclass
class RefBias:
    bias: str = "Neutral"
    hi: int | None = None
    lo: int | None = None
    bull_fvg: list = field(default_factory=list)
    bear_fvg: list = field(default_factory=list)
    bull_ifvg: list = field(default_factory=list)
    bear_ifvg: list = field(default_factory=list)
    hist: list = field(default_factory=list)

    def update(self, h: int, low: int, c: int) -> str:
        prev_hi, prev_lo = self.hi, self.lo
        self.hi = h if self.hi is None else max(self.hi, h)
        self.lo = low if self.lo is None else min(self.lo, low)
        if prev_hi is not None:
            if c > prev_hi:
                self.bias = "Bullish"
            elif c < prev_lo:
                self.bias = "Bearish"
        if len(self.hist) >= 2:
            h2, l2 = self.hist[-2]
            if h2 < low:
                self.bull_fvg.append((low, h2))
            if l2 > h:
                self.bear_fvg.append((l2, h))
        hit = [z for z in self.bull_fvg if c < z[1]]
        if hit:
            self.bull_fvg = [z for z in self.bull_fvg if not c < z[1]]
            self.bear_ifvg += hit
            self.bias = "Bearish"
        hit = [z for z in self.bear_fvg if c > z[0]]
        if hit:
            self.bear_fvg = [z for z in self.bear_fvg if not c > z[0]]
            self.bull_ifvg += hit
            self.bias = "Bullish"
        hit = [z for z in self.bear_ifvg if c > z[0]]
        if hit:
            self.bear_ifvg = [z for z in self.bear_ifvg if not c > z[0]]
            self.bias = "Bullish"
        hit = [z for z in self.bull_ifvg if c < z[1]]
        if hit:
            self.bull_ifvg = [z for z in self.bull_ifvg if not c < z[1]]
            self.bias = "Bearish"
        self.hist = [*self.hist, (h, low)][-2:]
        return self.bias


def reference_triangles(bars, settings: dict) -> list[dict]:
    """``bars``: list of (ts_ns, o, h, l, c), good bars sorted by ts. Returns event dicts."""
    anchor = settings.get("anchor", "weekly")
    fixed = settings.get("anchor_ns")
    warmup = settings.get("warmup", 5)
    enabled = [tf for tf, _ in TFS if settings.get(f"use_{tf}")]
    events = []
    seg = object()
    for ts, o, h, low, c in bars:
        a = anchor_for(ts, anchor, fixed)
        if a != seg:
            seg = a
            i = 0
            one = RefBias()
            htf = {
                tf: {"engine": RefBias(), "fed": False, "bucket": None, "agg": None}
                for tf, _ in TFS
            }
            prev = None
            prev_bias = None
        bias = one.update(h, low, c)
        seen = {}
        for tf, minutes in TFS:
            st = htf[tf]
            size = minutes * MIN
            bucket = ts // size
            if st["bucket"] is not None and st["bucket"] != bucket:
                ao, ah, al, ac = st["agg"]
                st["engine"].update(ah, al, ac)
                st["bucket"], st["agg"] = None, None
            if st["bucket"] is None:
                st["bucket"], st["agg"] = bucket, (o, h, low, c)
            else:
                ao, ah, al, ac = st["agg"]
                st["agg"] = (ao, max(ah, h), min(al, low), c)
            if (bucket + 1) * size <= ts + MIN:
                ao, ah, al, ac = st["agg"]
                st["engine"].update(ah, al, ac)
                st["bucket"], st["agg"] = None, None
            seen[tf] = st["engine"].bias
        htf_bull = all(seen[tf] == "Bullish" for tf in enabled)
        htf_bear = all(seen[tf] == "Bearish" for tf in enabled)
        if i >= max(warmup, 1):
            po, ph, pl, pc = prev
            bull_sig = (
                bias == "Bullish"
                and prev_bias != "Bullish"
                and (not settings.get("htf_aligned_only") or htf_bull)
            )
            bear_sig = (
                bias == "Bearish"
                and prev_bias != "Bearish"
                and (not settings.get("htf_aligned_only") or htf_bear)
            )
            bull_eng = c > o and pc < po and o <= pc and c > po
            bear_eng = c < o and pc > po and o >= pc and c < po
            if settings.get("require_sweep_engulfing"):
                bull_sig = bull_sig and bull_eng and low < pl
                bear_sig = bear_sig and bear_eng and h > ph
            elif settings.get("require_engulfing"):
                bull_sig = bull_sig and bull_eng
                bear_sig = bear_sig and bear_eng
            for direction, fired in (("BULL", bull_sig), ("BEAR", bear_sig)):
                if fired:
                    events.append(
                        {
                            "ts": ts,
                            "direction": direction,
                            "bias_1m": bias,
                            **{f"bias_{tf}": seen[tf] for tf, _ in TFS},
                            "htf_bullish": htf_bull,
                            "htf_bearish": htf_bear,
                        }
                    )
        prev = (o, h, low, c)
        prev_bias = bias
        i += 1
    return events
