"""The journey's stages (core/journey/stages.py): barriers alone, the workers' kubeadm steps of a control-plane
step together, drains of a stage together.

Matrix: 1.23 -> 1.37.2 under both skews (which operations are barriers, which drains share a stage, which
workers' `kubeadm upgrade node` share one); a fleet with dockershim and cri-dockerd workers (a worker whose
migration drain holds its kubeadm step is not in the kubeadm stage, the others are, in one stage); random
fleets (hypothesis, the schedule's own strategy): the stages concatenated are the sequence, every stage holds
one kind of operation on distinct nodes (a kubeadm stage: workers only, one release, after that release's
apply and control-plane steps and before any drain to it), every apply and control-plane kubeadm step stands
alone, and resume from any subset of a stage's finished operations reaches the same end; old journals (a
prefix of the sequence finished, also in the order before the workers' kubeadm steps were grouped) resume as
they did; a journal of another journey is refused; a stage's phases: control plane one at a time, then
workers within --max-unavailable."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shimshift.core.errors import Refusal
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.sequence import KubeadmMode, KubeadmUpgrade, NodeDrain, Operation, journey_sequence
from shimshift.core.journey.skew import SkewRules
from shimshift.core.journey.stages import Stage, StageKind, drain_phases, journey_stages, stage_resume
from shimshift.core.versions import KubernetesVersion
from tests.unit.core.journey.test_schedule import fleets
from tests.unit.core.journey.test_sequence import FLEET, MIXED, v


def sequence(rules: SkewRules) -> tuple[Operation, ...]:
    return journey_sequence(plan_journey(FLEET, control_plane=v(23), target=v(37, 2), rules=rules))


def check_stages(ops: tuple[Operation, ...], stages: tuple[Stage, ...]) -> None:
    assert tuple(op for stage in stages for op in stage.operations) == ops
    for stage in stages:
        nodes = [op.node for op in stage.operations if isinstance(op, NodeDrain | KubeadmUpgrade)]
        if stage.kind is StageKind.DRAINS:
            assert len(nodes) == len(stage.operations) == len(set(nodes))
            assert all(
                isinstance(op, NodeDrain) and (op.kubeadm is None or not op.control_plane) for op in stage.operations
            )
        elif stage.kind is StageKind.KUBEADM:
            assert len(nodes) == len(stage.operations) == len(set(nodes))
            assert all(
                isinstance(op, KubeadmUpgrade) and op.mode is KubeadmMode.NODE and not op.control_plane
                for op in stage.operations
            )
            assert len({op.release for op in stage.operations if isinstance(op, KubeadmUpgrade)}) == 1
        else:
            assert len(stage.operations) == 1
    # Every apply and every control-plane node's kubeadm step (bare or in its drain) stands alone; every
    # worker's bare kubeadm step is in a kubeadm stage, the one of its release, after that release's apply
    # and control-plane steps (a control-plane node's migration drain may hold them) and before any other
    # drain to that release.
    stage_of = {key: index for index, stage in enumerate(stages) for key in stage.keys}
    for op in ops:
        kubeadm = op.kubeadm if isinstance(op, NodeDrain) else op
        if isinstance(kubeadm, KubeadmUpgrade) and kubeadm.control_plane:
            assert stages[stage_of[op.key]].kind is StageKind.ALONE, op.key
    groups: dict[KubernetesVersion, set[int]] = {}
    for op in ops:
        if isinstance(op, KubeadmUpgrade) and not op.control_plane:
            assert stages[stage_of[op.key]].kind is StageKind.KUBEADM, op.key
            groups.setdefault(op.release, set()).add(stage_of[op.key])
    for release, indexes in groups.items():
        assert len(indexes) == 1, release  # one stage per control-plane step
        (index,) = indexes
        for op in ops:
            kubeadm = op.kubeadm if isinstance(op, NodeDrain) else op
            if isinstance(kubeadm, KubeadmUpgrade) and kubeadm.control_plane and kubeadm.release == release:
                assert stage_of[op.key] < index
            elif isinstance(op, NodeDrain) and op.to_release == release:
                assert stage_of[op.key] > index


def run_to_the_end(stages: tuple[Stage, ...], finished: set[str], rng: random.Random) -> list[str]:
    """Play a run from ``finished``: each resume finishes a random subset of the pending operations of its
    stage (a run killed mid-stage), until done. Returns the keys in the order they finished."""
    order: list[str] = []
    done = set(finished)
    while (point := stage_resume(stages, finished=done)).stage < len(stages):
        assert point.done == len(done)
        pending = [op.key for op in point.pending]
        assert pending and all(key not in done for key in pending)
        if stages[point.stage].kind is StageKind.ALONE:
            assert len(pending) == 1
        chosen = rng.sample(pending, rng.randint(1, len(pending)))
        order += chosen
        done |= set(chosen)
    return order


@pytest.mark.parametrize("rules", list(SkewRules))
def test_control_plane_kubeadm_steps_are_barriers_the_workers_run_together_and_so_do_drains(rules: SkewRules) -> None:
    ops = sequence(rules)
    stages = journey_stages(ops)
    check_stages(ops, stages)  # every apply and control-plane kubeadm step alone
    together = [[op.node for op in stage.operations if isinstance(op, NodeDrain)] for stage in stages if stage.drains]
    # The first drains migrate and hold the node's kubeadm: the control-plane nodes' alone, the workers' together
    # (as kubeadm's guide does it; under --skew kubernetes cp1's first drain holds no kubeadm, its apply being
    # forced, and joins them); after them all four nodes drain together at every stop.
    assert together[0] == (["w1", "w2", "cp1"] if rules is SkewRules.KUBERNETES else ["w1", "w2"])
    assert all(nodes == ["cp1", "cp2", "w1", "w2"] for nodes in together[1:]) and len(together) > 1
    # Every minor's kubeadm: the apply on cp1 and cp2's step alone, then w1 and w2 together, but at the minor
    # of the workers' migration drains (1.24 under kubeadm's checks, 1.25 under the policy), which hold them.
    kubeadm = [stage.keys for stage in stages if stage.kind is StageKind.KUBEADM]
    minors = range(25, 37) if rules is not SkewRules.KUBERNETES else [24, *range(26, 37)]  # lockstep as kubeadm
    assert kubeadm == [(f"kubeadm-node:v{v(m)}:w1", f"kubeadm-node:v{v(m)}:w2") for m in minors] + [
        ("kubeadm-node:v1.37.2:w1", "kubeadm-node:v1.37.2:w2")
    ]


def test_a_worker_whose_migration_drain_holds_its_kubeadm_is_left_out_of_its_steps_kubeadm_stage() -> None:
    """w2 is already on cri-dockerd: its 1.24 kubeadm runs bare, in the step's kubeadm stage; w1 and w3 run
    theirs in their migration drains, which go with w2's drain after it. Before the workers' steps were
    grouped, w2's step stood between w1's and w3's drains, splitting them."""
    ops = journey_sequence(plan_journey(MIXED, control_plane=v(23), target=v(25)))
    stages = journey_stages(ops)
    check_stages(ops, stages)
    assert [(stage.kind, stage.keys) for stage in stages[:3]] == [
        (StageKind.ALONE, ("drain-1:v1.24.17:cp1",)),
        (StageKind.KUBEADM, ("kubeadm-node:v1.24.17:w2",)),
        (StageKind.DRAINS, ("drain-1:v1.24.17:w1", "drain-1:v1.24.17:w3", "drain-1:v1.24.17:w2")),
    ]


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
        together = stages[start].kind is not StageKind.ALONE
        finished |= set(rng.sample(keys, rng.randrange(len(keys)))) if together else set()
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


def test_a_journal_of_the_order_before_the_workers_kubeadm_were_grouped_resumes_from_any_prefix() -> None:
    """A run begun before sequence.py put a step's bare worker kubeadm steps first keeps its recorded order:
    w2's 1.24 kubeadm between w1's and w3's migration drains. Its stages split there, and it resumes as before."""
    ops = list(journey_sequence(plan_journey(MIXED, control_plane=v(23), target=v(25))))
    ops[1], ops[2] = ops[2], ops[1]  # the recorded order: w1's drain, then w2's kubeadm
    assert [op.key for op in ops[1:4]] == ["drain-1:v1.24.17:w1", "kubeadm-node:v1.24.17:w2", "drain-1:v1.24.17:w3"]
    stages = journey_stages(ops)
    assert tuple(op for stage in stages for op in stage.operations) == tuple(ops)
    assert [stage.kind for stage in stages[1:4]] == [StageKind.DRAINS, StageKind.KUBEADM, StageKind.DRAINS]
    keys = [op.key for op in ops]
    for index in range(len(ops) + 1):
        point = stage_resume(stages, finished=keys[:index])
        assert point.done == index
        assert (point.pending[0].key if point.pending else None) == (keys[index] if index < len(ops) else None)


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


def kubeadm_times(stages: tuple[Stage, ...], parallel: int) -> int:
    """How many kubeadm runs' times the journey's kubeadm steps take end to end: one per step that runs alone
    (bare or in a control-plane node's drain), a kubeadm stage's in rounds of ``parallel``; the workers' steps
    inside their drains go with the drains."""
    alone = sum(
        1
        for stage in stages
        if stage.kind is StageKind.ALONE
        and any(isinstance(op, KubeadmUpgrade) or (isinstance(op, NodeDrain) and op.kubeadm) for op in stage.operations)
    )
    return alone + sum(math.ceil(len(s.operations) / parallel) for s in stages if s.kind is StageKind.KUBEADM)


@pytest.mark.parametrize("rules", list(SkewRules))
def test_the_300_node_figures_of_docs_journey(rules: SkewRules) -> None:
    """docs/journey.md: 3 control-plane nodes and 297 workers, 1.23 on dockershim to 1.37.2: 3903 kubeadm
    times one after the other, 432 with --kubeadm-parallel 10, 172 with 30."""
    nodes = [JourneyNode(f"cp{i}", True, v(23), dockershim=True) for i in range(1, 4)]
    nodes += [JourneyNode(f"w{i:03}", False, v(23), dockershim=True) for i in range(1, 298)]
    ops = journey_sequence(plan_journey(nodes, control_plane=v(23), target=KubernetesVersion(37, 2), rules=rules))
    stages = journey_stages(ops)
    kubeadm = [op for op in ops if isinstance(op, KubeadmUpgrade) or (isinstance(op, NodeDrain) and op.kubeadm)]
    assert len(kubeadm) == 4200
    assert [len(s.operations) for s in stages if s.kind is StageKind.KUBEADM] == [297] * 13
    assert [kubeadm_times(stages, parallel) for parallel in (1, 10, 30)] == [3903, 432, 172]
