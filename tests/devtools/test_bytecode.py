"""The benchmarks' bytecode step writes .pyc files even where Python is told not to."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from market_backfill_devtools.bytecode import compile_package


def test_compile_package_writes_the_bytecode_a_fresh_process_then_loads(tmp_path):
    (tmp_path / "include" / "pkg").mkdir(parents=True)
    (tmp_path / "include" / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "one.py").write_text("X = 1\n")
    assert compile_package(tmp_path)
    cached = importlib.util.cache_from_source(str(tmp_path / "include" / "pkg" / "__init__.py"))
    assert (tmp_path / "include" / "pkg" / "__pycache__").is_dir()
    assert cached.endswith(".pyc")
    # the source changes under the same size and mtime: a process that may not write
    # bytecode (-B) still reads the .pyc, so it sees the compiled value
    source = tmp_path / "include" / "pkg" / "__init__.py"
    stamp = source.stat()
    source.write_text("VALUE = 43\n")
    os.utime(source, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    code = "import pkg; print(pkg.__spec__.cached, pkg.VALUE)"
    out = subprocess.run(
        [sys.executable, "-B", "-c", code],
        cwd=tmp_path / "include",
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == [cached, "42"]
    (tmp_path / "dags" / "bad.py").write_text("def broken(:\n")
    assert not compile_package(tmp_path)
