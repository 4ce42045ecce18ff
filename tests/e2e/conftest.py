"""End-to-end fixtures: one lab per test session, reused when a healthy one with the same spec runs.

`lab` (session): a LabInfo for a healthy lab (1 control plane + 2 workers, cri-dockerd running),
reused if `shimshift lab status` would call it healthy, otherwise rebuilt (down, then up). If it
cannot be had, every e2e test FAILS with the reason: never a skip (issue 2).

`node_state` (function): tests that change a node take `node_state.capture(name)` before and call
`node_state.assert_as_found(name)` (or let the fixture check at teardown every node they captured):
the node must come back exactly as it was (kubelet command line, kubeadm-flags.env, drop-ins,
annotation, cri-dockerd state, Ready).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.lab import cluster, state
from shimshift.lab.model import DEFAULT_DIRECTORY, CriDockerdMode, LabInfo, LabSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

LAB_DIR = Path(os.environ.get("SHIMSHIFT_LAB_DIR", str(DEFAULT_DIRECTORY)))
DEFAULT_SPEC = LabSpec(workers=2, cri_dockerd=CriDockerdMode.RUNNING)


def _progress(message: str) -> None:
    # pytest captures stdout; the lab's progress is useful in CI logs when a session starts cold.
    sys.stderr.write(f"[lab] {message}\n")


@pytest.fixture(scope="session")
def lab() -> LabInfo:
    started = time.monotonic()
    try:
        info, reused = cluster.ensure(spec=DEFAULT_SPEC, directory=LAB_DIR, progress=_progress)
    except Exception as e:  # any failure must become a test failure, never a skip
        pytest.fail(f"the lab could not be brought up: {type(e).__name__}: {e}", pytrace=False)
    _progress(
        f"lab {'reused' if reused else 'built'} in {time.monotonic() - started:.0f}s at {info.directory}"
    )
    return info


@pytest.fixture
def node_state(lab: LabInfo) -> Iterator[state.NodeStateGuard]:
    guard = state.NodeStateGuard(lab)
    yield guard
    guard.assert_all_as_found()
