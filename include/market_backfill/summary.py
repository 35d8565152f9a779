"""Chunk results and the per-run summary: shared by every stage, pure (no database).

A stage's chunk result is a TypedDict that extends :class:`ChunkHeader` with the stage's
*summary* TypedDict; :func:`columns_of` turns that summary type into the columns of the
per-chunk table, so the XCom, the table and ``backfill_runs`` name the same fields from
one list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, get_origin, get_type_hints


class ChunkHeader(TypedDict):
    """Which chunk a result belongs to, and how long it took."""

    symbol: str
    chunk: str
    start: str
    end: str
    seconds: float


def columns_of(*summaries: type) -> tuple[str, ...]:
    """The fields of the given summary TypedDicts, in declaration order: the columns of a
    stage's per-chunk table."""
    out: list[str] = []
    for summary in summaries:
        out += [name for name in summary.__annotations__ if name not in out]
    return tuple(out)


def zero_counts(*summaries: type) -> dict[str, Any]:
    """The counts of the given summary TypedDicts at zero: ``0`` for each integer field,
    ``{}`` for each per-reason dict; other fields (text, seconds, flags) left out."""
    out: dict[str, Any] = {}
    for summary in summaries:
        for name, kind in get_type_hints(summary).items():
            if kind is int:
                out.setdefault(name, 0)
            elif get_origin(kind) is dict:
                out.setdefault(name, {})
    return out


def totals(
    rows: Sequence[Mapping[str, Any]], zeros: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Totals over chunk results: integers summed, per-reason dicts summed per reason;
    ``seconds`` and flags are left out; ``chunks`` counts the rows. ``zeros`` (from
    :func:`zero_counts`) are the totals of no row: a count no row carries is still there."""
    out: dict[str, Any] = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in (zeros or {}).items()
    }
    for counts in rows:
        for key, value in counts.items():
            if isinstance(value, bool) or key == "seconds":
                continue
            if isinstance(value, int):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, dict):
                merged = out.setdefault(key, {})
                for reason, n in value.items():
                    merged[reason] = merged.get(reason, 0) + int(n)
    out["chunks"] = len(rows)
    return out


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table for task logs and the report CLI."""
    header = list(columns)
    body = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)
