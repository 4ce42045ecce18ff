"""Node file sets as kubeadm leaves them, per kubelet minor, for the core tests.

Shapes come from kubeadm `cmd/kubeadm/app/phases/kubelet/flags.go` at each tag: kubeadm <=1.23 on the Docker socket
writes only `--network-plugin=cni --pod-infra-container-image=...`; for a CRI socket it writes
`--container-runtime=remote --container-runtime-endpoint=...` (+ the pause image) up to 1.25, the
endpoint and pause image from 1.26, and from 1.34 the endpoint lives in instance-config.yaml/config.yaml.
"""

from __future__ import annotations

from shimshift.core.node_files import (
    DEFAULT_KUBELET,
    INSTANCE_CONFIG,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
    NODE_FILES,
    SYSCONFIG_KUBELET,
)
from shimshift.core.versions import FIRST_MINOR, LAST_MINOR
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT

MINORS = list(range(FIRST_MINOR, LAST_MINOR + 1))

DEB_DROPIN = b"""\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
--kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS \
$KUBELET_EXTRA_ARGS
"""

RPM_DROPIN = DEB_DROPIN.replace(b"/etc/default/kubelet", b"/etc/sysconfig/kubelet")

CONFIG = b"""\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubeadm writes this file on init/join
authentication:
  anonymous:
    enabled: false
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
"""

PAUSE = {20: "k8s.gcr.io/pause:3.2", 21: "k8s.gcr.io/pause:3.4.1", 22: "k8s.gcr.io/pause:3.5"}


def pause_image(minor: int) -> str:
    return PAUSE.get(minor, "registry.k8s.io/pause:3.6" if minor == 23 else "registry.k8s.io/pause:3.9")


def version(minor: int) -> str:
    return f"1.{minor}.3"


def dockershim_node(
    minor: int, *, extra: bytes | None = b"KUBELET_EXTRA_ARGS=--fail-swap-on=false\n"
) -> dict[str, bytes | None]:
    """A node kubeadm set up on dockershim (at 1.20-1.23), its kubelet now at 1.<minor>."""
    files: dict[str, bytes | None] = dict.fromkeys(NODE_FILES)
    files[KUBELET_DROPIN_USR] = DEB_DROPIN
    files[KUBEADM_FLAGS_ENV] = (
        f'KUBELET_KUBEADM_ARGS="--network-plugin=cni --pod-infra-container-image={pause_image(min(minor, 23))}"\n'
    ).encode()
    files[DEFAULT_KUBELET] = extra
    files[KUBELET_CONFIG] = CONFIG
    return files


def cri_dockerd_node(minor: int) -> dict[str, bytes | None]:
    """A node kubeadm 1.<minor> set up with criSocket unix:///var/run/cri-dockerd.sock."""
    files: dict[str, bytes | None] = dict.fromkeys(NODE_FILES)
    files[KUBELET_DROPIN_USR] = DEB_DROPIN
    files[KUBELET_CONFIG] = CONFIG
    pause = f"--pod-infra-container-image={pause_image(minor)}"
    if minor <= 25:
        args = f"--container-runtime=remote --container-runtime-endpoint={CRI_DOCKERD_ENDPOINT} {pause}"
    elif minor <= 33:
        args = f"--container-runtime-endpoint={CRI_DOCKERD_ENDPOINT} {pause}"
    else:
        args = pause if minor == 34 else ""
        files[KUBELET_CONFIG] = CONFIG + f"containerRuntimeEndpoint: {CRI_DOCKERD_ENDPOINT}\n".encode()
        files[INSTANCE_CONFIG] = (
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            f"containerRuntimeEndpoint: {CRI_DOCKERD_ENDPOINT}\n"
        ).encode()
    files[KUBEADM_FLAGS_ENV] = f'KUBELET_KUBEADM_ARGS="{args}"\n'.encode()
    return files


def rpm(files: dict[str, bytes | None]) -> dict[str, bytes | None]:
    """The same node with RPM packages: the drop-in reads /etc/sysconfig/kubelet."""
    out = dict(files)
    out[KUBELET_DROPIN_USR] = RPM_DROPIN
    out[SYSCONFIG_KUBELET], out[DEFAULT_KUBELET] = out[DEFAULT_KUBELET], None
    return out
