from __future__ import annotations

from market_backfill.sources.cache import drop_run_cache, run_cache_dir


def test_run_cache_dir_is_per_run_and_safe(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKET_BACKFILL_CACHE", str(tmp_path))
    path = run_cache_dir("ohlcv_reingest", "manual__2025-12-01T00:00:00+00:00/../x")
    assert path.parent == tmp_path
    assert "/" not in path.name
    assert path != run_cache_dir("ohlcv_reingest", "manual__2025-12-02T00:00:00+00:00")
    path.mkdir()
    drop_run_cache("ohlcv_reingest", "manual__2025-12-01T00:00:00+00:00/../x")
    assert not path.exists()


def test_without_the_variable_the_cache_is_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MARKET_BACKFILL_CACHE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert run_cache_dir("d", "r").parent == tmp_path / "cache" / "market_backfill"
