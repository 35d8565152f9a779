"""The symbol registry: every CME asset class preloaded, roots added by one command."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from market_backfill.registry import list_roots, main
from market_backfill.trading_calendar import trading_minutes

PRELOADED = {
    "equity index": ("ES", "NQ", "YM", "RTY", "MES", "MNQ"),
    "energy": ("CL", "NG", "RB", "HO"),
    "metals": ("GC", "SI", "HG"),
    "rates": ("ZN", "ZB", "ZF", "ZT", "SR3"),
    "fx": ("6E", "6J", "6B"),
    "agriculture": ("ZC", "ZS", "ZW"),
}
TUESDAY = (datetime(2025, 3, 11, tzinfo=UTC), datetime(2025, 3, 12, tzinfo=UTC))


def rows(db) -> dict[str, tuple]:
    with db.connect() as conn:
        found = conn.execute(
            "SELECT root, price_floor, calendar, tick_size, session_anchor FROM market_symbols"
        ).fetchall()
    return {r[0]: r[1:] for r in found}


def test_every_asset_class_is_preloaded_with_a_working_calendar(market_db):
    registry = rows(market_db)
    roots = [root for group in PRELOADED.values() for root in group]
    assert sorted(registry) == sorted(roots)
    for root in roots:
        floor, calendar, tick, anchor = registry[root]
        assert tick > 0, root
        # a Tuesday of trading on the root's own calendar (the grains pause 07:45-08:30 CT)
        minutes = len(trading_minutes(calendar, *TUESDAY))
        assert minutes == (1055 if root in PRELOADED["agriculture"] else 1380), root
        assert anchor == (
            "19:00 America/Chicago" if calendar == "CMEGlobex_Grains" else "18:00 America/New_York"
        )
    assert all(registry[r][0] is None for r in PRELOADED["energy"])  # may go negative
    assert registry["NQ"][0] == Decimal(1000)
    assert registry["ZN"][2] == Decimal("0.015625")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "market_backfill.registry", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_one_command_adds_a_root_and_refuses_a_bad_calendar(pg_db):
    url = pg_db.conninfo
    ok = cli(
        "add",
        "GLBX.MDP3:ZL",
        "--calendar",
        "CMEGlobex_Oilseeds",
        "--tick-size",
        "0.01",
        "--session-anchor",
        "19:00 America/Chicago",
        "--url",
        url,
    )
    assert ok.returncode == 0, ok.stderr
    assert "registered GLBX.MDP3:ZL" in ok.stdout
    assert rows(pg_db)["ZL"] == (
        Decimal(0),
        "CMEGlobex_Oilseeds",
        Decimal("0.01"),
        "19:00 America/Chicago",
    )

    bad = cli(
        "add", "GLBX.MDP3:ZM", "--calendar", "CME Globex Grains", "--tick-size", "0.1", "--url", url
    )
    assert bad.returncode == 2
    assert "unknown calendar 'CME Globex Grains'" in bad.stderr
    assert "CMEGlobex_Grains" in bad.stderr  # the suggestion
    assert "ZM" not in rows(pg_db)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tick-size", "0"], "tick_size must be positive"),
        (["--tick-size", "x"], "tick_size must be a number"),
        (["--tick-size", "1", "--session-anchor", "6pm New York"], "HH:MM Area/City"),
        (["--tick-size", "1", "--session-anchor", "18:00 Mars/Olympus"], "unknown time zone"),
        (["--tick-size", "1", "--rank", "-1"], "param 'rank'"),
    ],
)
def test_bad_settings_are_refused_before_any_write(args, message, capsys):
    assert (
        main(
            [
                "add",
                "GLBX.MDP3:ZM",
                "--calendar",
                "CMEGlobex_Grains",
                *args,
                "--url",
                "postgresql://nobody@192.0.2.1:1/x",
            ]
        )
        == 2
    )
    assert message in capsys.readouterr().err


def test_adding_again_replaces_the_settings_and_no_floor_means_null(pg_db):
    url = pg_db.conninfo
    mcl = ["add", "GLBX.MDP3:MCL", "--calendar", "CMEGlobex_Energy", "--tick-size", "0.01"]
    assert main([*mcl, "--url", url]) == 0
    assert rows(pg_db)["MCL"][0] == Decimal(0)
    assert main([*mcl, "--no-floor", "--url", url]) == 0
    assert rows(pg_db)["MCL"][0] is None
    import psycopg

    listed = list_roots(lambda: psycopg.connect(url))
    assert sum(1 for r in listed if r[0] == "GLBX.MDP3:MCL") == 1
