"""`shimshift lab prepare-upgrade` on the real lab, and kubeadm 1.24.17's own judgement of it.

Matrix: the command prints the folder of kubeadm, kubelet and kubectl v1.24.17 (each asked for its version);
crictl is on every node, answers cri-dockerd's CRI v1 with only ``-r`` (as kubeadm calls it), and no
/etc/crictl.yaml was written; every image `kubeadm config images list` v1.24.17 names (kube-proxy and CoreDNS
included) is in every node's Docker with the ID of the archive's image; a second run changes nothing. Then, on
the control plane, the read-only `kubeadm upgrade plan v1.24.17` with the
v1.24.17 kubeadm at a temporary path: first on dockershim (as the lab comes), then after `shimshift
migrate` of that node (rolled back afterwards); the plan must agree (core.upgrade.plan.plan_agrees) and leave
no health-check Job behind. What kubeadm says on dockershim is asserted as seen, see the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.core.upgrade.binaries import Binary, reported_version, version_argv
from shimshift.core.upgrade.plan import plan_agrees
from shimshift.lab import images
from shimshift.lab.docker import copy_to_node
from shimshift.lab.upgrade_prep import CRICTL_PATH, parse_image_list, saved_image_ids
from tests.e2e.migrate.helpers import (
    CRI_DOCKERD_ENDPOINT,
    CRI_SOCKET_ANNOTATION,
    assert_on_cri_dockerd,
    back_to_dockershim,
    cli_env,
    kubectl,
    node_json,
    shimshift,
)

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e

TARGET = images.UPGRADE_VERSION
# Removed after each use. Not under /tmp: the lab nodes' /tmp is Docker's --tmpfs, mounted noexec (exec
# fails "permission denied"), as /tmp is on many hardened hosts.
NODE_KUBEADM = "/var/tmp/kubeadm-1.24.17"


@dataclass(frozen=True)
class Prepared:
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    artifacts: images.UpgradeArtifacts


def prepare(lab: LabInfo) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "shimshift.cli.main", "lab", "prepare-upgrade", "--dir", str(lab.directory)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=3600,  # a cold cache builds the v1.24.17 control plane first
        check=False,
    )
    sys.stderr.write(f"$ shimshift lab prepare-upgrade\n{result.stdout}{result.stderr}\n")
    return result


@pytest.fixture(scope="module")
def prepared(lab: LabInfo) -> Prepared:
    first = prepare(lab)
    assert first.returncode == 0, first.stdout + first.stderr
    second = prepare(lab)
    # Built by the first run; this only reads where everything is.
    return Prepared(first, second, images.ensure_upgrade_artifacts())


def test_it_prints_the_folder_of_the_target_binaries(prepared: Prepared) -> None:
    folder = Path(prepared.first.stdout.strip())
    assert folder == prepared.artifacts.bin_dir
    for binary in Binary:
        argv = version_argv(binary, str(folder / binary))
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
        assert reported_version(binary, out, source=argv[0]) == TARGET


def test_crictl_is_on_every_node_and_reaches_cri_dockerd_without_a_config_file(
    lab: LabInfo, prepared: Prepared
) -> None:
    local = subprocess.run([str(prepared.artifacts.crictl), "--version"], capture_output=True, text=True, check=True)
    for node in lab.nodes:
        assert lab.exec(node.name, [CRICTL_PATH, "--version"], check=True).stdout == local.stdout
        # kubeadm 1.24 runs `crictl -r <the node's cri-socket> ...` (util/runtime/runtime.go).
        answer = lab.exec(node.name, [CRICTL_PATH, "-r", CRI_DOCKERD_ENDPOINT, "version"], check=True).stdout
        assert "RuntimeName:  docker" in answer and "RuntimeApiVersion:  v1" in answer, answer
        assert lab.exec(node.name, ["test", "-e", "/etc/crictl.yaml"]).returncode == 1, node.name


def test_every_image_kubeadm_asks_for_is_on_every_node(lab: LabInfo, prepared: Prepared) -> None:
    kubeadm = prepared.artifacts.bin_dir / "kubeadm"
    listed = subprocess.run(
        [str(kubeadm), "config", "images", "list", "--kubernetes-version", TARGET],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    wanted = listed
    assert any(ref.endswith("/pause:3.7") for ref in wanted), listed
    assert any("/etcd:" in ref for ref in wanted), listed
    assert any("/kube-proxy:" in ref for ref in wanted) and any("/coredns:" in ref for ref in wanted), listed
    saved = saved_image_ids(prepared.artifacts.images_tar)
    assert set(wanted) <= set(saved), (wanted, saved)
    for node in lab.nodes:
        listing = lab.exec(
            node.name, ["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"], check=True
        ).stdout
        present = parse_image_list(listing)
        assert {ref: present.get(ref) for ref in wanted} == {ref: saved[ref] for ref in wanted}, node.name


def test_a_second_run_changes_nothing(lab: LabInfo, prepared: Prepared) -> None:
    assert prepared.second.returncode == 0, prepared.second.stderr
    assert prepared.second.stdout == prepared.first.stdout
    for node in lab.nodes:
        assert f"{node.name}: crictl already there, images already there" in prepared.second.stderr


def test_crictl_cannot_reach_dockershim(lab: LabInfo, prepared: Prepared) -> None:
    # What kubeadm 1.24's runtime calls meet on a node not yet migrated: the kubelet 1.23 dockershim serves
    # CRI v1alpha2 only and crictl 1.34 speaks v1. `kubeadm upgrade apply|node` would then find no image
    # (`crictl inspecti` fails) and try to pull every one: an ImagePull error, which an
    # ignored ImagePull preflight check would turn into a warning, hiding a stale annotation; the
    # upgrade must see `crictl -r <annotation> info` succeed before it runs kubeadm.
    for node in lab.nodes:
        answer = lab.exec(node.name, [CRICTL_PATH, "-r", "unix:///var/run/dockershim.sock", "info"])
        assert answer.returncode == 1, answer
        assert "unknown service runtime.v1.RuntimeService" in answer.stderr, answer.stderr


def upgrade_plan(lab: LabInfo, prepared: Prepared) -> subprocess.CompletedProcess[str]:
    cp = lab.control_plane.name
    # Through `docker exec -i`: `docker cp` writes beneath the node's /tmp tmpfs, where the node never sees it.
    copy_to_node(cp, NODE_KUBEADM, prepared.artifacts.bin_dir / "kubeadm")
    try:
        result = lab.exec(cp, [NODE_KUBEADM, "upgrade", "plan", TARGET], timeout=300)
    finally:
        lab.exec(cp, ["rm", "-f", NODE_KUBEADM], check=True)
    shown = f"$ {NODE_KUBEADM} upgrade plan {TARGET} (exit {result.returncode})"
    sys.stderr.write(f"{shown}\n{result.stdout}{result.stderr}\n")
    return result


def assert_no_health_check_job(lab: LabInfo) -> None:
    # `kubeadm upgrade plan` is read-only but for this: it creates and deletes a Job (phases/upgrade/health.go).
    jobs = json.loads(kubectl(lab, "-n", "kube-system", "get", "jobs", "-o", "json"))["items"]
    assert [job["metadata"]["name"] for job in jobs] == []


def test_upgrade_plan_on_the_dockershim_control_plane(lab: LabInfo, prepared: Prepared) -> None:
    cp = lab.control_plane.name
    assert node_json(lab, cp)["metadata"]["annotations"][CRI_SOCKET_ANNOTATION] == "/var/run/dockershim.sock"
    result = upgrade_plan(lab, prepared)
    # Seen on the lab: `upgrade plan` never talks to the container runtime (only the image pre-pull of
    # `apply` and of `upgrade node` on a control-plane node do, through crictl), so the dockershim
    # annotation does not stop it: it only warns that the socket has no unix:// scheme, and agrees.
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'prepending scheme "unix" to the "criSocket" with value "/var/run/dockershim.sock"' in result.stderr
    assert plan_agrees(result.stdout, TARGET) is None, result.stdout
    assert_no_health_check_job(lab)


def test_upgrade_plan_agrees_on_the_migrated_control_plane(
    lab: LabInfo, prepared: Prepared, tmp_path: Path
) -> None:
    cp = lab.control_plane.name
    journal = tmp_path / "journal.sqlite"
    try:
        # The control plane runs none of the restricted Deployment's pods (its taint), so the opt-in
        # accepts nothing that would be refused there.
        migrated = shimshift(
            lab, journal, "migrate", cp, "--force", "--delete-emptydir-data", "--accept-refused-hardened-pods"
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert_on_cri_dockerd(lab, cp)
        result = upgrade_plan(lab, prepared)
        assert result.returncode == 0, result.stdout + result.stderr
        assert plan_agrees(result.stdout, TARGET) is None, result.stdout
        assert_no_health_check_job(lab)
    finally:
        back_to_dockershim(lab, journal, cp)
