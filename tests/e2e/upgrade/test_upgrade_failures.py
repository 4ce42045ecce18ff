"""`shimshift upgrade` killed and resumed at every step boundary it adds, and a worker whose new kubelet
cannot start. One fresh 1.23.17 lab, in this order (a test per boundary; each goes on from where
the one before left the lab and the journal, so a failure makes the rest of its group fail too):

1. the control plane, selected the way operators do (`-l node-role.kubernetes.io/control-plane`): the run
   is SIGKILLed right after each new step finishes on it (install-kubeadm, kubeadm-upgrade-plan,
   kubeadm-upgrade, install-kubelet-kubectl) and resumed with `--resume`, which must go on from there
   to the next boundary; the last resume ends the run with the control plane at v1.24.17.
2. `upgrade --all` with a kubelet in --binaries that reports v1.24.17 but cannot start: the first worker
   is rolled back to kubelet v1.23.17 on dockershim, Ready and uncordoned; the run stops there
   (--max-failures 1), exit 1, and the report says so.
3. `upgrade --all` with the real binaries, killed after each new step on the first worker and resumed:
   every node ends Ready at v1.24.17 on cri-dockerd, uncordoned, no canary left.
4. `shimshift rollback` of the last worker takes it back to v1.23.17 on dockershim; of the control
   plane it is refused.
5. that worker upgraded again with `--install-command` instead of `--binaries`, and rolled back by the
   same command.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.core.steps import Step
from tests.e2e.migrate.helpers import (
    assert_on_cri_dockerd,
    assert_on_dockershim,
    canary_pods,
    journal_has,
    kubelet_cmdline,
    node_json,
    report_nodes,
    run_finished,
    run_until_then_kill,
    shimshift,
)
from tests.e2e.upgrade.conftest import TARGET, UpgradeLab

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e
CONTROL_PLANE = ["-l", "node-role.kubernetes.io/control-plane"]
CONTROL_PLANE_BOUNDARIES = [Step.INSTALL_KUBEADM, Step.KUBEADM_UPGRADE_PLAN, Step.KUBEADM_UPGRADE, Step.INSTALL_KUBELET]
WORKER_BOUNDARIES = [Step.INSTALL_KUBEADM, Step.KUBEADM_UPGRADE, Step.INSTALL_KUBELET]


def kubelet_release(lab: LabInfo, node: str) -> str:
    return str(node_json(lab, node)["status"]["nodeInfo"]["kubeletVersion"])


def kill_after(
    upgrade_lab: UpgradeLab, journal: Path, selection: list[str], node: str, boundaries: list[Step], step: Step
) -> None:
    """The first boundary starts the run; every later one resumes it. Either way shimshift must reach
    ``step`` on ``node`` (finished in the journal) and is SIGKILLed right there."""
    lab = upgrade_lab.lab
    first = step == boundaries[0]
    argv = ["upgrade", *selection, *upgrade_lab.upgrade_args()] if first else ["upgrade", "--resume"]
    killed = run_until_then_kill(lab, journal, argv, node=node, step=str(step), phase="finished", timeout=1200)
    assert killed < 0, f"shimshift was not killed at {step} (exit {killed})"
    assert not run_finished(journal)
    assert journal_has(journal, node=node, step=str(step), phase="finished")


def resume_to_the_end(upgrade_lab: UpgradeLab, journal: Path) -> None:
    resumed = shimshift(upgrade_lab.lab, journal, "upgrade", "--resume", timeout=2400)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upgrade-failures") / "journal.sqlite"


@pytest.fixture(scope="module")
def workers_journal(journal: Path) -> Path:
    return journal.parent / "workers-journal.sqlite"


@pytest.mark.parametrize("step", CONTROL_PLANE_BOUNDARIES, ids=str)
def test_1_control_plane_killed_after(upgrade_lab: UpgradeLab, journal: Path, step: Step) -> None:
    cp = upgrade_lab.lab.control_plane.name
    kill_after(upgrade_lab, journal, CONTROL_PLANE, cp, CONTROL_PLANE_BOUNDARIES, step)


def test_1_control_plane_resumed_after_the_last_kill(upgrade_lab: UpgradeLab, journal: Path) -> None:
    lab = upgrade_lab.lab
    cp = lab.control_plane.name
    resume_to_the_end(upgrade_lab, journal)
    assert kubelet_release(lab, cp) == f"v{TARGET}"
    assert_on_cri_dockerd(lab, cp, kubelet_minor=24)
    for worker in lab.workers:
        assert kubelet_release(lab, worker.name) == "v1.23.17"


@pytest.fixture
def broken_binaries(upgrade_lab: UpgradeLab, tmp_path: Path) -> Path:
    """kubeadm and kubectl of the target, and a kubelet that reports the target but exits when started."""
    directory = tmp_path / "broken"
    directory.mkdir()
    for name in ("kubeadm", "kubectl"):
        (directory / name).symlink_to(upgrade_lab.binaries / name)
    kubelet = directory / "kubelet"
    kubelet.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Kubernetes v{TARGET}"; exit 0; fi\n'
        'echo "this kubelet is broken on purpose" >&2\nexit 1\n'
    )
    kubelet.chmod(0o755)
    return directory


def test_2_a_worker_whose_new_kubelet_cannot_start_goes_back(
    upgrade_lab: UpgradeLab, broken_binaries: Path, journal: Path
) -> None:
    lab = upgrade_lab.lab
    first = lab.workers[0].name
    broken = journal.parent / "broken-journal.sqlite"
    args = upgrade_lab.upgrade_args("--health-timeout", "90", binaries=broken_binaries)
    result = shimshift(lab, broken, "upgrade", "--all", *args, timeout=1800)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 rolled-back" in result.stdout, result.stdout
    assert journal_has(broken, node=first, step="rollback:restore-binaries", phase="finished")
    assert kubelet_release(lab, first) == "v1.23.17"
    assert_on_dockershim(lab, first)  # also: the annotation back, not cordoned
    assert "/usr/bin/kubelet" in kubelet_cmdline(lab, first)[0]
    report = report_nodes(broken.parent / "reports")[first]
    assert report["status"] == "rolled-back", report
    # --max-failures 1: the other worker was never started.
    assert kubelet_release(lab, lab.workers[1].name) == "v1.23.17"


@pytest.mark.parametrize("step", WORKER_BOUNDARIES, ids=str)
def test_3_workers_killed_after(upgrade_lab: UpgradeLab, workers_journal: Path, step: Step) -> None:
    first_worker = upgrade_lab.lab.workers[0].name
    kill_after(upgrade_lab, workers_journal, ["--all"], first_worker, WORKER_BOUNDARIES, step)


def test_3_workers_resumed_after_the_last_kill(upgrade_lab: UpgradeLab, workers_journal: Path) -> None:
    lab = upgrade_lab.lab
    resume_to_the_end(upgrade_lab, workers_journal)
    for node in lab.nodes:
        assert kubelet_release(lab, node.name) == f"v{TARGET}", node.name
        assert_on_cri_dockerd(lab, node.name, kubelet_minor=24)  # also: Ready, not cordoned
    assert canary_pods(lab) == []


def test_4_rollback_of_an_upgraded_worker(upgrade_lab: UpgradeLab, journal: Path, workers_journal: Path) -> None:
    """`shimshift rollback` of a worker whose upgrade finished: kubelet 1.23 on dockershim again (within
    the skew policy: two minors behind its API server are allowed), and the control plane refused."""
    lab = upgrade_lab.lab
    last = lab.workers[-1].name
    back = shimshift(lab, workers_journal, "rollback", last)
    assert back.returncode == 0, back.stdout + back.stderr
    assert kubelet_release(lab, last) == "v1.23.17"
    assert_on_dockershim(lab, last)
    refused = shimshift(lab, journal, "rollback", lab.control_plane.name)
    assert refused.returncode != 0 and "does not undo it" in refused.stdout + refused.stderr
    assert kubelet_release(lab, lab.control_plane.name) == f"v{TARGET}"


def test_5_install_command_upgrades_and_rolls_back_a_worker(
    upgrade_lab: UpgradeLab, journal: Path, tmp_path: Path
) -> None:
    """`--install-command` instead of --binaries, on the worker test 4 took back: the node's own command
    puts each binary in place (here `install` from a folder per release, standing in for a package
    manager), shimshift checks what it installed; `rollback` runs the same command for the old release."""
    lab = upgrade_lab.lab
    last = lab.workers[-1].name
    for release, source in (("1.24.17", None), ("1.23.17", "/usr/bin")):
        subprocess.run(["docker", "exec", last, "mkdir", "-p", f"/opt/packages/{release}"], check=True)
        for binary in ("kubeadm", "kubelet", "kubectl"):
            if source is None:
                subprocess.run(
                    ["docker", "cp", str(upgrade_lab.binaries / binary), f"{last}:/opt/packages/{release}/{binary}"],
                    check=True,
                )
            else:
                subprocess.run(
                    ["docker", "exec", last, "cp", f"{source}/{binary}", f"/opt/packages/{release}/{binary}"],
                    check=True,
                )
    packages_journal = tmp_path / "packages-journal.sqlite"
    args = [
        arg
        for arg in upgrade_lab.upgrade_args()
        if arg not in ("--binaries", str(upgrade_lab.binaries))
    ]
    command = "install -m 0755 /opt/packages/{version}/{binary} /usr/bin/{binary}"
    upgraded = shimshift(lab, packages_journal, "upgrade", last, *args, "--install-command", command, timeout=1800)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert kubelet_release(lab, last) == f"v{TARGET}"
    assert_on_cri_dockerd(lab, last, kubelet_minor=24)
    back = shimshift(lab, packages_journal, "rollback", last)
    assert back.returncode == 0, back.stdout + back.stderr
    assert kubelet_release(lab, last) == "v1.23.17"
    assert_on_dockershim(lab, last)
