"""The names shimshift and Kubernetes agree on: runtime sockets, node annotations and labels.

Each is defined here once; everything else imports it. Sockets come as a path (what a process on the
node opens) and as an endpoint (what the kubelet's --container-runtime-endpoint and kubeadm's cri-socket
annotation hold).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# cri-dockerd's socket: kubeadm's CRISocketDocker (cmd/kubeadm/app/constants/constants_unix.go, v1.24.0)
# and the value the Kubernetes task "Migrate Docker Engine nodes from dockershim to cri-dockerd" sets.
CRI_DOCKERD_SOCKET = "/var/run/cri-dockerd.sock"
CRI_DOCKERD_ENDPOINT = f"unix://{CRI_DOCKERD_SOCKET}"
# dockershim's socket, the kubelet's default endpoint before 1.24.
DOCKERSHIM_SOCKET = "/var/run/dockershim.sock"
DOCKERSHIM_ENDPOINT = f"unix://{DOCKERSHIM_SOCKET}"
CONTAINERD_ENDPOINT = "unix:///run/containerd/containerd.sock"

# Where kubeadm keeps a node's CRI socket (kubeadm `upgrade` reads it before 1.32).
CRI_SOCKET_ANNOTATION = "kubeadm.alpha.kubernetes.io/cri-socket"
# The kubelet's mark on the API object of a static pod; its value is the pod's UID on the node.
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
# shimshift's own: who cordoned the node (so that only our cordon is undone), and the cri-socket
# annotation before shimshift changed it (so that a rollback restores it).
CORDONED_BY_ANNOTATION = "shimshift.io/cordoned-by"
PREVIOUS_CRI_SOCKET_ANNOTATION = "shimshift.io/previous-cri-socket"

# A kubeadm control-plane node carries the first label; kubeadm before 1.24 also (before 1.20 only) the second.
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


def is_control_plane(labels: Mapping[str, str]) -> bool:
    """Whether a node with these labels is a control-plane node (kubeadm labels it so)."""
    return any(label in labels for label in CONTROL_PLANE_LABELS)
