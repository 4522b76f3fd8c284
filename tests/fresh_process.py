"""Run a function of a test module in a new Python process and return what it printed last.

Resident-memory soaks measure the process they run in; inside a long pytest run that process also
holds every earlier test's threads, sessions and allocator state, which moved the reading by
megabytes (a soak failed at +2.2 MB in the full suite, +0.3 MB alone). A fresh process measures
mnn-run's loop and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
STATM = Path("/proc/self/statm")


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc)."""
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_soak(module: str, function: str, *args: str) -> str:
    """:func:`run_fresh` for a soak that reads :func:`resident_bytes`; skips where /proc has no statm."""
    if not STATM.exists():
        pytest.skip("no /proc/self/statm to read resident memory from on this system")
    return run_fresh(module, function, *args)


def run_fresh(module: str, function: str, *args: str, timeout: float = 600.0) -> str:
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import {module}; "
            f"print({module}.{function}(*sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]
