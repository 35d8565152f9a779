"""What a fresh interpreter has imported after running a few lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def loaded_after(setup: str, modules: Sequence[str]) -> list[str]:
    """The ``modules`` present in ``sys.modules`` after a new Python process runs
    ``setup`` (Python source)."""
    report = f"print(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    code = f"{setup}\nimport json, sys\n{report}\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def group_task_code(
    dag_id: str, params: Mapping[str, Any], chunk: Mapping[str, Any], body: str
) -> str:
    """Python source for :func:`loaded_after` that runs a mapped task's body as Airflow
    would: ``group`` (the mapped group of ``chunk``) and ``run`` (the task's
    ``RunContext``) are defined, then ``body`` runs."""
    return (
        "from market_backfill.airflow.context import RunContext\n"
        "from market_backfill.planning import group_chunks\n"
        f"group = group_chunks([{dict(chunk)!r}], 25)[0]\n"
        f"run = RunContext({dag_id!r}, 'import-check', {dict(params)!r})\n"
        f"{body}"
    )
