"""The benchmark scripts of ``bench/`` as modules, for tests of their pure parts.

``bench/`` is a folder of scripts, not a package: each is loaded by path under its own
name (the scripts import each other by name, as Python's path holds their folder when
they run).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import ROOT

BENCH = ROOT / "bench"


def bench_module(name: str) -> ModuleType:
    """``bench/<name>.py``, loaded once per session."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
