"""kube-system/kubelet-config against a real kube-apiserver, as the user deploy/rbac.yaml binds: the journey's
`--allow-cgroup-v1` edit (adapters/kube/kubelet_configmap.py with core/journey/node_edits.py) reads the
`kubelet` document and writes it back with failCgroupV1: false, leaving the ConfigMap's other keys; absent,
it reads None."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from shimshift.adapters.kube.kubelet_configmap import read_kubelet_configmap, write_kubelet_configmap
from shimshift.core.journey.node_edits import allow_cgroup_v1

if TYPE_CHECKING:
    from tests.kube_world import World

PATH = "/api/v1/namespaces/kube-system/configmaps/kubelet-config"
KUBELET = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"


async def test_fail_cgroup_v1_goes_into_the_kubelet_document_and_nothing_else(world: World, as_shimshift: Any) -> None:
    await world.call("DELETE", PATH, ok=(200, 404))
    assert await read_kubelet_configmap(as_shimshift) is None
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubelet-config"},
            "data": {"kubelet": KUBELET, "other": "kept"}}
    await world.call("POST", "/api/v1/namespaces/kube-system/configmaps", body)

    text = await read_kubelet_configmap(as_shimshift)
    assert text == KUBELET
    await write_kubelet_configmap(as_shimshift, allow_cgroup_v1(text))

    stored = await world.call("GET", PATH)
    assert yaml.safe_load(stored["data"]["kubelet"])["failCgroupV1"] is False
    assert stored["data"]["other"] == "kept"
    await world.call("DELETE", PATH)
