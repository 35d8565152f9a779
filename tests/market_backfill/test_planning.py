from __future__ import annotations

from datetime import UTC, datetime

import pytest

from market_backfill.errors import ParamError
from market_backfill.planning import Chunk, month_ceil, month_floor, monthly_chunks, plan
from market_backfill.symbols import parse_symbol

NQ = parse_symbol("GLBX.MDP3:NQ")


def dt(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_monthly_chunks_cut_to_the_range_with_labels():
    chunks = monthly_chunks(NQ, dt(2025, 11, 15), dt(2026, 1, 3))
    assert [(c.month, c.start, c.end) for c in chunks] == [
        ("2025-11", "2025-11-15T00:00:00+00:00", "2025-12-01T00:00:00+00:00"),
        ("2025-12", "2025-12-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
        ("2026-01", "2026-01-01T00:00:00+00:00", "2026-01-03T00:00:00+00:00"),
    ]
    assert chunks[1].label == "NQ 2025-12"
    assert Chunk.from_dict(chunks[1].to_dict()) == chunks[1]


def test_no_chunks_for_an_empty_range():
    assert monthly_chunks(NQ, dt(2025, 1, 1), dt(2025, 1, 1)) == []


def test_twenty_years_of_four_symbols_map_240_tasks_and_over_the_limit_are_refused():
    from market_backfill.planning import group_chunks

    symbols = [parse_symbol(f"GLBX.MDP3:{r}") for r in ("NQ", "ES", "YM", "RTY")]
    chunks = plan(dict.fromkeys(symbols, (dt(2006, 1, 1), dt(2026, 1, 1))))
    assert len(chunks) == 960
    assert len(group_chunks(chunks, 25)) == 240
    with pytest.raises(
        ParamError,
        match="960 tasks .*max_map_length of 500: raise 'symbols_per_task', split the range",
    ) as err:
        group_chunks(chunks, 1, max_groups=500)
    assert err.value.param == "symbols_per_task"


def _chunks(roots: list[str], start=None, end=None):
    ranges = {
        parse_symbol(f"GLBX.MDP3:{r}"): (start or dt(2025, 11, 15), end or dt(2026, 1, 1))
        for r in roots
    }
    return plan(ranges)


def test_a_month_of_several_symbols_is_one_group_with_a_short_label():
    from market_backfill.planning import group_chunks, members_of

    chunks = _chunks(["ES", "NQ", "YM", "RTY"])
    groups = group_chunks(chunks, 25)
    assert [g["label"] for g in groups] == ["ES,NQ,+2 2025-11", "ES,NQ,+2 2025-12"]
    assert [m["symbol"] for m in groups[0]["members"]] == [
        "GLBX.MDP3:ES",
        "GLBX.MDP3:NQ",
        "GLBX.MDP3:YM",
        "GLBX.MDP3:RTY",
    ]
    assert (groups[0]["start"], groups[0]["end"]) == (
        "2025-11-15T00:00:00+00:00",
        "2025-12-01T00:00:00+00:00",
    )
    assert sorted(members_of(groups), key=lambda c: (c["month"], c["symbol"])) == sorted(
        chunks, key=lambda c: (c["month"], c["symbol"])
    )
    pairs = group_chunks(chunks, 2)
    assert [g["label"] for g in pairs] == [
        "ES,NQ 2025-11",
        "YM,RTY 2025-11",
        "ES,NQ 2025-12",
        "YM,RTY 2025-12",
    ]
    assert [g["label"] for g in group_chunks(_chunks(["NQ"]), 25)] == ["NQ 2025-11", "NQ 2025-12"]


def test_sixty_symbols_over_fifteen_years_fit_and_too_small_groups_are_refused():
    from market_backfill.planning import group_chunks

    roots = [f"R{i:02d}" for i in range(60)]
    chunks = _chunks(roots, dt(2011, 1, 1), dt(2026, 1, 1))
    assert len(chunks) == 60 * 180  # 10,800 chunks: ten times Airflow's limit
    groups = group_chunks(chunks, 25, max_groups=1024)
    assert len(groups) == 3 * 180  # 25 + 25 + 10 symbols per month
    assert {len(g["members"]) for g in groups} == {25, 10}
    with pytest.raises(ParamError, match="1800 tasks .*up to 6 symbols.*raise 'symbols_per_task'"):
        group_chunks(chunks, 6, max_groups=1024)


def test_hundreds_of_symbols_over_fifteen_years_fit_the_map_limit():
    """README: 125 symbols fit at the default group size, hundreds with a larger one."""
    from market_backfill.names import DEFAULT_SYMBOLS_PER_TASK
    from market_backfill.planning import group_chunks

    roots = [f"R{i:03d}" for i in range(300)]
    chunks = _chunks(roots, dt(2011, 1, 1), dt(2026, 1, 1))
    fit = [c for c in chunks if c["symbol"] < "GLBX.MDP3:R125"]
    assert len(group_chunks(fit, DEFAULT_SYMBOLS_PER_TASK)) == 5 * 180
    one_more = [c for c in chunks if c["symbol"] < "GLBX.MDP3:R126"]
    with pytest.raises(ParamError, match="1080 tasks"):
        group_chunks(one_more, DEFAULT_SYMBOLS_PER_TASK)
    assert len(group_chunks(chunks, 60)) == 5 * 180


def test_month_steps_cross_the_year_and_stay_in_utc():
    from datetime import date

    from market_backfill.planning import month_starts, next_month

    assert next_month(date(2025, 12, 31)) == date(2026, 1, 1)
    assert next_month(date(2025, 1, 31)) == date(2025, 2, 1)
    start = datetime(2025, 11, 15, 12, tzinfo=UTC)
    assert month_starts(start, datetime(2026, 2, 1, tzinfo=UTC)) == [
        start,
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    ]
    assert month_starts(start, datetime(2025, 12, 1, tzinfo=UTC)) == [start]


@pytest.mark.parametrize(
    ("ts", "floor", "ceil"),
    [
        ("2025-03-01T00:00:00+00:00", "2025-03-01", "2025-03-01"),  # a month start is both
        ("2025-03-01T00:00:01+00:00", "2025-03-01", "2025-04-01"),
        ("2025-12-31T23:59:00+00:00", "2025-12-01", "2026-01-01"),  # into the next year
        ("2025-04-01T01:00:00+02:00", "2025-03-01", "2025-04-01"),  # taken in UTC: March
    ],
)
def test_month_floor_and_ceil_are_utc_month_starts(ts, floor, ceil):
    at = datetime.fromisoformat(ts)
    assert month_floor(at) == datetime.fromisoformat(floor).replace(tzinfo=UTC)
    assert month_ceil(at) == datetime.fromisoformat(ceil).replace(tzinfo=UTC)
