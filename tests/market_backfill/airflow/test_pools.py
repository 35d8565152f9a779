"""The project's pools: created when missing, an operator's size kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from market_backfill.airflow.pools import POOLS

pytestmark = pytest.mark.airflow


def _pools_cli() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "market_backfill.airflow.pools"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return out.stdout


def _slots() -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "list", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=300,
    )
    import json

    return {p["pool"]: int(p["slots"]) for p in json.loads(out.stdout)}


def test_pools_are_created_once_and_resizing_survives(airflow_db):
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "delete", "databento"],
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert "pools created: ['databento']" in _pools_cli()
    assert _slots()["databento"] == POOLS["databento"].slots
    assert _slots()["market_db"] == POOLS["market_db"].slots
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "set", "databento", "9", "resized"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert "pools created: none" in _pools_cli()
    assert _slots()["databento"] == 9
