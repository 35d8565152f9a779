"""What a fresh interpreter has imported after running a few lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence


def loaded_after(setup: str, modules: Sequence[str]) -> list[str]:
    """The ``modules`` present in ``sys.modules`` after a new Python process runs
    ``setup`` (Python source)."""
    report = f"print(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    code = f"{setup}\nimport json, sys\n{report}\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
