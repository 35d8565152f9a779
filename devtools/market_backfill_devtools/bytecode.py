"""The project's bytecode, written as ``pip install`` of the package would write it.

An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (this machine's environment)
leaves no ``.pyc`` files, so every Airflow task process would compile the package again
(about 0.3 s a task here). Benchmarks call :func:`compile_package` first, so they measure
the package as a deployment runs it.
"""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE_DIRS = ("include", "dags", "plugins")


def compile_package(root: Path) -> bool:
    """Write the bytecode of ``root``'s package, DAG and plugin folders (whatever
    ``sys.dont_write_bytecode`` says); True when every file compiled."""
    return all(
        compileall.compile_dir(root / name, quiet=1, force=False)
        for name in PACKAGE_DIRS
        if (root / name).is_dir()
    )
