"""The journey's run as data (core/journey/sequence.py): the operations of 1.23 -> 1.37 under both skews,
each trap's engine change where the schedule puts it, failure decisions (resume: test_stages.py),
and the journal's copy of the sequence."""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.journey.releases import NEWEST_PATCH
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.sequence import (
    ClusterEdit,
    JourneyOptions,
    KubeadmMode,
    KubeadmUpgrade,
    NodeDrain,
    NodeEdit,
    Operation,
    journey_sequence,
    on_failure,
    sequence_from_record,
    sequence_record,
)
from shimshift.core.journey.skew import SkewRules
from shimshift.core.versions import KubernetesVersion


def v(minor: int, patch: int | None = None) -> KubernetesVersion:
    return KubernetesVersion(minor, NEWEST_PATCH[minor] if patch is None else patch)


# Two control-plane nodes and two workers, all 1.23 on dockershim.
FLEET = [JourneyNode(name, name.startswith("cp"), v(23), dockershim=True) for name in ("cp1", "cp2", "w1", "w2")]
# One control-plane node and three workers on 1.23: w2 already on cri-dockerd, the others on dockershim.
MIXED = [JourneyNode(name, name == "cp1", v(23), dockershim=name != "w2") for name in ("cp1", "w1", "w2", "w3")]


def sequence(rules: SkewRules, options: JourneyOptions | None = None) -> tuple[Operation, ...]:
    return journey_sequence(plan_journey(FLEET, control_plane=v(23), target=v(37, 2), rules=rules), options)


def drains(ops: tuple[Operation, ...], node: str) -> list[NodeDrain]:
    return [op for op in ops if isinstance(op, NodeDrain) and op.node == node]


def kubeadm(ops: tuple[Operation, ...], node: str) -> list[KubeadmUpgrade]:
    """The node's kubeadm steps in order, those a migrating drain holds included."""
    steps = [op.kubeadm if isinstance(op, NodeDrain) else op for op in ops]
    return [op for op in steps if isinstance(op, KubeadmUpgrade) and op.node == node]


@pytest.mark.parametrize(
    ("rules", "count", "stops"),
    [(SkewRules.KUBEADM, 8, [24, 25, 26, 27, 30, 33, 36, 37]), (SkewRules.KUBERNETES, 5, [25, 28, 31, 34, 37])],
)
def test_1_23_to_1_37_drains_each_node_as_often_as_the_schedule_says(
    rules: SkewRules, count: int, stops: list[int]
) -> None:
    ops = sequence(rules)

    for node in ("cp1", "cp2", "w1", "w2"):
        assert [d.to_release.minor for d in drains(ops, node)] == stops
        assert [d.number for d in drains(ops, node)] == list(range(1, count + 1))
        # The migration rides in the first drain only.
        assert [d.migrate for d in drains(ops, node)] == [True] + [False] * (count - 1)
    assert len([op for op in ops if isinstance(op, NodeDrain)]) == 4 * count


@pytest.mark.parametrize("rules", list(SkewRules))
def test_every_node_runs_the_kubeadm_of_every_minor_apply_first(rules: SkewRules) -> None:
    ops = sequence(rules)

    applies = [op for op in kubeadm(ops, "cp1") if op.mode is KubeadmMode.APPLY]
    assert [op.release.minor for op in applies] == list(range(24, 38))
    assert {op.node for op in applies} == {"cp1"}
    for node in ("cp2", "w1", "w2"):
        steps = kubeadm(ops, node)
        assert [op.release.minor for op in steps] == list(range(24, 38))
        assert all(op.mode is KubeadmMode.NODE and "--yes" not in op.flags for op in steps)
    # At each minor: the apply, then the other control-plane node, then the workers by name.
    at_30 = [op.node for op in ops if isinstance(op, KubeadmUpgrade) and op.release.minor == 30]  # none folded
    assert at_30 == ["cp1", "cp2", "w1", "w2"]
    assert applies[-1].argv("/usr/bin/kubeadm")[:4] == ("/usr/bin/kubeadm", "upgrade", "apply", "v1.37.2")


def test_a_node_upgrade_never_runs_before_the_apply_of_its_minor_nor_a_drain_beyond_the_control_plane() -> None:
    for rules in SkewRules:
        applied = 23
        for op in sequence(rules):
            step = op.kubeadm if isinstance(op, NodeDrain) and op.kubeadm is not None else op
            if isinstance(step, KubeadmUpgrade) and step.mode is KubeadmMode.APPLY:
                applied = step.release.minor
            elif isinstance(step, KubeadmUpgrade):
                assert step.release.minor == applied
            if isinstance(op, NodeDrain):
                assert op.to_release.minor <= applied


def test_force_goes_only_to_the_applies_kubeadm_refuses() -> None:
    def forced(rules: SkewRules) -> list[int]:
        return [op.release.minor for op in sequence(rules) if isinstance(op, KubeadmUpgrade) and "--force" in op.flags]

    assert forced(SkewRules.KUBERNETES) == [25, 27, 28]
    assert forced(SkewRules.KUBEADM) == []


def test_a_dockershim_node_runs_the_kubeadm_of_its_first_drains_release_inside_that_drain() -> None:
    # kubeadm's checks: every node's first drain goes to 1.24, and holds its kubeadm 1.24, as the one-minor
    # upgrade does (migration first, then kubeadm); nothing of 1.24 runs outside a drain.
    ops = sequence(SkewRules.KUBEADM)
    at_24 = [op for op in ops if isinstance(op, NodeDrain | KubeadmUpgrade) and "v1.24.17" in op.key]
    assert [op.key for op in at_24] == [f"drain-1:v1.24.17:{node}" for node in ("cp1", "cp2", "w1", "w2")]
    modes = [op.kubeadm.mode for op in at_24 if isinstance(op, NodeDrain) and op.kubeadm is not None]
    assert modes == [KubeadmMode.APPLY, KubeadmMode.NODE, KubeadmMode.NODE, KubeadmMode.NODE]
    # The policy's schedule: kubeadm 1.24 runs on the dockershim nodes (a warning of traps.py); the 1.25
    # kubeadm rides in the drains to 1.25, except the forced apply (`kubeadm upgrade plan` has no --force).
    policy = sequence(SkewRules.KUBERNETES)
    held = [op.node for op in policy if isinstance(op, NodeDrain) and op.kubeadm is not None]
    assert held == ["cp2", "w1", "w2"]
    assert [d.kubeadm is None for d in drains(policy, "cp1")] == [True] * 5


def test_a_steps_bare_worker_kubeadm_steps_come_before_the_migration_drains_that_hold_the_others() -> None:
    """w2 is already on cri-dockerd, w1 and w3 migrate in their drains to 1.24: at that step w2's bare kubeadm
    comes first (it forms the step's kubeadm stage, stages.py), then w1's and w3's drains; each node's own
    operations keep their order (kubeadm of a release after its apply, before the node's drain to it)."""
    ops = journey_sequence(plan_journey(MIXED, control_plane=v(23), target=v(25)))
    assert [op.key for op in ops[:5]] == [
        "drain-1:v1.24.17:cp1",
        "kubeadm-node:v1.24.17:w2",
        "drain-1:v1.24.17:w1",
        "drain-1:v1.24.17:w3",
        "drain-1:v1.24.17:w2",
    ]
    assert [op.key for op in ops if isinstance(op, NodeDrain | KubeadmUpgrade) and op.node == "w2"][:3] == [
        "kubeadm-node:v1.24.17:w2",
        "drain-1:v1.24.17:w2",
        "kubeadm-node:v1.25.16:w2",
    ]


# Each trap's engine change ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "edit", "drain_to"),
    [
        (SkewRules.KUBEADM, NodeEdit.DROP_CONTAINER_RUNTIME, 27),
        (SkewRules.KUBERNETES, NodeEdit.DROP_CONTAINER_RUNTIME, 28),  # jumps 1.25 -> 1.28 past 1.27
        (SkewRules.KUBEADM, NodeEdit.DROP_POD_INFRA_CONTAINER_IMAGE, 36),  # jumps 1.33 -> 1.36 past 1.35
        (SkewRules.KUBERNETES, NodeEdit.DROP_POD_INFRA_CONTAINER_IMAGE, 37),
    ],
)
def test_a_removed_flag_is_dropped_in_the_drain_that_first_starts_a_kubelet_rejecting_it(
    rules: SkewRules, edit: NodeEdit, drain_to: int
) -> None:
    for node in ("cp1", "w1"):
        with_edit = [d.to_release.minor for d in drains(sequence(rules), node) if edit in d.edits]
        assert with_edit == [drain_to]


@pytest.mark.parametrize(("rules", "drain_to"), [(SkewRules.KUBEADM, 36), (SkewRules.KUBERNETES, 37)])
def test_the_websocket_gate_goes_off_only_in_the_drain_whose_kubelet_first_reaches_1_36(
    rules: SkewRules, drain_to: int
) -> None:
    edit = NodeEdit.KUBELET_WEBSOCKETS_OFF
    assert not any(edit in op.edits for op in sequence(rules) if isinstance(op, NodeDrain))
    ops = sequence(rules, JourneyOptions(kubelet_websockets_off=True))
    for node in ("cp1", "cp2", "w1", "w2"):
        # Never earlier (a kubelet before 1.36 exits on the unknown gate), never again after.
        assert [(d.from_release.minor, d.to_release.minor) for d in drains(ops, node) if edit in d.edits] == [
            (33 if rules is SkewRules.KUBEADM else 34, drain_to)
        ]
    assert sequence_from_record(sequence_record(ops)) == ops  # a resumed run keeps the edit
    # Nothing else moves: the same operations, keys and order as without the option.
    assert [op.key for op in ops] == [op.key for op in sequence(rules)]


def test_cgroup_v1_is_let_through_only_when_the_operator_allows_it() -> None:
    plain = sequence(SkewRules.KUBEADM)
    assert not any(isinstance(op, ClusterEdit) for op in plain)
    assert not any(NodeEdit.FAIL_CGROUP_V1_FALSE in op.edits for op in plain if isinstance(op, NodeDrain))
    assert not any("SystemVerification" in flag for op in kubeadm(plain, "w1") for flag in op.flags)

    allowed = sequence(SkewRules.KUBEADM, JourneyOptions(allow_cgroup_v1=True))
    [edit] = [op for op in allowed if isinstance(op, ClusterEdit)]
    # Into the ConfigMap before the 1.35 apply writes every node's config.yaml from it.
    first_135 = next(i for i, op in enumerate(allowed) if isinstance(op, KubeadmUpgrade) and op.release.minor == 35)
    assert allowed.index(edit) == first_135 - 1 and edit.before.minor == 35
    ignoring = [op.release.minor for op in kubeadm(allowed, "w1") if any("SystemVerification" in f for f in op.flags)]
    assert ignoring == [35, 36, 37]
    assert [d.to_release.minor for d in drains(allowed, "w1") if NodeEdit.FAIL_CGROUP_V1_FALSE in d.edits] == [36]


def test_instance_config_is_written_before_each_kubeadm_from_1_34_when_missing() -> None:
    ops = sequence(SkewRules.KUBERNETES)
    assert [op.release.minor for op in kubeadm(ops, "w2") if op.instance_config] == [34, 35, 36, 37]


def test_the_operators_kubeadm_flags_come_after_shimshifts_own() -> None:
    flags = ("--ignore-preflight-errors=ImagePull",)
    ops = sequence(SkewRules.KUBERNETES, JourneyOptions(kubeadm_flags=flags))
    apply_25 = next(op for op in kubeadm(ops, "cp1") if op.release.minor == 25)
    assert apply_25.flags == ("--yes", "--force", *flags)
    assert all(op.flags[-1] == flags[0] for op in ops if isinstance(op, KubeadmUpgrade))


def test_a_drains_steps_are_named_apart_from_the_nodes_other_drains() -> None:
    first, second = drains(sequence(SkewRules.KUBEADM), "w1")[:2]
    assert first.step_key("restart-kubelet") != second.step_key("restart-kubelet")


# Failure ----------------------------------------------------------------------------------------------


def test_a_failed_drain_goes_back_to_the_releases_of_that_drains_start() -> None:
    ops = sequence(SkewRules.KUBEADM)
    first, third = drains(ops, "w1")[0], drains(ops, "w1")[2]

    back = on_failure(first)
    assert back.roll_back and back.kubelet == v(23) and back.dockershim
    back = on_failure(third)
    assert back.roll_back and back.kubelet == v(25) and not back.dockershim
    # A control-plane node's drain changes only its kubelet: it goes back the same way.
    assert on_failure(drains(ops, "cp1")[4]).kubelet == v(27)


def test_the_control_plane_is_never_rolled_back_past_a_finished_apply() -> None:
    ops = sequence(SkewRules.KUBEADM, JourneyOptions(allow_cgroup_v1=True))
    for op in ops:
        if not isinstance(op, NodeDrain):
            decision = on_failure(op)
            assert not decision.roll_back and decision.kubelet is None
    apply = next(op for op in ops if isinstance(op, KubeadmUpgrade) and op.mode is KubeadmMode.APPLY)
    assert "not rolled back" in on_failure(apply).message


# The journal's copy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", list(SkewRules))
def test_the_recorded_sequence_reads_back_the_same(rules: SkewRules) -> None:
    ops = sequence(rules, JourneyOptions(allow_cgroup_v1=True, kubeadm_flags=("--v=5",)))
    assert sequence_from_record(sequence_record(ops)) == ops


def test_a_damaged_record_is_refused_naming_its_place() -> None:
    record = sequence_record(sequence(SkewRules.KUBEADM))
    record[3] = {**record[3], "kind": "reboot"}
    with pytest.raises(Refusal, match="#4"):
        sequence_from_record(record)
