"""`plan --to`'s journey as text (cli/journey_text.py): the header, drains per node, each step, findings."""

from __future__ import annotations

from shimshift.cli.journey_text import TOGETHER, journey_lines, journey_plan_text
from shimshift.core.findings import Finding, Severity, Subject
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.journey.skew import SkewRules
from shimshift.core.versions import KubernetesVersion
from shimshift.orchestrator.journey_plan import JourneyPlan

NODES = [JourneyNode("cp1", True, KubernetesVersion(23, 17), True), JourneyNode("w1", False, KubernetesVersion(23, 17))]


def test_the_policy_journey_names_each_step_and_the_forced_applies() -> None:
    journey = plan_journey(
        NODES, control_plane=KubernetesVersion(23, 17), target=KubernetesVersion(26, 15), rules=SkewRules.KUBERNETES
    )
    assert journey_lines(journey) == [
        "journey: control plane v1.23.17 -> v1.26.15, skew rules: kubernetes (3 control-plane step(s), 4 drain(s))",
        "drains per node: cp1 2, w1 2",
        "  1. control plane -> v1.24.17: kubeadm upgrade apply v1.24.17 on cp1; kubeadm upgrade node on w1",
        "  2. control plane -> v1.25.16: kubeadm upgrade apply v1.25.16 --force on cp1; kubeadm upgrade node on w1 "
        "(kubeadm refuses the kubelets left behind; the skew policy allows them)",
        "  3. drain cp1 (control-plane node), its drain 1 of 2: kubelet v1.23.17 -> v1.25.16, and from dockershim "
        "to cri-dockerd [together 1]",
        "  4. drain w1 (worker), its drain 1 of 2: kubelet v1.23.17 -> v1.25.16 [together 1]",
        "  5. control plane -> v1.26.15: kubeadm upgrade apply v1.26.15 on cp1; kubeadm upgrade node on w1",
        "  6. drain cp1 (control-plane node), its drain 2 of 2: kubelet v1.25.16 -> v1.26.15 [together 2]",
        "  7. drain w1 (worker), its drain 2 of 2: kubelet v1.25.16 -> v1.26.15 [together 2]",
        TOGETHER,
    ]


def test_a_control_plane_drain_that_runs_kubeadm_is_marked_alone_and_a_lone_drain_unmarked() -> None:
    """Under kubeadm's checks cp1's migration drain holds its apply (it runs alone); w1, already on
    cri-dockerd, is then the only drain of its stage: nothing to mark."""
    journey = plan_journey(NODES, control_plane=KubernetesVersion(23, 17), target=KubernetesVersion(24, 17))
    lines = journey_lines(journey)
    assert lines[3].endswith("to cri-dockerd [alone: it runs kubeadm upgrade apply on the node]"), lines[3]
    assert lines[4].endswith("kubelet v1.23.17 -> v1.24.17"), lines[4]
    assert TOGETHER not in lines


def test_the_workers_kubeadm_steps_that_run_together_are_named_with_the_bound() -> None:
    """cp2's step one at a time, then the workers' together within --kubeadm-parallel: every worker by count,
    or by name when a worker's migration drain holds its own (w1 and w3 at 1.24; w2 is on cri-dockerd)."""
    nodes = [
        JourneyNode("cp1", True, KubernetesVersion(23, 17), True),
        JourneyNode("cp2", True, KubernetesVersion(23, 17), True),
        JourneyNode("w1", False, KubernetesVersion(23, 17), True),
        JourneyNode("w2", False, KubernetesVersion(23, 17)),
        JourneyNode("w3", False, KubernetesVersion(23, 17), True),
        JourneyNode("w4", False, KubernetesVersion(23, 17)),
    ]
    journey = plan_journey(nodes, control_plane=KubernetesVersion(23, 17), target=KubernetesVersion(25, 16))
    steps = [line for line in journey_lines(journey, kubeadm_parallel=4) if "control plane ->" in line]
    assert steps == [
        "  1. control plane -> v1.24.17: kubeadm upgrade apply v1.24.17 on cp1; kubeadm upgrade node on cp2, "
        "then w2, w4 [together, at most 4 at once]",
        "  8. control plane -> v1.25.16: kubeadm upgrade apply v1.25.16 on cp1; kubeadm upgrade node on cp2, "
        "then all 4 workers [together, at most 4 at once]",
    ]


def test_a_journey_with_nothing_to_do_says_so() -> None:
    journey = plan_journey(NODES[:1], control_plane=KubernetesVersion(23, 17), target=KubernetesVersion(23, 17))
    assert journey_lines(journey)[-1] == "nothing to do: every node and the control plane are at the target"


def test_findings_and_binaries_follow_the_schedule() -> None:
    journey = plan_journey(NODES, control_plane=KubernetesVersion(23, 17), target=KubernetesVersion(24, 17))
    blocking = Finding(Severity.ERROR, "cgroup-v1", "refuses to start", Subject.of_node("w1"), "allow it")
    note = Finding(Severity.WARNING, "separate-disk-gc", "no image GC", Subject.of_node("cp1"))
    text = journey_plan_text(JourneyPlan(journey, [blocking, note]), binaries_given=False).splitlines()

    assert "kubeadm runs on every node at every step" in text[-5]
    assert text[-4:] == [
        "findings: 2, 1 blocking (the run stops before its first change)",
        "  blocking: node w1: error: refuses to start (allow it)",
        "  note: node cp1: warning: no image GC",
        "binaries: not given; `plan --to` checks them with --binaries DIR (a folder per release)",
    ]
