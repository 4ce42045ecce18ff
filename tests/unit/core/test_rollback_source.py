"""Which run `rollback NODE` undoes (core/rollback_source.py): the newest that planned the node, unless a
journey recorded the node since; then it refuses, naming the journey's run."""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.rollback_source import ROLLBACK_AFTER_JOURNEY, NodeRun, rollback_source

MIGRATION = NodeRun("r-migrate", journey=False, planned=True)
OLDER_MIGRATION = NodeRun("r-old", journey=False, planned=True)
JOURNEY = NodeRun("r-journey", journey=True, planned=False)
STOPPED_BEFORE_PREFLIGHT = NodeRun("r-stopped", journey=False, planned=False)


def test_the_newest_run_that_planned_the_node() -> None:
    assert rollback_source("w1", [STOPPED_BEFORE_PREFLIGHT, MIGRATION, OLDER_MIGRATION]) == "r-migrate"


def test_no_plan_recorded_is_none() -> None:
    assert rollback_source("w1", []) is None
    assert rollback_source("w1", [STOPPED_BEFORE_PREFLIGHT]) is None


@pytest.mark.parametrize("runs", [[JOURNEY, MIGRATION], [JOURNEY], [STOPPED_BEFORE_PREFLIGHT, JOURNEY, MIGRATION]])
def test_a_journey_since_the_plan_refuses(runs: list[NodeRun]) -> None:
    with pytest.raises(Refusal) as refused:
        rollback_source("w1", runs)
    assert refused.value.code == ROLLBACK_AFTER_JOURNEY
    assert refused.value.node == "w1"
    assert "r-journey" in str(refused.value)


def test_a_journey_before_the_plan_does_not_matter() -> None:
    assert rollback_source("w1", [MIGRATION, JOURNEY]) == "r-migrate"
