"""A `migrate --all` run killed with SIGKILL at each step boundary, then `migrate --resume`, ends exactly
where an uninterrupted run ends: every node migrated, none left cordoned.

Matrix: the whole lab selected with `--all`, the way operators run it; for every step of the per-node
machine, the kill lands right after the journal records that step as finished on the first node of the
run (the control plane: it goes first), when that node's files and annotation may already say
cri-dockerd and the workers have not started. The next step may already have begun: that is a crash
mid-step too. Each case puts every node back on dockershim afterwards with the tool's own rollback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.core.steps import MIGRATION_STEPS, Step

from .helpers import (
    assert_on_cri_dockerd,
    back_to_dockershim,
    canary_pods,
    run_finished,
    run_until_then_kill,
    shimshift,
)

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e

# The last step's boundary is the end of the node's run: the kill then lands on the workers' steps.
BOUNDARIES = [step for step in MIGRATION_STEPS if step is not Step.UNCORDON]
DRAIN_FLAGS = ["--force", "--delete-emptydir-data"]


@pytest.mark.parametrize("step", BOUNDARIES, ids=[str(step) for step in BOUNDARIES])
def test_sigkill_of_an_all_run_then_resume(lab: LabInfo, tmp_path: Path, step: Step) -> None:
    first = lab.control_plane.name
    names = [node.name for node in lab.nodes]
    journal = tmp_path / "journal.sqlite"
    try:
        # The workers are still to come when the first node's step ends, so the run cannot end first.
        killed = run_until_then_kill(
            lab, journal, ["migrate", "--all", *DRAIN_FLAGS], node=first, step=str(step), phase="finished"
        )
        assert killed < 0, f"shimshift was not killed (exit {killed})"
        assert not run_finished(journal)
        resumed = shimshift(lab, journal, "migrate", "--resume")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        for name in names:
            assert_on_cri_dockerd(lab, name)  # also: not cordoned
        status = shimshift(lab, journal, "status")
        for name in names:
            assert f"{name}: uncordon finished" in status.stdout, status.stdout
        assert canary_pods(lab) == []
    finally:
        for name in names:
            back_to_dockershim(lab, journal, name)
