"""Text the lab writes: kubeadm configurations, the CNI configuration, ssh files, sample workloads.

Pure functions, data in, text out. Sources for each choice are cited next to it.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

import yaml

from shimshift.core.errors import Refusal
from shimshift.lab.model import (
    DEMO_NAMESPACE,
    DOCKERSHIM_SOCKET,
    KUBERNETES_VERSION,
    LAB_PREFIX,
    POD_SUBNET,
    SERVICE_SUBNET,
    WORKLOAD_IMAGE,
    LabNode,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

# Preflight errors to ignore, by name (never `all`, so a real problem still stops kubeadm). Seen in a
# node container of this lab: only HTTPProxyCIDR fails, and not because of the node: kubeadm 1.23
# builds "https://[<IPv4>]:1234/" to test proxy settings and Go >= 1.2x's net/url (the lab's binaries
# are built with Go 1.26) rejects an IPv4 literal in brackets ("invalid IP-literal"). SystemVerification
# and Swap pass in the node (cmd/kubeadm/app/preflight/checks.go@v1.23.17 has them; docs/lab.md#kubeadm-offline).
IGNORED_PREFLIGHT_ERRORS: tuple[str, ...] = ("HTTPProxyCIDR",)

# kubeadm 1.23 control-plane taint; 1.24 adds node-role.kubernetes.io/control-plane.
CONTROL_PLANE_TAINT_KEYS = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")


def _dump_all(docs: Iterable[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False, default_flow_style=False)


def kubelet_configuration(*, cgroup_driver: str) -> dict[str, Any]:
    """KubeletConfiguration for every node (kubeadm uploads it to the kubelet-config ConfigMap and
    joining nodes take it from there).

    cgroupDriver must equal the node Docker's driver: kubeadm >= 1.22 defaults to systemd and dockershim
    refuses to start on a mismatch (kubernetes/kubeadm#2376). Disk-based eviction is off as in kind
    (kubernetes-sigs/kind pkg/cluster/internal/kubeadm/config.go): the nodes share the VM's disk and would evict each
    other's pods otherwise.
    No cgroupRoot: with --cgroupns=private each node already sees its own cgroup as / (docs/lab.md#the-node-container).
    """
    if cgroup_driver not in ("cgroupfs", "systemd"):
        raise Refusal(
            f"node Docker reports cgroup driver {cgroup_driver!r}",
            hint="the lab supports Docker with the cgroupfs or systemd cgroup driver",
        )
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": cgroup_driver,
        "failSwapOn": False,
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {"nodefs.available": "0%", "nodefs.inodesFree": "0%", "imagefs.available": "0%"},
    }


def _node_registration(node: LabNode) -> dict[str, Any]:
    return {
        "name": node.name,
        # No URL scheme: this is the form kubeadm 1.23 itself uses for its Docker socket and what it
        # writes into the node annotation (docs/lab.md#kubeadm-offline).
        "criSocket": DOCKERSHIM_SOCKET,
        # Nothing is ever pulled: every image is loaded into the node's Docker beforehand.
        "imagePullPolicy": "Never",
        "kubeletExtraArgs": {"node-ip": node.ip},
        "ignorePreflightErrors": list(IGNORED_PREFLIGHT_ERRORS),
    }


def kubeadm_init_config(
    *, control_plane: LabNode, token: str, cgroup_driver: str, etcd_image_tag: str | None = None
) -> str:
    """The v1beta3 configuration for `kubeadm init --config` on the control-plane node."""
    if control_plane.role != "control-plane":
        raise Refusal(f"{control_plane.name} is not the control-plane node", node=control_plane.name)
    endpoint = f"{control_plane.ip}:6443"
    init: dict[str, Any] = {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "InitConfiguration",
        "bootstrapTokens": [
            {
                "token": token,
                "ttl": "24h0m0s",
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
                "usages": ["signing", "authentication"],
            }
        ],
        "localAPIEndpoint": {"advertiseAddress": control_plane.ip, "bindPort": 6443},
        "nodeRegistration": _node_registration(control_plane),
        # No kube-proxy (services are not needed by the sample workloads) and no CoreDNS (no image of it).
        "skipPhases": ["addon/kube-proxy", "addon/coredns"],
    }
    etcd: dict[str, Any] = {"local": {"dataDir": "/var/lib/etcd"}}
    if etcd_image_tag:
        etcd["local"]["imageTag"] = etcd_image_tag
    cluster: dict[str, Any] = {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "ClusterConfiguration",
        "clusterName": LAB_PREFIX,
        # Pinned: otherwise kubeadm asks dl.k8s.io for stable-1 (docs/lab.md#kubeadm-offline).
        "kubernetesVersion": KUBERNETES_VERSION,
        "controlPlaneEndpoint": endpoint,
        "apiServer": {"certSANs": [control_plane.ip, control_plane.name, "localhost", "127.0.0.1"]},
        "networking": {
            "podSubnet": POD_SUBNET,
            "serviceSubnet": SERVICE_SUBNET,
            "dnsDomain": "cluster.local",
        },
        "etcd": etcd,
    }
    return _dump_all([init, cluster, kubelet_configuration(cgroup_driver=cgroup_driver)])


def kubeadm_join_config(*, node: LabNode, control_plane: LabNode, token: str) -> str:
    """The v1beta3 JoinConfiguration for a worker. The CA is not pinned: the token travels only
    through `docker exec` on a network of the lab's own, as kind does (docs/lab.md#kubeadm-offline)."""
    join = {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": f"{control_plane.ip}:6443",
                "token": token,
                "unsafeSkipCAVerification": True,
            }
        },
        "nodeRegistration": _node_registration(node),
    }
    return _dump_all([join])


def cni_config(*, pod_cidr: str) -> str:
    """Bridge + host-local for one node's pod CIDR.

    cniVersion 0.4.0: dockershim in 1.23 vendors libcni v0.8.1 (docs/lab.md#networking). Pods reach other
    nodes' pods through static routes (see `pod_routes`), as kubeadm-dind-cluster did (docs/lab.md#networking).
    """
    net = ipaddress.ip_network(pod_cidr)
    if net.version != 4 or not ipaddress.ip_network(POD_SUBNET).supernet_of(net):  # type: ignore[arg-type]
        raise Refusal(f"pod CIDR {pod_cidr} is not an IPv4 range inside {POD_SUBNET}")
    gateway = str(net.network_address + 1)
    conf = {
        "cniVersion": "0.4.0",
        "name": "shimshift-lab",
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": str(net), "gateway": gateway}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    return json.dumps(conf, indent=2) + "\n"


def pod_routes(*, node: str, pod_cidrs: Mapping[str, str], node_ips: Mapping[str, str]) -> list[list[str]]:
    """`ip route replace <podCIDR> via <nodeIP>` argv for every OTHER node's pod CIDR."""
    return [
        ["ip", "route", "replace", cidr, "via", node_ips[other]]
        for other, cidr in sorted(pod_cidrs.items())
        if other != node
    ]


ROUTES_UNIT = "/etc/systemd/system/shimshift-lab-pod-routes.service"


def routes_unit(routes: Sequence[Sequence[str]]) -> str:
    """A oneshot unit that puts the pod routes back if the node container restarts (the routes
    live in the container's network namespace, which a restart recreates)."""
    lines = [
        "# shimshift lab: routes to the other nodes' pod CIDRs (bridge CNI has no routing of its own)",
        "[Unit]",
        "Description=shimshift lab: routes to other nodes' pods",
        "After=network.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
    ]
    lines += [f"ExecStart=/usr/sbin/{' '.join(r)}" for r in routes]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def ssh_config(*, nodes: Sequence[LabNode], identity_file: str, known_hosts: str) -> str:
    """One `Host` per node; strict host key checking against the lab's own known_hosts."""
    lines = [f"# shimshift lab: ssh -F {'<this file>'} <node>", ""]
    for n in nodes:
        lines += [
            f"Host {n.name}",
            f"  HostName {n.ip}",
            "  User root",
            "  Port 22",
            f"  IdentityFile {identity_file}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            # Key pinned by name so the ip and the name both match the same entry.
            f"  HostKeyAlias {n.name}",
            "  CheckHostIP no",
            "  BatchMode yes",
            "",
        ]
    return "\n".join(lines)


def known_hosts(host_keys: Mapping[LabNode, Sequence[str]]) -> str:
    """known_hosts lines ``<name>,<ip> <type> <base64>`` from each node's public host key files."""
    out: list[str] = []
    for node, keys in host_keys.items():
        for key in keys:
            parts = key.split()
            if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
                raise Refusal(f"not an ssh public key: {key[:40]!r}", node=node.name)
            out.append(f"{node.name},{node.ip} {parts[0]} {parts[1]}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------
# Sample workloads: one of each kind a drain treats differently (kubectl pkg/drain filters.go).

_SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


RESTRICTED_DEPLOYMENT = "restricted"
# The restricted Pod Security Standard: non-root (the busybox image would run as root, so a uid is set),
# RuntimeDefault seccomp, no privilege escalation, every capability dropped, and a read-only root.
RESTRICTED_POD_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _container(name: str, command: Sequence[str] = _SLEEP, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": WORKLOAD_IMAGE,
        "imagePullPolicy": "Never",
        "command": list(command),
        **extra,
    }


def _pod_spec(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"terminationGracePeriodSeconds": 2, "containers": containers, **extra}


def _prefer_node(node: str) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                        ]
                    },
                }
            ]
        }
    }


def workloads(*, first_worker: str, hardened_demo: bool = True) -> str:
    """Manifests for the sample workloads in namespace shimshift-demo.

    Workloads stay off the control plane (kubeadm's NoSchedule taint is kept, as on a real cluster),
    except the DaemonSet, which tolerates it and so runs on every node. The bare pod, the emptyDir pod
    and the Job lean towards the first worker so that draining it meets every rule at once. The
    ``restricted`` Deployment meets the restricted Pod Security Standard, whose
    ``allowPrivilegeEscalation: false`` kubelets before 1.24 refuse on cri-dockerd (docs/hardened-pods.md): it is
    what the migrate guard must find.
    """
    ns = DEMO_NAMESPACE

    def meta(name: str, **labels: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": ns,
            "labels": {"app.kubernetes.io/part-of": "shimshift-demo", **labels},
        }

    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("web", app="web"),
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": _pod_spec([_container("web")])},
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta("web"),
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("node-agent", app="node-agent"),
            "spec": {
                "selector": {"matchLabels": {"app": "node-agent"}},
                "template": {
                    "metadata": {"labels": {"app": "node-agent"}},
                    "spec": _pod_spec(
                        [_container("agent")],
                        tolerations=[
                            {"key": k, "operator": "Exists", "effect": "NoSchedule"}
                            for k in CONTROL_PLANE_TAINT_KEYS
                        ],
                    ),
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("db", app="db"),
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "db", "port": 5432}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta("db", app="db"),
            "spec": {
                "serviceName": "db",
                "replicas": 2,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": _pod_spec([_container("db")])},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta("bare", app="bare"),
            "spec": _pod_spec([_container("bare")], nodeSelector={"kubernetes.io/hostname": first_worker}),
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("scratch", app="scratch"),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "scratch"}},
                "template": {
                    "metadata": {"labels": {"app": "scratch"}},
                    "spec": _pod_spec(
                        [_container("scratch", volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])],
                        volumes=[{"name": "scratch", "emptyDir": {}}],
                        affinity=_prefer_node(first_worker),
                    ),
                },
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta("once", app="once"),
            "spec": {
                "backoffLimit": 2,
                "template": {
                    "metadata": {"labels": {"app": "once"}},
                    "spec": _pod_spec(
                        [_container("once", command=["true"])],
                        restartPolicy="Never",
                        affinity=_prefer_node(first_worker),
                    ),
                },
            },
        },
    ]
    if hardened_demo:
        docs += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta(RESTRICTED_DEPLOYMENT, app=RESTRICTED_DEPLOYMENT),
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": RESTRICTED_DEPLOYMENT}},
                    "template": {
                        "metadata": {"labels": {"app": RESTRICTED_DEPLOYMENT}},
                        "spec": _pod_spec(
                            [_container("app", securityContext=RESTRICTED_CONTAINER_CONTEXT)],
                            securityContext=RESTRICTED_POD_CONTEXT,
                        ),
                    },
                },
            },
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta(RESTRICTED_DEPLOYMENT),
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": RESTRICTED_DEPLOYMENT}}},
            },
        ]
    return _dump_all(docs)


STATIC_POD_NAME = "static-agent"
STATIC_POD_FILE = "/etc/kubernetes/manifests/shimshift-static-agent.yaml"


def static_pod() -> str:
    """A static pod for the first worker's kubelet (its mirror pod is `static-agent-<node>`)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": STATIC_POD_NAME,
            "namespace": DEMO_NAMESPACE,
            "labels": {"app": STATIC_POD_NAME, "app.kubernetes.io/part-of": "shimshift-demo"},
        },
        "spec": _pod_spec([_container("agent")]),
    }
    return _dump_all([pod])
