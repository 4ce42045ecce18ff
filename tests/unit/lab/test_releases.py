"""The lab's per-release rules: which images, which runtime, which kubeadm and kubelet settings.

Matrix: addon versions per release (what each kubeadm's constants.go asks for); runtime (dockershim below
1.24, cri-dockerd from 1.24) and the criSocket written; kubeadm API (v1beta2 / v1beta3 / v1beta4);
containerRuntimeEndpoint in KubeletConfiguration only from 1.27; failCgroupV1 false and the one ignored
preflight check only from 1.35; the cri-socket annotation only before 1.34; crictl from 1.24; registry;
version parsing and refusals; LabSpec keeps the version (and refuses a non-running cri-dockerd where it
is the runtime).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shimshift.core.errors import Refusal
from shimshift.lab import render
from shimshift.lab.model import CriDockerdMode, LabSpec, plan_nodes
from shimshift.lab.releases import known_releases, release

CP, W1, _ = plan_nodes(LabSpec(workers=2))
TOKEN = "abcdef.0123456789abcdef"


def _docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


@pytest.mark.parametrize(
    ("version", "etcd_tag", "coredns", "pause"),
    [
        ("1.21.14", "3.4.13-0", "v1.8.0", "k8s.gcr.io/pause:3.4.1"),
        ("1.22.17", "3.5.6-0", "v1.8.4", "registry.k8s.io/pause:3.5"),
        ("1.23.17", "3.5.6-0", "v1.8.6", "registry.k8s.io/pause:3.6"),
        ("1.24.17", "3.5.6-0", "v1.8.6", "registry.k8s.io/pause:3.7"),
        ("1.25.16", "3.5.9-0", "v1.9.3", "registry.k8s.io/pause:3.8"),
        ("1.26.15", "3.5.10-0", "v1.9.3", "registry.k8s.io/pause:3.9"),
        ("1.27.16", "3.5.12-0", "v1.10.1", "registry.k8s.io/pause:3.9"),
        ("1.30.14", "3.5.15-0", "v1.11.3", "registry.k8s.io/pause:3.9"),
        ("1.33.13", "3.5.24-0", "v1.12.0", "registry.k8s.io/pause:3.10"),
        ("1.35.8", "3.6.6-0", "v1.13.1", "registry.k8s.io/pause:3.10.1"),
        ("1.37.2", "3.7.0-0", "v1.14.6", "registry.k8s.io/pause:3.10.2"),
    ],
)
def test_each_release_builds_the_addons_its_kubeadm_asks_for(
    version: str, etcd_tag: str, coredns: str, pause: str
) -> None:
    r = release(version)
    assert f"{r.addons.etcd.removeprefix('v')}-0" == etcd_tag
    assert r.addons.coredns == coredns
    assert r.pause_image == pause


@pytest.mark.parametrize(
    ("version", "socket", "api"),
    [
        ("1.21.14", "/var/run/dockershim.sock", "kubeadm.k8s.io/v1beta2"),
        ("1.23.17", "/var/run/dockershim.sock", "kubeadm.k8s.io/v1beta3"),
        ("1.24.17", "unix:///var/run/cri-dockerd.sock", "kubeadm.k8s.io/v1beta3"),
        ("1.30.14", "unix:///var/run/cri-dockerd.sock", "kubeadm.k8s.io/v1beta3"),
        ("1.33.13", "unix:///var/run/cri-dockerd.sock", "kubeadm.k8s.io/v1beta4"),
        ("1.37.2", "unix:///var/run/cri-dockerd.sock", "kubeadm.k8s.io/v1beta4"),
    ],
)
def test_init_and_join_set_the_release_s_cri_socket_in_its_kubeadm_api(version: str, socket: str, api: str) -> None:
    r = release(version)
    init = _docs(render.kubeadm_init_config(control_plane=CP, token=TOKEN, cgroup_driver="systemd", at=r))
    join = _docs(render.kubeadm_join_config(node=W1, control_plane=CP, token=TOKEN, at=r))["JoinConfiguration"]
    assert init["InitConfiguration"]["apiVersion"] == init["ClusterConfiguration"]["apiVersion"] == api
    assert join["apiVersion"] == api
    assert init["InitConfiguration"]["nodeRegistration"]["criSocket"] == socket
    assert join["nodeRegistration"]["criSocket"] == socket
    assert init["ClusterConfiguration"]["kubernetesVersion"] == r.version


def test_v1beta4_writes_extra_args_as_name_value_pairs_and_older_apis_as_a_map() -> None:
    old = _docs(render.kubeadm_join_config(node=W1, control_plane=CP, token=TOKEN, at=release("1.30.14")))
    new = _docs(render.kubeadm_join_config(node=W1, control_plane=CP, token=TOKEN, at=release("1.37.2")))
    assert old["JoinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": W1.ip}
    assert new["JoinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": W1.ip}]


def test_v1beta2_has_no_image_pull_policy_field() -> None:
    def registration(version: str) -> dict[str, Any]:
        text = render.kubeadm_init_config(control_plane=CP, token=TOKEN, cgroup_driver="systemd", at=release(version))
        return dict(_docs(text)["InitConfiguration"]["nodeRegistration"])

    assert "imagePullPolicy" not in registration("1.21.14")
    assert registration("1.22.17")["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("version", "endpoint"),
    [("1.23.17", None), ("1.24.17", None), ("1.26.15", None), ("1.27.16", "unix:///var/run/cri-dockerd.sock")],
)
def test_the_runtime_endpoint_goes_into_the_kubelet_config_only_from_1_27(version: str, endpoint: str | None) -> None:
    r = release(version)
    config = render.kubelet_configuration(cgroup_driver="systemd", at=r)
    assert config.get("containerRuntimeEndpoint") == endpoint


@pytest.mark.parametrize(("version", "refuses_v1"), [("1.33.13", False), ("1.35.8", True), ("1.37.2", True)])
def test_cgroup_v1_needs_fail_cgroup_v1_false_and_one_skipped_check_from_1_35(version: str, refuses_v1: bool) -> None:
    r = release(version)
    docs = _docs(render.kubeadm_init_config(control_plane=CP, token=TOKEN, cgroup_driver="systemd", at=r))
    kubelet, registration = docs["KubeletConfiguration"], docs["InitConfiguration"]["nodeRegistration"]
    if refuses_v1:
        assert kubelet["failCgroupV1"] is False
        assert registration["ignorePreflightErrors"] == ["SystemVerification"]
    else:
        assert "failCgroupV1" not in kubelet
        assert "ignorePreflightErrors" not in registration


@pytest.mark.parametrize(
    ("version", "annotation"),
    [
        ("1.23.17", "/var/run/dockershim.sock"),
        ("1.33.13", "unix:///var/run/cri-dockerd.sock"),
        ("1.35.8", None),
        ("1.37.2", None),
    ],
)
def test_kubeadm_writes_the_cri_socket_annotation_only_before_1_34(version: str, annotation: str | None) -> None:
    assert release(version).cri_socket_annotation == annotation


def test_dockershim_releases_need_no_crictl_and_cri_dockerd_ones_do() -> None:
    assert [r.version for r in known_releases() if r.needs_crictl] == [
        "v1.24.17", "v1.25.16", "v1.26.15", "v1.27.16", "v1.28.15", "v1.29.15", "v1.30.14", "v1.31.14",
        "v1.32.13", "v1.33.13", "v1.34.12", "v1.35.8", "v1.36.5", "v1.37.2",
    ]


def test_cri_dockerd_dropin_names_the_release_s_pause_and_cni() -> None:
    text = render.cri_dockerd_dropin(release("1.27.16"))
    assert "--network-plugin=cni" in text
    assert "--pod-infra-container-image=registry.k8s.io/pause:3.9" in text
    assert "ExecStart=\n" in text  # the packaged ExecStart is replaced, not appended to
    with pytest.raises(Refusal, match="dockershim"):
        render.cri_dockerd_dropin(release("1.23.17"))


@pytest.mark.parametrize("text", ["1.27", "v2.1.0", "latest", "1.27.16-rc.1"])
def test_a_malformed_version_is_refused(text: str) -> None:
    with pytest.raises(Refusal, match="not a Kubernetes release"):
        release(text)


def test_an_unknown_release_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(Refusal, match=r"does not know Kubernetes v1\.28\.1") as refused:
        release("1.28.1")
    assert "1.27.16" in (refused.value.hint or "")


def test_lab_spec_keeps_the_version_normalised_and_round_trips() -> None:
    spec = LabSpec(version="1.27.16")
    assert spec.version == "v1.27.16"
    assert spec == LabSpec(version="v1.27.16")
    assert LabSpec.from_json(spec.to_json()) == spec
    assert spec != LabSpec()  # the e2e fixture rebuilds a lab of another release


def test_a_lab_json_from_before_releases_reads_as_the_default_lab() -> None:
    old = {"workers": 2, "cri_dockerd": "running", "hardened_demo": True}
    assert LabSpec.from_json(old) == LabSpec()


def test_cri_dockerd_must_run_where_it_is_the_only_runtime() -> None:
    with pytest.raises(Refusal, match="leave --cri-dockerd running"):
        LabSpec(version="1.24.17", cri_dockerd=CriDockerdMode.ABSENT)
    assert LabSpec(version="1.23.17", cri_dockerd=CriDockerdMode.ABSENT).cri_dockerd is CriDockerdMode.ABSENT
