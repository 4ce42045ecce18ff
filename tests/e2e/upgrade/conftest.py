"""Fixtures of the upgrade's end-to-end tests: a fresh 1.23.17 dockershim lab, prepared for the upgrade.

An upgraded lab cannot go back to 1.23 (kubeadm upgrade apply is never undone), and `lab status` calls
a lab whose nodes or API server run another release unfit for reuse, so each module's `upgrade_lab`
gets a lab as `lab up` makes it: the session's if it is still 1.23 on dockershim, a rebuilt one (about
two minutes warm) otherwise. The lab's upgrade artifacts are built first on a cold cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from shimshift.lab.lock import LabLock
from shimshift.lab.model import LabInfo
from shimshift.lab.upgrade_prep import prepare_upgrade
from tests.e2e.conftest import LAB_DIR, _progress, ensure_lab

TARGET = "1.24.17"
DRAIN_FLAGS = ("--force", "--delete-emptydir-data")


@dataclass(frozen=True)
class UpgradeLab:
    lab: LabInfo
    binaries: Path

    def upgrade_args(self, *extra: str, binaries: Path | None = None) -> list[str]:
        directory = binaries or self.binaries
        return ["--to", TARGET, "--binaries", str(directory), *DRAIN_FLAGS, *extra]


@pytest.fixture(scope="module")
def upgrade_lab(lab_lock: LabLock) -> UpgradeLab:
    info = ensure_lab(lab_lock)
    try:
        prepared = prepare_upgrade(directory=LAB_DIR, progress=_progress)
    except Exception as e:  # any failure must become a test failure, never a skip
        pytest.fail(f"the lab could not be prepared for the upgrade: {type(e).__name__}: {e}", pytrace=False)
    return UpgradeLab(info, prepared.artifacts.bin_dir)
