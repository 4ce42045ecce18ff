"""The fleet bench's CPU figures: /proc read for real processes, shares over the level's wall time."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.fleet_bench import cpu_seconds, cpu_shares


def test_a_busy_process_shows_cpu_time_by_its_program_name() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.3\n"
                             "while time.process_time() < end: pass\ntime.sleep(30)"])
    try:
        for _ in range(200):
            used = cpu_seconds([busy])
            if used[next(iter(used))] >= 0.3:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        (name,) = used
        assert name.startswith("python")
        assert 0.3 <= used[name] < 5
    finally:
        busy.kill()
        busy.wait()


def test_shares_are_of_one_core_over_the_run_and_include_the_migration() -> None:
    record = {"start": 100.0, "end": 110.0, "cpu_before": {"kube-apiserver": 50.0, "kwok": 1.0},
              "cpu_after": {"kube-apiserver": 58.0, "kwok": 2.0}, "child_cpu": 3.0}
    assert cpu_shares(record) == "kube-apiserver 80%, shimshift (the migration) 30%, kwok 10%; all 120%"
