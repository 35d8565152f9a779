"""Issue 15's targets beside the figures of one ``run_all.py`` run: BENCHMARKS.md's first table.

:func:`targets_table` turns the run's figures (a mapping filled by the sections of
``run_all.py``; see :data:`FIGURES`) into one row per target: what issue 15 asks, the
figure measured in this run with the floor it is measured against, whether it is met,
and the section that holds the method. A figure the run did not measure (the
running-Airflow ones without ``--full``) is said to be missing, never taken from an
earlier run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

FIGURES = {
    "fixed_cost_runs": "(floor s, empty run s) per alternating `airflow dags test` pair",
    "year_runs": "(floor s, year run s) per alternating `airflow dags test` pair",
    "seed_year_s": "the seed method's seconds for the year's rows",
    "running_floor_s": "two years through a running Airflow: the floor DAG's median s",
    "running_ours_s": "the same: `ohlcv_reingest`'s median s",
    "running_seed_s": "the seed method's seconds for those rows",
    "running_pairs": "(floor s, ohlcv_reingest s) per alternating pair of those runs",
    "stages_s": "15 years x 4 symbols: wall s of each stage through a running Airflow",
    "stages_years": "the years of ``stages_s`` when not 15",
    "load_dag_ratio": "the DAG's code path / one COPY, rows/s",
    "load_inserter_ratio": "the inserter alone (two writers) / one COPY, rows/s",
    "triangles_bars_s": "triangles end to end, bars/s",
    "gap_runs": "(floor s, first scan s, rescan s) per alternating `airflow dags test` run",
    "features_bars_s": "features end to end, bars/s",
    "features_limit_bars_s": "the feature stage's writes as one COPY per table, bars/s",
    "peak_rss_mb": "peak RSS of each chunk task measured, MB, by task",
}
"""The figures :func:`targets_table` reads, each optional."""

FULL = "not measured in this run (`--full` measures it)"


class Row(NamedTuple):
    target: str
    measured: str
    met: str  # "yes", "no" or why there is no verdict
    section: str


def _verdict(ok: bool) -> str:
    return "yes" if ok else "no"


class AboveFloor(NamedTuple):
    """Runs of ours beside the floor's: the medians' difference, the floor's median and
    each run's difference with the floor's run beside it."""

    above: float
    floor: float
    paired: list[float]

    @property
    def paired_text(self) -> str:
        return ", ".join(f"{d:.2f}" for d in self.paired)


def _above_floor(runs: Sequence[Sequence[float]], column: int = 1) -> AboveFloor:
    """``runs[i][column]`` (ours) against ``runs[i][0]`` (the floor)."""
    floor = statistics.median(r[0] for r in runs)
    ours = statistics.median(r[column] for r in runs)
    return AboveFloor(ours - floor, floor, [r[column] - r[0] for r in runs])


def fixed_cost(f: Mapping[str, Any]) -> Row:
    """At most 1 s by the medians, and by the median of the paired differences."""
    target = "our fixed cost per run (`airflow dags test`, an empty run - the floor) at most 1 s"
    section = "Airflow's floor and our fixed cost"
    pairs = f.get("fixed_cost_runs")
    if not pairs:
        return Row(target, "-", "not measured", section)
    fixed = _above_floor(pairs)
    measured = f"{fixed.above:.2f} s (floor {fixed.floor:.1f} s; paired: {fixed.paired_text} s)"
    met = fixed.above <= 1 and statistics.median(fixed.paired) <= 1
    return Row(target, measured, _verdict(met), section)


def year_through_dags_test(f: Mapping[str, Any]) -> Row:
    target = (
        "a year through `airflow dags test`: the seed method at least 8x our time above the floor"
    )
    section = "Airflow's floor and our fixed cost"
    pairs, seed = f.get("year_runs"), f.get("seed_year_s")
    if not pairs or seed is None:
        return Row(target, "-", "not measured", section)
    year = _above_floor(pairs)
    above = year.above
    if above <= 0:
        return Row(
            target,
            f"year run {-above:.1f} s below the floor (seed method {seed:.1f} s)",
            "yes (within the floor's spread)",
            section,
        )
    return Row(
        target,
        f"{seed / above:.1f}x (above the floor {above:.2f} s, paired {year.paired_text} s; "
        f"seed method {seed:.1f} s)",
        _verdict(seed >= 8 * above),
        section,
    )


def running_two_years(f: Mapping[str, Any]) -> Row:
    target = (
        "two years through a running Airflow: the seed method at least 6x our time above the floor"
    )
    section = "Airflow's floor through a running Airflow"
    floor, ours, seed = (f.get(k) for k in ("running_floor_s", "running_ours_s", "running_seed_s"))
    if floor is None or ours is None or seed is None:
        return Row(target, "-", FULL, section)
    pairs = f.get("running_pairs")
    if pairs:  # judged on the largest paired difference: the medians' may be noise
        paired = _above_floor(pairs).paired
        worst = max(paired)
        text = ", ".join(f"{d:+.1f}" for d in paired)
        if worst <= 0:
            measured = (
                f"{ours:.1f} s against a floor of {floor:.1f} s, every run below its floor's "
                f"(paired {text} s)"
            )
            return Row(target, measured, "yes (within the floor's spread)", section)
        measured = (
            f"{seed / worst:.1f}x the largest paired difference ({ours:.1f} s against a floor "
            f"of {floor:.1f} s, paired {text} s; seed method {seed:.1f} s)"
        )
        return Row(target, measured, _verdict(seed >= 6 * worst), section)
    above = ours - floor
    if above <= 0:
        measured = f"{ours:.1f} s, {-above:.1f} s below the floor's {floor:.1f} s"
        return Row(target, measured, "yes (within the floor's spread)", section)
    measured = f"{seed / above:.1f}x ({ours:.1f} s against a floor of {floor:.1f} s)"
    return Row(target, measured, _verdict(seed >= 6 * above), section)


def every_stage(f: Mapping[str, Any]) -> Row:
    target = "15 years x 4 symbols, every stage through a running Airflow, at most 10 minutes"
    section = "Every stage through a running Airflow"
    stages: Mapping[str, float] | None = f.get("stages_s")
    if not stages:
        return Row(target, "-", FULL, section)
    total = sum(stages.values())
    years = f.get("stages_years", 15)
    if years != 15:
        return Row(target, f"{total:.0f} s for {years} years", "not measured at 15 years", section)
    each = ", ".join(f"`{k}` {v:.0f}" for k, v in stages.items())
    measured = f"{total:.0f} s ({total / 60:.1f} min: {each})"
    return Row(target, measured, _verdict(total <= 600), section)


def load(f: Mapping[str, Any]) -> Row:
    target = "the load in 500-row committed batches at least 0.8x one COPY (binary)"
    section = "Ingest; Insert strategies"
    dag, alone = f.get("load_dag_ratio"), f.get("load_inserter_ratio")
    if dag is None:
        return Row(target, "-", "not measured", section)
    measured = f"{dag:.2f}x (the DAG's code path)"
    if alone is not None:
        measured += f"; {alone:.2f}x (the inserter alone)"
    return Row(target, measured, _verdict(dag >= 0.8), section)


def _rate(target: str, section: str, value: float | None, at_least: float, extra: str = "") -> Row:
    if value is None:
        return Row(target, "-", "not measured", section)
    return Row(target, f"{value:,.0f} bars/s{extra}", _verdict(value >= at_least), section)


def triangles(f: Mapping[str, Any]) -> Row:
    return _rate(
        "triangles end to end at least 500,000 bars/s",
        "Triangles",
        f.get("triangles_bars_s"),
        500_000,
    )


def gap_scan(f: Mapping[str, Any]) -> Row:
    """At most 2 s above the floor for a history's first scan and for a rescan."""
    target = "a 15-year gap scan at most 2 s above the floor"
    section = "Gap scan through Airflow"
    runs = f.get("gap_runs")
    if not runs:
        return Row(target, "-", "not measured", section)
    first, rescan = _above_floor(runs, 1), _above_floor(runs, 2)
    measured = (
        f"first scan {first.above:.1f} s (paired {first.paired_text}), rescan "
        f"{rescan.above:.1f} s (paired {rescan.paired_text})"
    )
    return Row(target, measured, _verdict(first.above <= 2 and rescan.above <= 2), section)


def features(f: Mapping[str, Any]) -> Row:
    limit, floor = f.get("features_limit_bars_s"), f.get("features_floor_bars_s")
    parts = [] if limit is None else [f"its writes alone as one COPY: {limit:,.0f} bars/s"]
    if floor is not None:
        parts.append(f"the stage's floor on this machine by CPU seconds: {floor:,.0f} bars/s")
    extra = f" ({'; '.join(parts)})" if parts else ""
    return _rate(
        "features end to end at least 300,000 bars/s",
        "Features",
        f.get("features_bars_s"),
        300_000,
        extra,
    )


def memory(f: Mapping[str, Any]) -> Row:
    target = "peak RSS of a chunk task at most 300 MB"
    section = "Peak memory of a chunk task"
    peaks: Mapping[str, float] | None = f.get("peak_rss_mb")
    if not peaks:
        return Row(target, "-", "not measured", section)
    peak = max(peaks.values())
    each = ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
    return Row(target, f"{peak:.0f} MB ({each})", _verdict(peak <= 300), section)


TARGETS: tuple[Callable[[Mapping[str, Any]], Row], ...] = (
    fixed_cost,
    year_through_dags_test,
    running_two_years,
    every_stage,
    load,
    triangles,
    gap_scan,
    features,
    memory,
)
"""Issue 15's targets, in its order."""


def targets_table(figures: Mapping[str, Any]) -> list[str]:
    """The markdown table of every target of :data:`TARGETS` against ``figures``."""
    lines = ["| target | measured in this run | met | section |", "|---|---|---|---|"]
    for row in (target(figures) for target in TARGETS):
        lines.append(f"| {row.target} | {row.measured} | {row.met} | {row.section} |")
    return lines
