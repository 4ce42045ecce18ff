"""The fleet bench's CPU figures: /proc read for real processes, shares over the level's wall time."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.fleet_bench import cpu_seconds, cpu_shares

BURN = 0.6  # CPU seconds the child burns, by its own clock (nanoseconds)
SEEN = 0.3  # what /proc must show: utime and stime are whole clock ticks, each rounded down, so the sum
#             can trail the child's own clock by up to two ticks; asserting half of what was burnt holds
#             by construction, at any tick rate and however busy the machine is.


def test_a_busy_process_shows_cpu_time_by_its_program_name() -> None:
    busy = subprocess.Popen([sys.executable, "-c", f"import time\nend = time.process_time() + {BURN}\n"
                             "while time.process_time() < end: pass\nprint(flush=True)\ntime.sleep(30)"],
                            stdout=subprocess.PIPE)
    try:
        assert busy.stdout is not None
        busy.stdout.readline()  # the child says when it has burnt BURN seconds: no polling, no deadline
        used = cpu_seconds([busy])
        (name,) = used
        assert name.startswith("python")
        assert SEEN <= used[name] < BURN + 5
    finally:
        busy.kill()
        busy.wait()


def test_shares_are_of_one_core_over_the_run_and_include_the_migration() -> None:
    record = {"start": 100.0, "end": 110.0, "cpu_before": {"kube-apiserver": 50.0, "kwok": 1.0},
              "cpu_after": {"kube-apiserver": 58.0, "kwok": 2.0}, "child_cpu": 3.0}
    assert cpu_shares(record) == "kube-apiserver 80%, shimshift (the migration) 30%, kwok 10%; all 120%"
