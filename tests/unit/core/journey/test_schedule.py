"""The journey's schedule (core/journey/schedule.py) against the skew rules (core/journey/skew.py).

Matrix: the issue's counts (1.23 -> 1.37: 8 drains per node under kubeadm's checks, 5 under the policy,
14 under lockstep, kubeadm's guide);
the migration in each dockershim node's first drain; patch-only and already-there journeys; refusals;
and, for random fleets and targets (hypothesis), that no state the schedule passes through breaks a rule,
every node ends at the target, and each node's drains equal the minimum an exhaustive search finds.
"""

from __future__ import annotations

import functools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shimshift.core.errors import Refusal
from shimshift.core.journey.releases import NEWEST_PATCH
from shimshift.core.journey.schedule import ControlPlaneStep, Drain, JourneyNode, plan_journey, release_key
from shimshift.core.journey.skew import SkewRules, apply_problem, kube_proxy_problem, kubelet_problem
from shimshift.core.versions import KubernetesVersion


def v(minor: int, patch: int | None = None) -> KubernetesVersion:
    return KubernetesVersion(minor, NEWEST_PATCH[minor] if patch is None else patch)


FLEET_123 = [
    JourneyNode("cp1", True, v(23), dockershim=True),
    JourneyNode("cp2", True, v(23), dockershim=True),
    JourneyNode("w1", False, v(23), dockershim=True),
    JourneyNode("w2", False, v(22), dockershim=True),
]


@pytest.mark.parametrize(
    ("rules", "drains", "kubelet_stops"),
    [
        (SkewRules.KUBEADM, 8, [24, 25, 26, 27, 30, 33, 36, 37]),
        (SkewRules.KUBERNETES, 5, [25, 28, 31, 34, 37]),
        (SkewRules.LOCKSTEP, 14, list(range(24, 38))),
    ],
)
def test_1_23_to_1_37_takes_the_issues_drain_counts(rules: SkewRules, drains: int, kubelet_stops: list[int]) -> None:
    journey = plan_journey(FLEET_123[:3], control_plane=v(23), target=v(37, 2), rules=rules)

    assert journey.drain_counts() == {"cp1": drains, "cp2": drains, "w1": drains}
    for node in ("cp1", "cp2", "w1"):
        assert [d.to_release.minor for d in journey.drains(node)] == kubelet_stops
    steps = journey.control_plane_steps()
    assert [s.release.minor for s in steps] == list(range(24, 38))
    assert steps[-1].release == KubernetesVersion(37, 2)
    assert all(s.apply_on == "cp1" and s.upgrade_node_on == ("cp2",) for s in steps)


def test_force_is_needed_exactly_where_kubeadm_refuses_the_policy_schedule() -> None:
    kubeadm = plan_journey(FLEET_123[:3], control_plane=v(23), target=v(37, 2), rules=SkewRules.KUBEADM)
    policy = plan_journey(FLEET_123[:3], control_plane=v(23), target=v(37, 2), rules=SkewRules.KUBERNETES)

    assert not any(s.force for s in kubeadm.control_plane_steps())
    # release-journey: kubeadm refuses the 1.25, 1.27 and 1.28 applies of the 25-28-31-34-37 schedule.
    assert [s.release.minor for s in policy.control_plane_steps() if s.force] == [25, 27, 28]


def test_lockstep_drains_every_node_between_two_applies_and_never_forces() -> None:
    journey = plan_journey(FLEET_123, control_plane=v(23), target=v(37, 2), rules=SkewRules.LOCKSTEP)

    assert not any(s.force for s in journey.control_plane_steps())
    # w2 (1.22) first catches up to the control plane's 1.23, as kubeadm's guide wants before any apply.
    assert journey.drain_counts() == {"cp1": 14, "cp2": 14, "w1": 14, "w2": 15}
    kinds = ["apply" if isinstance(s, ControlPlaneStep) else "drain" for s in journey.steps]
    assert kinds == ["drain"] + ["apply"] + (["drain"] * 4 + ["apply"]) * 13 + ["drain"] * 4


def test_the_migration_rides_in_each_dockershim_nodes_first_drain_only() -> None:
    fleet = [*FLEET_123[:2], JourneyNode("w3", False, v(23), dockershim=False)]
    journey = plan_journey(fleet, control_plane=v(23), target=v(37, 2))

    for drain in journey.drains():
        assert drain.migrate is (drain.number == 1 and drain.node != "w3")


def test_an_older_kubelet_is_drained_before_the_first_apply_that_would_refuse_it() -> None:
    journey = plan_journey(FLEET_123, control_plane=v(23), target=v(24, 17))

    assert journey.steps[0] == Drain("w2", False, 1, v(22), v(23), migrate=True)
    assert isinstance(journey.steps[1], ControlPlaneStep)
    assert journey.drain_counts() == {"cp1": 1, "cp2": 1, "w1": 1, "w2": 2}


def test_a_patch_upgrade_is_one_apply_and_one_drain_per_node() -> None:
    nodes = [JourneyNode("cp1", True, v(37, 0)), JourneyNode("w1", False, v(36, 5))]
    journey = plan_journey(nodes, control_plane=v(37, 0), target=v(37, 2))

    assert [type(s).__name__ for s in journey.steps] == ["ControlPlaneStep", "Drain", "Drain"]
    assert journey.drains("w1")[0].to_release == v(37, 2)


def test_a_cluster_already_at_the_target_has_nothing_to_do() -> None:
    journey = plan_journey([JourneyNode("cp1", True, v(30))], control_plane=v(30), target=v(30))
    assert journey.steps == ()


def test_the_first_control_plane_node_can_be_named() -> None:
    journey = plan_journey(FLEET_123[:3], control_plane=v(23), target=v(24), first_control_plane="cp2")
    assert journey.control_plane_steps()[0].apply_on == "cp2"
    assert journey.control_plane_steps()[0].upgrade_node_on == ("cp1",)
    with pytest.raises(Refusal, match="w1 is not a control-plane node"):
        plan_journey(FLEET_123[:3], control_plane=v(23), target=v(24), first_control_plane="w1")


@pytest.mark.parametrize(
    ("nodes", "control_plane", "target", "message"),
    [
        ([JourneyNode("w1", False, v(23))], v(23), v(24), "no control-plane node"),
        ([JourneyNode("cp1", True, v(25))], v(25), v(24), "older than the control plane"),
        ([JourneyNode("cp1", True, v(25))], v(24), v(26), "newer than the control plane"),
        ([JourneyNode("cp1", True, v(23)), JourneyNode("w1", False, v(21))], v(24), v(26), "more than 2 minors"),
        ([JourneyNode("cp1", True, v(20, 15))], v(20, 15), v(24), "starts from 1.21"),
    ],
)
def test_a_cluster_outside_the_rules_is_refused(
    nodes: list[JourneyNode], control_plane: KubernetesVersion, target: KubernetesVersion, message: str
) -> None:
    with pytest.raises(Refusal, match=message):
        plan_journey(nodes, control_plane=control_plane, target=target)


# --------------------------------------------------------------------------------------------------
# Properties, against an exhaustive search


@functools.cache
def fewest_drains(kubelet: int, control_plane: int, target: int, rules: SkewRules) -> int:
    """The fewest drains one node needs, by breadth-first search over (control plane, kubelet) minors:
    an apply moves the control plane one minor when the rules let this kubelet stay; a drain moves the
    kubelet to any newer minor up to the control plane's. Drains cost 1, applies 0 (0-1 BFS)."""
    start = (control_plane, kubelet)
    best = {start: 0}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        cp, k = state
        cost = best[state]
        if state == (target, target):
            return cost
        moves: list[tuple[tuple[int, int], int]] = []
        if cp < target and apply_problem(kubelet_minor=k, target_minor=cp + 1, rules=rules) is None:
            moves.append(((cp + 1, k), 0))
        moves += [((cp, newer), 1) for newer in range(k + 1, cp + 1)]
        for nxt, step in moves:
            if nxt not in best or best[nxt] > cost + step:
                best[nxt] = cost + step
                (queue.appendleft if step == 0 else queue.append)(nxt)
    raise AssertionError("the target cannot be reached")


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[JourneyNode], KubernetesVersion, KubernetesVersion, SkewRules]:
    control_plane = draw(st.integers(min_value=21, max_value=37))
    target = draw(st.integers(min_value=control_plane, max_value=37))
    count = draw(st.integers(min_value=1, max_value=5))
    nodes = []
    for index in range(count):
        lowest = control_plane - (3 if control_plane - 3 >= 25 else 2)
        minor = draw(st.integers(min_value=max(21, lowest), max_value=control_plane))
        while kubelet_problem(kubelet_minor=minor, apiserver_minor=control_plane) is not None:
            minor += 1
        control = index == 0 or draw(st.booleans())
        nodes.append(JourneyNode(f"n{index}", control, v(minor), dockershim=minor < 24 and draw(st.booleans())))
    return nodes, v(control_plane), v(target), draw(st.sampled_from(SkewRules))


@settings(max_examples=300, deadline=None)
@given(fleets())
def test_no_state_breaks_a_rule_every_node_ends_at_the_target_with_the_fewest_drains(
    case: tuple[list[JourneyNode], KubernetesVersion, KubernetesVersion, SkewRules],
) -> None:
    nodes, control_plane, target, rules = case
    journey = plan_journey(nodes, control_plane=control_plane, target=target, rules=rules)

    states = list(journey.states())
    for state, step in zip(states, journey.steps, strict=False):
        if isinstance(step, ControlPlaneStep):
            assert step.release.minor - state.control_plane.minor <= 1
            assert not (step.force and rules in (SkewRules.KUBEADM, SkewRules.LOCKSTEP))
            if rules is SkewRules.LOCKSTEP:
                assert all(step.release.minor - k.minor <= 1 for k in state.kubelets.values())
            for version in state.kubelets.values():
                assert apply_problem(kubelet_minor=version.minor, target_minor=step.release.minor, rules=rules) is None
        else:
            assert release_key(step.to_release) <= release_key(state.control_plane)
            assert step.from_release == state.kubelets[step.node]
            assert step.migrate is (step.node in state.dockershim)
    for state in states:
        for version in state.kubelets.values():
            assert kubelet_problem(kubelet_minor=version.minor, apiserver_minor=state.control_plane.minor) is None
            proxy = state.control_plane.minor  # kubeadm upgrades kube-proxy with the control plane
            assert kube_proxy_problem(kube_proxy_minor=proxy, kubelet_minor=version.minor) is None
            assert release_key(version) <= release_key(state.control_plane)
    assert states[-1].control_plane == target
    assert set(states[-1].kubelets.values()) == {target}
    assert not states[-1].dockershim or target.minor < 24 or journey.steps == ()
    for node in nodes:
        fewest = fewest_drains(node.kubelet.minor, control_plane.minor, target.minor, rules)
        assert len(journey.drains(node.name)) == fewest
