from __future__ import annotations

from pathlib import Path

from market_backfill.sources.cache import data_dir, response_cache_dir


def test_the_data_directory_is_the_setting_else_under_airflow_home(tmp_path):
    assert data_dir({"MARKET_BACKFILL_DATA_DIR": str(tmp_path)}) == tmp_path
    assert data_dir({"AIRFLOW_HOME": "/opt/airflow"}) == Path("/opt/airflow/market_backfill_data")
    # Airflow's own default home when AIRFLOW_HOME is not set: a lasting, shared place
    assert data_dir({}) == Path.home() / "airflow" / "market_backfill_data"
    assert response_cache_dir({"MARKET_BACKFILL_DATA_DIR": str(tmp_path)}) == (
        tmp_path / "databento" / "responses"
    )


def test_repair_responses_are_kept_per_run_and_pruned_after_a_week(tmp_path):
    import os
    import time

    from market_backfill.sources.cache import prune_repair_caches, repair_cache_dir

    env = {"MARKET_BACKFILL_DATA_DIR": str(tmp_path)}
    run = repair_cache_dir("scheduled__2026-11-27T00:00:00+00:00", env)
    assert run == tmp_path / "databento" / "repairs" / "scheduled__2026-11-27T00_00_00_00_00"
    assert prune_repair_caches(env) == 0  # nothing kept yet
    old, new = repair_cache_dir("old", env), repair_cache_dir("new", env)
    for folder in (old, new):
        folder.mkdir(parents=True)
        (folder / "response.dbn.zst").write_bytes(b"x")
    week_ago = time.time() - 8 * 86_400
    os.utime(old, (week_ago, week_ago))
    assert prune_repair_caches(env) == 1
    assert (not old.exists(), new.exists()) == (True, True)


def test_a_file_is_on_disk_before_it_is_renamed_into_place(tmp_path, monkeypatch):
    """:func:`durable_replace` flushes the file, renames it, then flushes the folder that
    holds the rename: a crash at any point leaves the target absent or whole. The order is
    read from the real calls (the files each ``fsync`` was given, through ``/proc``)."""
    import os

    from market_backfill.sources.cache import durable_replace

    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", f"{src} -> {dst}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    folder = tmp_path / "kept"
    folder.mkdir()
    partial, target = tmp_path / "a.part", folder / "a.dbn.zst"
    partial.write_bytes(b"response")
    durable_replace(partial, target)
    assert calls == [
        ("fsync", str(partial)),
        ("replace", f"{partial} -> {target}"),
        ("fsync", str(folder)),
    ]
    assert target.read_bytes() == b"response"
    assert not partial.exists()
