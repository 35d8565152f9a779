from __future__ import annotations

from market_backfill.gaps.detect import Gap
from market_backfill.gaps.store import mark_gap, note_error, open_gaps, record_gaps
from market_backfill.timeutil import from_ns, to_ns
from tests.market_backfill.gaps.holes import END, NQ_V0, START


def test_redetection_updates_never_duplicates_and_closes_vanished_gaps(market_db):
    gaps = [
        Gap(NQ_V0, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00")),
        Gap(NQ_V0, to_ns("2025-11-25T10:00"), to_ns("2025-11-25T10:20")),
    ]
    with market_db.connect() as conn:
        assert record_gaps(conn, NQ_V0, START, END, gaps) == {
            "gaps": 2,
            "new": 2,
            "updated": 0,
            "closed": 0,
        }
        longer = [Gap(NQ_V0, gaps[0].start_ns, to_ns("2025-11-24T15:10"))]
        assert record_gaps(conn, NQ_V0, START, END, longer) == {
            "gaps": 1,
            "new": 0,
            "updated": 1,
            "closed": 1,
        }
        rows = conn.execute(
            "SELECT gap_start, minutes, status FROM ohlcv_gaps ORDER BY gap_start"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [(40, "open"), (20, "filled")]


def test_open_gaps_are_the_oldest_first_over_every_series_up_to_the_cap(market_db):
    """``max_repairs``: a run repairs the oldest open gaps of all its series, no more."""
    from market_backfill.symbols import Series, parse_symbol

    es = Series(parse_symbol("GLBX.MDP3:ES"), "v", 0)
    nq_gaps = [
        Gap(NQ_V0, to_ns("2025-11-25T10:00"), to_ns("2025-11-25T10:20")),
        Gap(NQ_V0, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00")),
    ]
    es_gaps = [
        Gap(es, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T14:40")),
        Gap(es, to_ns("2025-11-26T09:00"), to_ns("2025-11-26T09:10")),
    ]
    with market_db.connect() as conn:
        record_gaps(conn, NQ_V0, START, END, nq_gaps)
        record_gaps(conn, es, START, END, es_gaps)
        picked = open_gaps(conn, [NQ_V0, es], START, END, 3)
        assert [(g["symbol"], g["gap_start"][:16]) for g in picked] == [
            ("GLBX.MDP3:ES", "2025-11-24T14:30"),
            ("GLBX.MDP3:NQ", "2025-11-24T14:30"),
            ("GLBX.MDP3:NQ", "2025-11-25T10:00"),
        ]
        assert len(open_gaps(conn, [NQ_V0, es], START, END, 100)) == 4
        assert [g["symbol"] for g in open_gaps(conn, [es], START, END, 100)] == [es.symbol.key] * 2


def _gap_row(conn, gap: Gap) -> tuple:
    return conn.execute(
        "SELECT status, attempts, last_error FROM ohlcv_gaps WHERE gap_start = %s",
        (from_ns(gap.start_ns),),
    ).fetchone()


def test_a_gap_without_bars_becomes_unfillable_at_max_attempts_and_is_no_longer_asked(
    market_db,
):
    gap = Gap(NQ_V0, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00"))
    start = from_ns(gap.start_ns)
    with market_db.connect() as conn:
        record_gaps(conn, NQ_V0, START, END, [gap])
        outcomes = [mark_gap(conn, NQ_V0, start, False, "no bars", 3) for _ in range(3)]
        assert outcomes == [(1, "open"), (2, "open"), (3, "unfillable")]
        assert _gap_row(conn, gap) == ("unfillable", 3, "no bars")
        assert open_gaps(conn, [NQ_V0], START, END, 100) == []
        assert [
            g["gap_start"] for g in open_gaps(conn, [NQ_V0], START, END, 100, retry_unfillable=True)
        ] == [start.isoformat()]
        # detected again with the same extent: still unfillable, attempts kept
        record_gaps(conn, NQ_V0, START, END, [gap])
        assert _gap_row(conn, gap)[:2] == ("unfillable", 3)
        # a retry that finds the bars fills it
        assert mark_gap(conn, NQ_V0, start, True, None, 3) == (4, "filled")
        assert _gap_row(conn, gap) == ("filled", 4, None)


def test_an_unfillable_gap_that_changed_or_vanished_is_reopened_or_filled(market_db):
    gap = Gap(NQ_V0, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00"))
    start = from_ns(gap.start_ns)
    with market_db.connect() as conn:
        record_gaps(conn, NQ_V0, START, END, [gap])
        mark_gap(conn, NQ_V0, start, False, "no bars", 1)
        assert _gap_row(conn, gap)[0] == "unfillable"
        grown = Gap(NQ_V0, gap.start_ns, to_ns("2025-11-24T15:30"))
        record_gaps(conn, NQ_V0, START, END, [grown])
        assert _gap_row(conn, gap)[:2] == ("open", 0)  # a new question: asked again
        mark_gap(conn, NQ_V0, start, False, "no bars", 1)
        assert record_gaps(conn, NQ_V0, START, END, [])["closed"] == 1  # bars came from elsewhere
        assert _gap_row(conn, gap)[0] == "filled"


def test_a_refused_source_notes_the_error_without_counting_an_attempt(market_db):
    gap = Gap(NQ_V0, to_ns("2025-11-24T14:30"), to_ns("2025-11-24T15:00"))
    with market_db.connect() as conn:
        record_gaps(conn, NQ_V0, START, END, [gap])
        note_error(conn, NQ_V0, from_ns(gap.start_ns), "Databento answered 401")
        assert _gap_row(conn, gap) == ("open", 0, "Databento answered 401")
