"""The journey's stages (core/journey/stages.py): barriers alone, drains of a stage together.

Matrix: 1.23 -> 1.37.2 under both skews (which operations are barriers, which drains share a stage); random
fleets (hypothesis, the schedule's own strategy): the stages concatenated are the sequence, every stage's
drains are on distinct nodes, no operation comes before the barrier before it, and resume from any subset
of a stage's finished drains reaches the same end; old journals (a prefix of the sequence finished) resume
as they did; a journal of another journey is refused; a stage's phases: control plane one at a time, then
workers within --max-unavailable."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shimshift.core.errors import Refusal
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.sequence import KubeadmUpgrade, NodeDrain, Operation, journey_sequence
from shimshift.core.journey.skew import SkewRules
from shimshift.core.journey.stages import Stage, drain_phases, journey_stages, stage_resume
from shimshift.core.versions import KubernetesVersion
from tests.unit.core.journey.test_schedule import fleets
from tests.unit.core.journey.test_sequence import FLEET, v


def sequence(rules: SkewRules) -> tuple[Operation, ...]:
    return journey_sequence(plan_journey(FLEET, control_plane=v(23), target=v(37, 2), rules=rules))


def check_stages(ops: tuple[Operation, ...], stages: tuple[Stage, ...]) -> None:
    assert tuple(op for stage in stages for op in stage.operations) == ops
    for stage in stages:
        if stage.drains:
            nodes = [op.node for op in stage.operations if isinstance(op, NodeDrain)]
            assert len(nodes) == len(stage.operations) == len(set(nodes))
            assert all(
                isinstance(op, NodeDrain) and (op.kubeadm is None or not op.control_plane) for op in stage.operations
            )
        else:
            assert len(stage.operations) == 1


def run_to_the_end(stages: tuple[Stage, ...], finished: set[str], rng: random.Random) -> list[str]:
    """Play a run from ``finished``: each resume finishes a random subset of the pending operations of its
    stage (a run killed mid-stage), until done. Returns the keys in the order they finished."""
    order: list[str] = []
    done = set(finished)
    while (point := stage_resume(stages, finished=done)).stage < len(stages):
        assert point.done == len(done)
        pending = [op.key for op in point.pending]
        assert pending and all(key not in done for key in pending)
        if not stages[point.stage].drains:
            assert len(pending) == 1
        chosen = rng.sample(pending, rng.randint(1, len(pending)))
        order += chosen
        done |= set(chosen)
    return order


@pytest.mark.parametrize("rules", list(SkewRules))
def test_kubeadm_steps_are_barriers_and_drains_between_them_share_a_stage(rules: SkewRules) -> None:
    ops = sequence(rules)
    stages = journey_stages(ops)
    check_stages(ops, stages)
    for stage in stages:
        if any(
            isinstance(op, KubeadmUpgrade) or (isinstance(op, NodeDrain) and op.kubeadm and op.control_plane)
            for op in stage.operations
        ):
            assert not stage.drains
    together = [[op.node for op in stage.operations if isinstance(op, NodeDrain)] for stage in stages if stage.drains]
    # The first drains migrate and hold the node's kubeadm: the control-plane nodes' alone, the workers' together
    # (as kubeadm's guide does it; under --skew kubernetes cp1's first drain holds no kubeadm, its apply being
    # forced, and joins them); after them all four nodes drain together at every stop.
    assert together[0] == (["w1", "w2", "cp1"] if rules is SkewRules.KUBERNETES else ["w1", "w2"])
    assert all(nodes == ["cp1", "cp2", "w1", "w2"] for nodes in together[1:]) and len(together) > 1


@settings(max_examples=150, deadline=None)
@given(fleets(), st.randoms(use_true_random=False))
def test_stages_are_the_sequence_on_distinct_nodes_and_any_resume_reaches_the_same_end(
    case: tuple[list[JourneyNode], KubernetesVersion, KubernetesVersion, SkewRules], rng: random.Random
) -> None:
    nodes, control_plane, target, rules = case
    ops = journey_sequence(plan_journey(nodes, control_plane=control_plane, target=target, rules=rules))
    stages = journey_stages(ops)
    check_stages(ops, stages)
    position = {op.key: index for index, op in enumerate(ops)}
    # Killed after any subset of the drains of any stage: resuming finishes every operation exactly once, and
    # nothing finishes before every operation of the stages before its own (a barrier stands alone).
    start = rng.randrange(len(stages) + 1)
    finished = {key for stage in stages[:start] for key in stage.keys}
    if start < len(stages):
        keys = stages[start].keys
        finished |= set(rng.sample(keys, rng.randrange(len(keys)))) if stages[start].drains else set()
    order = run_to_the_end(stages, finished, rng)
    assert sorted(order + sorted(finished)) == sorted(position)
    stage_of = {key: index for index, stage in enumerate(stages) for key in stage.keys}
    assert [stage_of[key] for key in order] == sorted(stage_of[key] for key in order)


def test_an_old_journal_holding_a_prefix_of_the_sequence_resumes_where_it_did() -> None:
    """Journals written when every operation ran one after the other hold the sequence's first operations."""
    ops = sequence(SkewRules.KUBEADM)
    stages = journey_stages(ops)
    keys = [op.key for op in ops]
    for index in range(len(ops) + 1):
        point = stage_resume(stages, finished=keys[:index])
        assert point.done == index
        if index < len(ops):
            assert point.pending[0].key == keys[index]
            assert [op.key for op in point.pending] == [k for k in stages[point.stage].keys if k not in keys[:index]]
        else:
            assert point.stage == len(stages) and point.pending == ()


def test_a_journal_of_another_journey_is_refused() -> None:
    kubeadm_ops, policy_ops = sequence(SkewRules.KUBEADM), sequence(SkewRules.KUBERNETES)
    stages = journey_stages(policy_ops)
    # The --skew kubeadm run's second drain of cp1 (to 1.25) has no counterpart in the policy's schedule.
    foreign = [op.key for op in kubeadm_ops[:40]]
    with pytest.raises(Refusal, match="not in this journey"):
        stage_resume(stages, finished=foreign)
    keys = [op.key for op in policy_ops]
    with pytest.raises(Refusal, match="comes before it"):
        stage_resume(stages, finished=[keys[0], keys[2]])


def test_a_stages_drains_go_control_plane_first_one_at_a_time_then_workers_within_max_unavailable() -> None:
    stage = next(s for s in journey_stages(sequence(SkewRules.KUBEADM)) if s.drains and len(s.operations) == 4)
    drains = [op for op in stage.operations if isinstance(op, NodeDrain)]
    phases = drain_phases(drains, max_unavailable=3)
    assert [(p.name, p.nodes, p.concurrency) for p in phases] == [
        ("control-plane", ("cp1", "cp2"), 1),
        ("workers", ("w1", "w2"), 3),
    ]
