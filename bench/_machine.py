"""What a benchmark says about where it ran: the machine's cores and load average, and
which CPython ran it, how it was built and how fast it is."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

# A fixed pure-Python workload (dict, sort, comprehension): how fast the interpreter is.
# Build flags do not always tell (Debian builds its python3 with PGO and LTO through its
# own rules, and its sysconfig shows neither), so the bench times it.
SPEED_SETUP = "d = {str(i): i for i in range(100)}"
SPEED_STMT = "sorted(d.items(), key=lambda kv: kv[1]); [x * 2 for x in range(200)]"


def machine(load_before: tuple[float, float, float]) -> str:
    """The cores and the load average (1, 5, 15 min) before the run and now: the machine
    is shared, and the ratios within one run are what a loaded machine leaves honest."""
    now = os.getloadavg()
    return (
        f"{os.cpu_count()} cores; load average before {'/'.join(f'{x:.2f}' for x in load_before)}"
        f", after {'/'.join(f'{x:.2f}' for x in now)} (1/5/15 min)"
    )


def python_speed(python: str) -> float:
    """Microseconds per loop of the fixed workload on ``python`` (best of 5)."""
    code = (
        "import timeit; "
        f"print(min(timeit.repeat({SPEED_STMT!r}, {SPEED_SETUP!r}, number=20000, repeat=5)))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout) / 20000 * 1e6


def cpython(reference: str | None) -> str:
    """Which CPython ran the bench, its configure flags and its measured speed (and a
    reference interpreter's, for comparison: the two timed in turn, five times each, the
    best of each kept, so a burst of load elsewhere does not decide the comparison)."""
    args = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    flags = [f for f in ("--enable-optimizations", "--with-lto") if f in args]
    built = ", ".join(flags) if flags else "neither --enable-optimizations nor --with-lto"
    pythons = [sys.executable, *([reference] if reference else [])]
    rounds = [[python_speed(python) for python in pythons] for _ in range(5)]
    speeds = [min(runs) for runs in zip(*rounds, strict=True)]
    line = (
        f"CPython {sys.version.split()[0]} ({sys.executable}); configured with {built}; "
        f"fixed pure-Python loop {speeds[0]:.1f} µs"
    )
    if reference:
        line += f"; {reference}: {speeds[1]:.1f} µs ({speeds[1] / speeds[0]:.2f}x as long)"
    return line
