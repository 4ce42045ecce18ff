"""Per-node step decisions: resume points, kubelet command-line checks, CRI sandbox matching.
(The journal's plan record: tests/unit/core/test_plan_record.py.)"""

from __future__ import annotations

from shimshift.core.procedures.upgrade import UPGRADE_STEPS
from shimshift.core.steps import (
    MIGRATION_STEPS,
    PodRef,
    SandboxRef,
    Step,
    changes_configuration,
    changing_steps,
    cmdline_problems,
    config_problems,
    kubelet_args,
    missing_sandboxes,
    remaining_steps,
    split_cmdline,
)


def test_fresh_node_runs_every_step() -> None:
    assert remaining_steps([]) == list(MIGRATION_STEPS)


def test_resume_after_drain() -> None:
    assert remaining_steps([Step.PREFLIGHT, Step.CORDON, Step.DRAIN])[0] is Step.WRITE_CONFIG


def test_finished_node_has_nothing_left() -> None:
    assert remaining_steps(MIGRATION_STEPS) == []


def test_configuration_changes_start_at_write_config() -> None:
    assert not changes_configuration(Step.DRAIN)
    assert changes_configuration(Step.WRITE_CONFIG)
    assert changes_configuration(Step.VERIFY)



def test_the_upgrade_s_changing_steps_are_the_migration_s_and_what_it_adds_after_write_config() -> None:
    changing = changing_steps(UPGRADE_STEPS)
    assert {Step.WRITE_CONFIG, Step.KUBEADM_UPGRADE, Step.INSTALL_KUBELET, Step.VERIFY} <= changing
    assert not changing & {Step.INSTALL, Step.PREFLIGHT, Step.CORDON, Step.DRAIN}
    assert changing_steps() == frozenset(MIGRATION_STEPS[MIGRATION_STEPS.index(Step.WRITE_CONFIG) :])


CMDLINE = (
    b"/usr/bin/kubelet\0--config=/var/lib/kubelet/config.yaml\0--container-runtime=remote\0"
    b"--container-runtime-endpoint\0unix:///var/run/cri-dockerd.sock\0"
)


def test_cmdline_split_and_both_flag_forms() -> None:
    args = kubelet_args(split_cmdline(CMDLINE))
    assert args["--container-runtime"] == "remote"
    assert args["--container-runtime-endpoint"] == "unix:///var/run/cri-dockerd.sock"


def test_cmdline_accepted_when_as_expected() -> None:
    expected = {
        "--container-runtime": "remote",
        "--container-runtime-endpoint": "unix:///var/run/cri-dockerd.sock",
    }
    assert cmdline_problems(split_cmdline(CMDLINE), expected=expected, forbidden=["--network-plugin"]) == []


def test_cmdline_problems_name_the_flag() -> None:
    argv = ["/usr/bin/kubelet", "--network-plugin=cni"]
    problems = cmdline_problems(argv, expected={"--container-runtime": "remote"}, forbidden=["--network-plugin"])
    assert [(problem.code, problem.setting, problem.message) for problem in problems] == [
        (
            "running-flag-missing",
            "--container-runtime",
            "the running kubelet has no --container-runtime (expected --container-runtime=remote)",
        ),
        ("running-flag-left", "--network-plugin", "the running kubelet still has --network-plugin=cni"),
    ]
    assert all(problem.blocking for problem in problems)


def test_cmdline_problems_name_the_process() -> None:
    argv = ["/usr/bin/cri-dockerd", "--network-plugin=cni"]
    (problem,) = cmdline_problems(argv, expected={"--network-plugin": ""}, forbidden=(), process="cri-dockerd")
    assert (problem.code, problem.message) == (
        "running-flag-wrong",
        "the running cri-dockerd has --network-plugin=cni (expected )",
    )


def test_sandbox_matching_by_uid_and_static_pod_hash() -> None:
    pods = [
        PodRef("demo", "web-1", "uid-1"),
        PodRef("kube-system", "kube-apiserver-cp", "mirror-uid", config_hash="hash-1"),
        PodRef("demo", "gone", "uid-9"),
    ]
    sandboxes = [
        SandboxRef("demo", "web-1", "uid-1"),
        SandboxRef("kube-system", "kube-apiserver-cp", "hash-1"),
    ]
    assert missing_sandboxes(pods, sandboxes) == [PodRef("demo", "gone", "uid-9")]


def test_live_kubelet_config_checked_for_the_endpoint() -> None:
    expected = {"containerRuntimeEndpoint": "unix:///var/run/cri-dockerd.sock"}
    assert config_problems({"containerRuntimeEndpoint": "unix:///var/run/cri-dockerd.sock"}, expected=expected) == []
    assert [
        problem.message
        for problem in config_problems(
            {"containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock"}, expected=expected
        )
    ] == [
        "the running kubelet's configuration has containerRuntimeEndpoint='unix:///run/containerd/containerd.sock'"
        " (expected unix:///var/run/cri-dockerd.sock)"
    ]
