"""Console speed: the completeness heatmap of 60 series x 180 months, and what keeping
``bar_month_counts`` costs the bar writes.

    python bench/bench_console.py [--url postgresql://...] [--repeat 5]

A scratch database gets the registry's 24 roots as 60 series (roll rules v, c, n), 15
years of month counts each (``bar_month_counts`` as its triggers leave it after a full
load, shaped like a real history: 60 x 15 years of minute bars, 324M rows, would take
this machine hours to write) and 20,000 gaps. The console app is mounted as the
api-server mounts it, behind Airflow's real auth manager (a JWT in the ``_token``
cookie), and served by uvicorn. Measured:

* ``/api/completeness`` for all 10,800 cells: the first request of a process (calendars
  computed) and the median of the next ones;
* the page in headless Chromium (Debian's chromium and chromium-driver): from navigation
  to the heatmap drawn, and the share of that spent drawing;
* the writes: 200,000 bars in 500-row committed batches through the project's inserter,
  with and without the count triggers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = ROOT / ".local" / "bench-airflow"
os.environ.setdefault("AIRFLOW_HOME", str(AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{AIRFLOW_HOME}/airflow.db")

import bench_gaps  # noqa: E402 - beside this script
import bench_insert  # noqa: E402

from market_backfill_devtools import embedded  # noqa: E402

SERIES, MONTHS, GAPS = 60, 180, 20_000
FIRST_MONTH = date(2011, 1, 1)
NOW = datetime(2025, 12, 31, 23, tzinfo=UTC)  # 2011-01 .. 2025-12, the last one running


def fill(url: str) -> int:
    """Registry series x 180 months of counts shaped like a real history (most months whole,
    some short by a few minutes, a few with long holes) and GAPS gaps; the series count."""
    import numpy as np

    from market_backfill.console.queries import ExpectedMinutes, months_between
    from market_backfill.db.schema import apply_schema

    months = months_between(FIRST_MONTH, date(2025, 12, 1))
    rng = np.random.default_rng(13)
    calendars = ExpectedMinutes()  # not the app's: its first request computes them
    with psycopg.connect(url) as conn:
        apply_schema(conn)
        roots = conn.execute(
            "SELECT symbol, calendar FROM market_symbols ORDER BY symbol"
        ).fetchall()
        series = [(s, rule, cal) for rule in ("v", "c", "n") for s, cal in roots][:SERIES]
        rows = []
        for symbol, rule, calendar in series:
            expected = calendars.months(calendar, months, NOW)
            kind = rng.random(len(months))
            loss = np.where(
                kind < 0.6, 0, np.where(kind < 0.95, rng.integers(1, 40, len(months)), -1)
            )
            for m, lost in zip(months, loss.tolist(), strict=True):
                exp = expected[m]
                lost = int(exp * rng.uniform(0.03, 0.6)) if lost < 0 else lost
                rows.append((symbol, rule, 0, m, max(exp - lost, 0)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bar_month_counts (symbol, roll_rule, rank, month, bars) "
                "VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
        conn.execute(
            "INSERT INTO ohlcv_gaps (symbol, roll_rule, rank, gap_start, gap_end, minutes, status) "
            "SELECT s.symbol, s.rule, 0, t, t + interval '30 minutes', 30, "
            "(ARRAY['open', 'filled', 'unfillable'])[1 + (n %% 3)] "
            "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS s(symbol, rule, k), "
            "generate_series(1, %s) n, "
            "LATERAL (SELECT %s::timestamptz + (n * 2357 + k) * interval '7 minutes') g(t)",
            (
                [s for s, _, _ in series],
                [r for _, r, _ in series],
                GAPS // len(series),
                datetime(2011, 1, 3, tzinfo=UTC),
            ),
        )
        conn.commit()
    return len(series)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The console mounted at /market-backfill like the api-server does, under uvicorn in a
    thread, with Airflow's auth manager and a token for an admin."""

    def __init__(self, url: str) -> None:
        import uvicorn
        from airflow.api_fastapi.app import init_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi import FastAPI

        from market_backfill.console.app import create_app
        from market_backfill.console.mount import URL_PREFIX, LazyConsoleApp

        self.token = init_auth_manager().generate_jwt(
            SimpleAuthManagerUser(username="bench", role="admin")
        )
        server_app = FastAPI()
        server_app.mount(
            URL_PREFIX,
            LazyConsoleApp(lambda: create_app(lambda: psycopg.connect(url), clock=lambda: NOW)),
        )
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}{URL_PREFIX}/"
        self.server = uvicorn.Server(
            uvicorn.Config(server_app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def time_api(served: Served, repeat: int) -> tuple[float, float, int, int]:
    """(first request s, median of the next s, cells, JSON bytes)."""
    import httpx

    headers = {"Authorization": f"Bearer {served.token}"}
    times, size, cells = [], 0, 0
    with httpx.Client(timeout=120) as client:
        for _ in range(repeat + 1):
            started = time.perf_counter()
            resp = client.get(served.base + "api/completeness", headers=headers)
            times.append(time.perf_counter() - started)
            resp.raise_for_status()
            size, cells = len(resp.content), len(resp.json())
    return times[0], statistics.median(times[1:]), cells, size


def time_page(
    served: Served, repeat: int, screenshot: Path | None = None
) -> dict[str, float] | None:
    """Median ms from navigation to the heatmap drawn, the fetch and the drawing; None
    without Chromium."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--window-size=1600,1200",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(served.base + "openapi.json")  # the origin, to set the session cookie on
        driver.add_cookie({"name": "_token", "value": served.token, "path": "/"})
        runs = []
        for _ in range(repeat):
            driver.get(served.base)
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
            )
            body = driver.find_element(By.TAG_NAME, "body")
            cells = len(driver.find_elements(By.CSS_SELECTOR, "#heatmap td[data-month]"))
            assert cells == SERIES * MONTHS, cells
            runs.append(
                {
                    "navigation to heatmap drawn": float(
                        body.get_attribute("data-heatmap-ready-at")
                    ),
                    "completeness request": float(body.get_attribute("data-completeness-fetch-ms")),
                    "drawing the heatmap": float(body.get_attribute("data-heatmap-render-ms")),
                }
            )
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        driver.quit()


def time_writes(url: str, repeat: int) -> tuple[float, float]:
    """(rows/s with the count triggers, rows/s without) for 200,000 bars: runs alternate
    between the two, so the machine's drift weighs on both alike."""
    frame = bench_insert.bar_frame(200_000)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeat):
        for counted in (True, False):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE market_bars_ohlcv_1m_clean")
                switch = "ENABLE" if counted else "DISABLE"
                conn.execute(f"ALTER TABLE market_bars_ohlcv_1m_clean {switch} TRIGGER USER")
            started = time.perf_counter()
            bench_insert.inserter(url, frame)
            times[counted].append(time.perf_counter() - started)
    return tuple(len(frame) / statistics.median(times[k]) for k in (True, False))


def report(admin: str, repeat: int, screenshot: Path | None = None) -> list[str]:
    """The section of BENCHMARKS.md."""
    if not (AIRFLOW_HOME / "airflow.db").exists():
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
    with bench_gaps.scratch_database(admin, "bench_console") as url:
        # in a process of its own: the served app's first request starts cold
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            n_series = pool.apply(fill, (url,))
        with Served(url) as served:
            first, warm, cells, size = time_api(served, repeat)
            page = time_page(served, repeat, screenshot)
        with_counts, without = time_writes(url, repeat)
    lines = [
        f"{n_series} series x {MONTHS} months ({cells:,} cells, {size / 1e6:.1f} MB of JSON), "
        f"{GAPS:,} gaps, the registry's calendars; the console app behind Airflow's auth "
        "manager under uvicorn.",
        "",
        "| what | ms |",
        "|---|---:|",
        f"| `/api/completeness`, first request of the process (calendars computed) | "
        f"{first * 1000:,.0f} |",
        f"| `/api/completeness`, next requests (median of {repeat}) | {warm * 1000:,.0f} |",
    ]
    if page is None:
        lines.append("| the page in Chromium | not measured: no chromium on this machine |")
    else:
        lines += [f"| page: {k} (median of {repeat}) | {v:,.0f} |" for k, v in page.items()]
    lines += [
        "",
        "Target (issue 13): 60 series x 180 months render in under a second.",
        "",
        "The count triggers' cost on writes (200,000 bars, 500-row committed batches "
        f"through the inserter, runs alternating, median of {repeat} each): "
        f"{with_counts:,.0f} rows/s with them, {without:,.0f} rows/s without "
        f"({with_counts / without:.2f}x).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the section here (run_all.py)")
    parser.add_argument("--screenshot", type=Path, help="save the page as drawn (PNG)")
    args = parser.parse_args()
    admin = embedded.server_url(args.url, ROOT / ".local" / "bench-pgdata")
    text = "\n".join(report(admin, args.repeat, args.screenshot))
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
