"""End-to-end fixtures: one lab per test session, reused when a healthy one with the same spec runs.

`lab` (module): a LabInfo for a healthy lab (1 control plane + 2 workers, cri-dockerd running), as `lab up`
made it (no node cordoned or migrated, no run holding the Lease), reused if so, otherwise rebuilt (down,
then up). If it cannot be had, every e2e test FAILS with the reason: never a skip.

The lab is locked (shimshift.lab.lock): exclusively while it is checked or rebuilt, shared for the
rest of the session, so concurrent sessions from several checkouts do not rebuild it under each other.

`lab_binaries` (session): the Kubernetes and cri-dockerd binaries alone, for tests that run them without a
lab (the API-server fixture, the CRI client tests); built first if the cache is cold.

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

from shimshift.lab import cluster, images, state
from shimshift.lab.lock import LabLock
from shimshift.lab.model import DEFAULT_DIRECTORY, CriDockerdMode, LabInfo, LabSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

LAB_DIR = Path(os.environ.get("SHIMSHIFT_LAB_DIR", str(DEFAULT_DIRECTORY)))
# The release a session runs against: 1.23.17 unless SHIMSHIFT_LAB_VERSION names another (the long suite's
# per-release sessions). A running lab of another release is taken down and this one built (LabSpec
# carries the version, so the reuse check sees the difference).
DEFAULT_SPEC = LabSpec(
    workers=2, cri_dockerd=CriDockerdMode.RUNNING, version=os.environ.get("SHIMSHIFT_LAB_VERSION", "v1.23.17")
)
# How long a session waits for another one to finish with the lab.
LOCK_TIMEOUT = float(os.environ.get("SHIMSHIFT_LAB_LOCK_TIMEOUT", "2400"))


def _progress(message: str) -> None:
    # pytest captures stdout; the lab's progress is useful in CI logs when a session starts cold.
    sys.stderr.write(f"[lab] {message}\n")


@pytest.fixture(scope="session")
def lab_binaries() -> images.LabBinaries:
    """Kubernetes v1.23.17 and cri-dockerd built on this machine, built now if the cache is cold.

    The API-server fixture and the CRI tests run these binaries without a lab, and pytest may reach them
    before any test brings the lab up: they must not depend on the lab having built them.
    Warm, this is a few file checks. A failed build FAILS the tests that need it, never skips them.
    """
    try:
        return images.ensure_binaries(progress=_progress, kubelet_next=False)
    except Exception as e:  # any failure must become a test failure, never a skip
        pytest.fail(f"the lab binaries could not be built: {type(e).__name__}: {e}", pytrace=False)


@pytest.fixture(scope="session")
def lab_lock() -> Iterator[LabLock]:
    """The session's hold on the lab: shared while tests run, exclusive while it is checked or rebuilt."""
    lock = LabLock(LAB_DIR, timeout=LOCK_TIMEOUT, on_wait=_progress)
    yield lock
    lock.release()


def ensure_lab(lock: LabLock, spec: LabSpec = DEFAULT_SPEC) -> LabInfo:
    """A healthy lab of ``spec`` (reused, or rebuilt under the exclusive lock), then shared again."""
    started = time.monotonic()
    try:
        info, reused = cluster.ensure(spec=spec, directory=LAB_DIR, progress=_progress, lock=lock)
        lock.acquire(exclusive=False)
    except Exception as e:  # any failure must become a test failure, never a skip
        lock.release()
        pytest.fail(f"the lab could not be brought up: {type(e).__name__}: {e}", pytrace=False)
    _progress(f"lab {'reused' if reused else 'built'} in {time.monotonic() - started:.0f}s at {info.directory}")
    return info


@pytest.fixture(scope="module")
def lab(lab_lock: LabLock) -> LabInfo:
    # Checked at the start of every module, not once a session: a module whose test failed half-way (a
    # node left cordoned or migrated, a killed run's Lease held) must not make every module after it fail
    # too. A lab as `lab up` made it is reused (a few seconds); any other is rebuilt, and says why.
    # Exclusive while deciding to reuse or rebuild, then shared: another session (another worktree's
    # tests) waits instead of tearing this lab down mid-test.
    return ensure_lab(lab_lock)


# The upgrade's modules (the ones that use `upgrade_lab`, tests/e2e/upgrade/conftest.py) leave the lab
# upgraded: a lab module after them would have to rebuild it (two minutes). By name they come last; this
# keeps them last whatever order a command line names them in.
UPGRADES_THE_LAB = "upgrade_lab"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: UPGRADES_THE_LAB in getattr(item, "fixturenames", ()))  # stable: order kept


@pytest.fixture
def node_state(lab: LabInfo) -> Iterator[state.NodeStateGuard]:
    guard = state.NodeStateGuard(lab)
    yield guard
    guard.assert_all_as_found()
