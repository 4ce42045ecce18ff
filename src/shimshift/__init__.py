"""shimshift: move Docker Engine nodes from the kubelet's dockershim to cri-dockerd, node by node."""

__version__ = "0.1.0"
