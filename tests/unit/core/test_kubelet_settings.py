"""Where the kubelet takes its runtime endpoint and cgroup driver from, as the planner and the readiness
check both read it.

Matrix: endpoint from the flag (any minor), from config.yaml only where the minor reads it (1.27+),
the version's default otherwise (dockershim before 1.24, none 1.24-1.26, containerd from 1.27); cgroup
driver from the flag, the config, the default; how it compares with Docker's (unknown, match,
taken from cri-dockerd, mismatch).
"""

from __future__ import annotations

import pytest

from shimshift.core.kubelet_settings import (
    CgroupDrivers,
    Setting,
    cgroup_driver,
    compare_cgroup_drivers,
    configured_endpoint,
    runtime_endpoint,
)
from shimshift.core.node_files import KUBEADM_FLAGS_ENV, KUBELET_CONFIG, NodeView
from shimshift.core.versions import facts_for, parse_cri_dockerd_version
from shimshift.core.wellknown import CONTAINERD_ENDPOINT, CRI_DOCKERD_ENDPOINT, DOCKERSHIM_ENDPOINT

from .nodes import CONFIG, dockershim_node


def view(*, flags: str = "", config: bytes = CONFIG) -> NodeView:
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = f'KUBELET_KUBEADM_ARGS="{flags}"\n'.encode()
    files[KUBELET_CONFIG] = config
    return NodeView.load(files)


def test_the_flag_wins_at_every_minor() -> None:
    node = view(flags=f"--container-runtime-endpoint={CRI_DOCKERD_ENDPOINT}")
    for minor in (23, 26, 30):
        setting = configured_endpoint(node, facts_for(minor))
        assert setting is not None and (setting.value, setting.file) == (CRI_DOCKERD_ENDPOINT, KUBEADM_FLAGS_ENV)


def test_the_config_field_counts_from_1_27_only() -> None:
    node = view(config=CONFIG + f"containerRuntimeEndpoint: {CRI_DOCKERD_ENDPOINT}\n".encode())
    assert configured_endpoint(node, facts_for(26)) is None
    setting = configured_endpoint(node, facts_for(27))
    assert setting is not None and (setting.value, setting.file) == (CRI_DOCKERD_ENDPOINT, KUBELET_CONFIG)
    assert setting.line is not None and setting.where == f"{KUBELET_CONFIG}:{setting.line}"


@pytest.mark.parametrize(("minor", "default"), [(23, DOCKERSHIM_ENDPOINT), (25, None), (30, CONTAINERD_ENDPOINT)])
def test_nothing_written_is_the_version_s_default(minor: int, default: str | None) -> None:
    assert configured_endpoint(view(), facts_for(minor)) is None
    assert runtime_endpoint(view(), facts_for(minor)) == (None if default is None else Setting(default))


def test_cgroup_driver_from_flag_config_or_default() -> None:
    assert cgroup_driver(view(flags="--cgroup-driver=cgroupfs")).value == "cgroupfs"  # the config says systemd
    from_config = cgroup_driver(view())
    assert (from_config.value, from_config.file, from_config.is_default) == ("systemd", KUBELET_CONFIG, False)
    default = cgroup_driver(view(config=CONFIG.replace(b"cgroupDriver: systemd\n", b"")))
    assert (default.value, default.is_default, default.where) == ("cgroupfs", True, "the kubelet default")


def test_cgroup_drivers_compared_with_docker_s() -> None:
    kubelet = Setting("cgroupfs")
    old, new = parse_cri_dockerd_version("0.2.0"), parse_cri_dockerd_version("0.3.21")
    assert compare_cgroup_drivers(kubelet, None, facts=facts_for(23), cri_version=new) is CgroupDrivers.UNKNOWN
    assert compare_cgroup_drivers(kubelet, "cgroupfs", facts=facts_for(23), cri_version=new) is CgroupDrivers.MATCH
    assert compare_cgroup_drivers(kubelet, "systemd", facts=facts_for(23), cri_version=new) is CgroupDrivers.MISMATCH
    modern = facts_for(34)
    assert modern.cgroup_driver_from_cri
    assert compare_cgroup_drivers(kubelet, "systemd", facts=modern, cri_version=new) is CgroupDrivers.TAKEN_FROM_CRI
    assert compare_cgroup_drivers(kubelet, "systemd", facts=modern, cri_version=old) is CgroupDrivers.MISMATCH
    assert compare_cgroup_drivers(kubelet, "systemd", facts=modern, cri_version=None) is CgroupDrivers.MISMATCH
