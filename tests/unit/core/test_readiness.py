"""Upgrade readiness findings.

Matrix: a kubeadm dockershim node and the same node after the plan, checked against every target minor
1.20-1.37; the pitfalls of docs/runtime-facts.md one by one (removed flags in each source file, endpoint without
`remote` before 1.24, no endpoint on 1.27+, pause image and cgroup driver mismatches, CRI API skew).
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.findings import Subject
from shimshift.core.node_files import CRI_DOCKERD_DROPIN, DEFAULT_KUBELET, KUBEADM_FLAGS_ENV, KUBELET_CONFIG
from shimshift.core.node_plan import apply_changes
from shimshift.core.node_planner import plan_node
from shimshift.core.readiness import Finding, Severity, check_readiness

from .nodes import MINORS, cri_dockerd_node, dockershim_node, version


def check(files: dict[str, bytes | None], target: int, **kw: str) -> list[Finding]:
    return check_readiness(target_version=version(target), files=files, **kw)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


def migrated(minor: int = 23) -> dict[str, bytes | None]:
    files = dockershim_node(minor)
    p = plan_node(
        kubelet_version=version(minor),
        files=files,
        cri_dockerd_version="0.3.16",
        docker_cgroup_driver="systemd",
    )
    return apply_changes(files, p.changes)


@pytest.mark.parametrize("target", MINORS)
def test_dockershim_node_against_every_target(target: int) -> None:
    findings = check(dockershim_node(23), target)
    flags = {(f.setting, f.severity) for f in findings}
    if target <= 23:
        assert errors(findings) == []  # dockershim still there
        assert (("--network-plugin", Severity.WARNING) in flags) is (target >= 21)
    else:
        assert ("--network-plugin", Severity.ERROR) in flags
        net = next(f for f in findings if f.setting == "--network-plugin")
        assert (net.file, net.line) == (KUBEADM_FLAGS_ENV, 1)
        # No endpoint: dockershim gone (1.24-1.26) or containerd by default (1.27+).
        runtime = [f for f in errors(findings) if "endpoint" in f.message]
        assert len(runtime) == 1
        assert ("containerd" in runtime[0].message) is (target >= 27)
    assert (("--pod-infra-container-image", Severity.ERROR) in flags) is (target >= 35)


@pytest.mark.parametrize("target", MINORS)
def test_migrated_node_against_every_target(target: int) -> None:
    findings = check(migrated(23), target, cri_dockerd_version="0.3.16", docker_cgroup_driver="systemd")
    bad = {f.setting for f in errors(findings)}
    if target <= 23:
        assert findings == []
    elif target <= 26:
        # --container-runtime=remote is deprecated but accepted until 1.27.
        assert bad == set()
        assert {f.setting for f in findings} == {"--container-runtime", "--pod-infra-container-image"}
    else:
        expected = {"--container-runtime"} | ({"--pod-infra-container-image"} if target >= 35 else set())
        assert bad == expected


def test_plan_for_the_target_minor_clears_every_error() -> None:
    for minor in MINORS:
        files = migrated(minor)
        assert errors(check(files, minor, cri_dockerd_version="0.3.16", docker_cgroup_driver="systemd")) == []


def test_endpoint_without_remote_before_124() -> None:
    files = dockershim_node(
        23, extra=b"KUBELET_EXTRA_ARGS=--container-runtime-endpoint=unix:///run/cri-dockerd.sock\n"
    )
    (f,) = errors(check(files, 23))
    assert (f.file, f.line) == (DEFAULT_KUBELET, 1)
    assert "dockershim" in f.message and "--container-runtime=remote" in f.hint


def test_no_endpoint_on_127_points_at_config() -> None:
    files = cri_dockerd_node(26)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS=""\n'
    (f,) = errors(check(files, 27))
    assert f.file == KUBELET_CONFIG and "containerd" in f.message


def test_pause_image_mismatch_with_cri_dockerd_default() -> None:
    files = cri_dockerd_node(26)
    findings = check(files, 26, cri_dockerd_version="0.3.17")
    (f,) = [f for f in findings if "pause image" in f.message]
    assert f.severity is Severity.WARNING and "registry.k8s.io/pause:3.10" in f.message
    # Set on cri-dockerd through our drop-in: no finding.
    files[CRI_DOCKERD_DROPIN] = (
        b"[Service]\nExecStart=\nExecStart=/usr/bin/cri-dockerd --pod-infra-container-image=registry.k8s.io/pause:3.9\n"
    )
    assert [f for f in check(files, 26, cri_dockerd_version="0.3.17") if "pause" in f.message] == []


def test_cgroup_driver_mismatch() -> None:
    files = migrated(23)
    (f,) = errors(check(files, 24, cri_dockerd_version="0.3.16", docker_cgroup_driver="cgroupfs"))
    assert (f.file, f.line) == (KUBELET_CONFIG, 7)
    # 1.31+ with cri-dockerd 0.3.17+: the kubelet asks cri-dockerd (KubeletCgroupDriverFromCRI).
    files31 = cri_dockerd_node(31)
    assert errors(check(files31, 31, cri_dockerd_version="0.3.17", docker_cgroup_driver="cgroupfs")) == []
    assert len(errors(check(files31, 31, cri_dockerd_version="0.3.16", docker_cgroup_driver="cgroupfs"))) == 1


def test_cri_api_skew() -> None:
    (f,) = errors(check(cri_dockerd_node(26), 26, cri_dockerd_version="0.2.6"))
    assert "CRI API" in f.message


def test_container_runtime_docker_after_124() -> None:
    files = cri_dockerd_node(24)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--container-runtime=docker --container-runtime-endpoint=unix:///run/cri-dockerd.sock"\n'
    )
    assert any("remote is the only value" in f.message for f in errors(check(files, 25)))


def test_dockershim_socket_after_124() -> None:
    files = cri_dockerd_node(24)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=/var/run/dockershim.sock"\n'
    )
    (f,) = errors(check(files, 24))
    assert "nothing serves it" in f.message


def test_config_endpoint_before_127_is_ignored() -> None:
    files = cri_dockerd_node(35)
    assert any("only from 1.27" in f.message for f in check(files, 26))


def test_refused_input_and_version() -> None:
    with pytest.raises(Refusal):
        check(dockershim_node(23, extra=b'KUBELET_EXTRA_ARGS="x\n'), 24)
    with pytest.raises(Refusal):
        check_readiness(target_version="1.38", files=dockershim_node(23))


def test_finding_text() -> None:
    f = Finding(Severity.ERROR, "x", "bad", Subject.of_file("/f", 3), "fix it", "--x")
    assert str(f) == "/f:3: error: bad (fix it)"
    assert (f.file, f.line, f.setting) == ("/f", 3, "--x")
