"""What the journey changes in a node's files that the migration's engine (node_planner.py) does not.

In each drain the migration's engine is planned for the drain's kubelet (``plan_node(kubelet_version=
<to>)``): it moves a dockershim node to cri-dockerd and, on a node already there, removes the flags that
kubelet rejects (``--container-runtime`` from 1.27, ``--pod-infra-container-image`` from 1.35). One setting
is left: where kubeadm 1.34+ finds the node's socket.

kubeadm 1.34 to 1.36 create /var/lib/kubelet/instance-config.yaml on their first upgrade of a node from
``--container-runtime-endpoint`` in kubeadm-flags.env, and write an empty endpoint when the flag is not
there (cmd/kubeadm/app/phases/kubelet/flags.go and phases/upgrade/postupgrade.go at v1.34.12); kubeadm 1.37
only detects the socket when the file is missing (cmd/kubeadm/app/util/config/cluster.go at v1.37.2). So
before the first kubeadm of 1.34 or later runs on a node whose kubeadm-flags.env does not carry the
endpoint, shimshift writes the file itself, as kubeadm would have.
"""

from __future__ import annotations

from shimshift.core.flagfile import encode
from shimshift.core.kubelet_config import parse_kubelet_config, set_top_level_bool
from shimshift.core.node_files import INSTANCE_CONFIG, KUBEADM_FLAGS_ENV, KUBELET_CONFIG, NodeView
from shimshift.core.node_plan import FileChange
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT

__all__ = [
    "KUBELET_CONFIGMAP",
    "NODE_LOCAL_CRI_SOCKET_FROM",
    "allow_cgroup_v1",
    "allow_cgroup_v1_on_node",
    "instance_config_before_kubeadm",
]

#: Where kubeadm keeps the cluster's KubeletConfiguration (the key ``kubelet``), as a Refusal names it.
KUBELET_CONFIGMAP = "ConfigMap kube-system/kubelet-config"

#: The first kubeadm that keeps the node's socket in instance-config.yaml by default (gate beta, on).
NODE_LOCAL_CRI_SOCKET_FROM = 34


def instance_config_before_kubeadm(
    view: NodeView, *, kubeadm_minor: int, endpoint: str = CRI_DOCKERD_ENDPOINT
) -> FileChange | None:
    """The instance-config.yaml to write before kubeadm 1.<kubeadm_minor> runs on the node (None: nothing
    to write: an older kubeadm, the file is there, or kubeadm will move the flag itself)."""
    if kubeadm_minor < NODE_LOCAL_CRI_SOCKET_FROM or view.instance_config is not None:
        return None
    in_flags_file = any(
        flag.name == "--container-runtime-endpoint" and flag.file == KUBEADM_FLAGS_ENV and flag.value
        for flag in view.flags
    )
    if in_flags_file and kubeadm_minor < 37:
        return None  # kubeadm 1.34-1.36 take it from there, with its value
    # The shape kubeadm writes (phases/kubelet/flags.go at v1.34.12): a KubeletConfiguration patch.
    text = (
        "apiVersion: kubelet.config.k8s.io/v1beta1\n"
        "kind: KubeletConfiguration\n"
        f'containerRuntimeEndpoint: "{endpoint}"\n'
    )
    return FileChange(INSTANCE_CONFIG, None, encode(text))


def allow_cgroup_v1(text: str) -> str:
    """The cluster's KubeletConfiguration (the kubelet-config ConfigMap's ``kubelet`` document) with
    ``failCgroupV1: false``; unchanged when it already says so. Only ``--allow-cgroup-v1`` asks for it: a
    1.35+ kubelet refuses a cgroup v1 host otherwise (pkg/kubelet/apis/config/v1beta1/defaults.go at
    v1.35.8), and kubeadm never sets the field but writes every node's config.yaml from this document
    (CHANGELOG/CHANGELOG-1.35.md)."""
    config = parse_kubelet_config(KUBELET_CONFIGMAP, encode(text))
    return set_top_level_bool(config, "failCgroupV1", False)


def allow_cgroup_v1_on_node(config: bytes | None) -> FileChange | None:
    """The node's /var/lib/kubelet/config.yaml with ``failCgroupV1: false`` before a 1.35+ kubelet starts in a
    drain (None: it says so already). kubeadm's 1.35 ``upgrade node`` has written it from the cluster's
    document (:func:`allow_cgroup_v1`) on every node before; this is the drain's own proof, and its repair
    when the file was written otherwise since."""
    if config is None:
        return None
    parsed = parse_kubelet_config(KUBELET_CONFIG, config)
    text = set_top_level_bool(parsed, "failCgroupV1", False)
    return None if text == parsed.text else FileChange(KUBELET_CONFIG, config, encode(text))
