"""A run killed with SIGKILL at each step boundary, then `migrate --resume`, ends exactly where an
uninterrupted run ends.

Matrix: one worker; for every step of the per-node machine, the kill lands right after the journal
records the step as finished (the next step may already have begun: that is a crash mid-step too).
Each case rolls the node back afterwards with the tool's own rollback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.core.steps import MIGRATION_STEPS, Step

from .helpers import (
    assert_on_cri_dockerd,
    back_to_dockershim,
    run_finished,
    run_until_then_kill,
    shimshift,
)

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e

# The last step's boundary is the end of the run: nothing is left to resume there.
BOUNDARIES = [step for step in MIGRATION_STEPS if step is not Step.UNCORDON]
DRAIN_FLAGS = ["--force", "--delete-emptydir-data"]


@pytest.mark.parametrize("step", BOUNDARIES, ids=[str(step) for step in BOUNDARIES])
def test_sigkill_then_resume(lab: LabInfo, tmp_path: Path, step: Step) -> None:
    node = lab.workers[0].name
    # After the last steps little work is left (uncordon takes ~50 ms), so the kill can land after
    # the run ended; then the node is put back and the kill tried again, a few times at most.
    for attempt in range(4):
        journal = tmp_path / f"journal-{attempt}.sqlite"
        killed = run_until_then_kill(
            lab, journal, ["migrate", node, *DRAIN_FLAGS], node=node, step=str(step), phase="finished"
        )
        assert killed < 0, f"shimshift was not killed (exit {killed})"
        if not run_finished(journal):
            break
        back_to_dockershim(lab, journal, node)
    else:
        pytest.fail(f"the run always ended before the kill after {step} landed")
    try:
        resumed = shimshift(lab, journal, "migrate", "--resume")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert_on_cri_dockerd(lab, node)
        status = shimshift(lab, journal, "status")
        assert f"{node}: uncordon finished" in status.stdout
    finally:
        back_to_dockershim(lab, journal, node)
