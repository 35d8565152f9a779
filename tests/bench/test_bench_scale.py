"""``bench/bench_scale.py``'s flags as the README states them: ``--writers`` reaches the
three chunk stages, ``--stages`` names stages in order, each floor maps as many tasks as
its stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench_scripts import bench_module

scale = bench_module("bench_scale")

DATES = {"start": "2011-01-01", "end": "2025-12-31"}


def test_writers_reach_the_three_chunk_stages_and_not_the_gap_scan():
    confs = scale.stage_confs(DATES, Path("/data"), ["ES", "NQ"], {"writers": 1})
    for dag_id in ("ohlcv_reingest", "triangle_backfill", "feature_backfill"):
        assert confs[dag_id]["writers"] == 1
    assert "writers" not in confs["gap_detection"]
    assert confs["gap_detection"]["repair"] is False
    defaults = scale.stage_confs(DATES, Path("/data"), ["ES", "NQ"])
    assert not any("writers" in conf for conf in defaults.values())


def test_each_stage_runs_the_dates_and_symbols_and_reingest_reads_the_files():
    confs = scale.stage_confs(DATES, Path("/data"), ["ES", "NQ"])
    for dag_id in scale.STAGES:
        assert confs[dag_id]["symbols"] == ["GLBX.MDP3:ES", "GLBX.MDP3:NQ"]
        assert (confs[dag_id]["start"], confs[dag_id]["end"]) == ("2011-01-01", "2025-12-31")
    assert confs["ohlcv_reingest"]["source"] == "dbn_file"
    assert confs["ohlcv_reingest"]["dbn_path"] == "/data/*.dbn.zst"


def test_each_floor_maps_as_many_tasks_as_its_stage():
    confs = scale.stage_confs(DATES, Path("/data"), ["ES", "NQ", "YM"])
    for floor_id in ("floor_reingest", "floor_triangles", "floor_features"):
        assert confs[floor_id] == {"months": 180}
    assert confs["floor_gaps"] == {"symbols": 3}
    assert set(scale.STAGE_FLOORS.values()) <= set(confs)
    one_month = scale.stage_confs({"start": "2025-12-01", "end": "2025-12-31"}, Path("/d"), ["NQ"])
    assert one_month["floor_reingest"] == {"months": 1}


def test_stages_are_run_in_the_order_given():
    assert scale.parse_stages("triangle_backfill,ohlcv_reingest") == (
        "triangle_backfill",
        "ohlcv_reingest",
    )
    assert scale.parse_stages(",".join(scale.STAGES)) == scale.STAGES
    with pytest.raises(ValueError, match="unknown stages \\['triangles'\\]"):
        scale.parse_stages("ohlcv_reingest,triangles")


def test_zero_years_skips_the_deep_history(tmp_path):
    """README: ``--years 0`` skips that part (no files written, no stack started)."""
    assert scale.deep_history(None, 0, ["local"], tmp_path) == ([], {})
    assert list(tmp_path.iterdir()) == []
