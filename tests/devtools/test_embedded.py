"""The embedded PostgreSQL's URL helper, as the benchmarks use it."""

from __future__ import annotations

from pathlib import Path

import psycopg

from market_backfill_devtools import embedded


def test_a_given_url_is_used_and_nothing_is_started(tmp_path: Path):
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    assert embedded.server_url(url, tmp_path / "pgdata") == url
    assert not (tmp_path / "pgdata").exists()


def test_without_a_url_the_embedded_server_starts_and_answers(tmp_path: Path):
    pgdata = tmp_path / "pgdata"
    url = embedded.server_url(None, pgdata)
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert embedded.server_url(None, pgdata) == url  # attached to, not started twice
    finally:
        embedded.start(pgdata).stop()
