"""Text the lab writes: kubeadm configurations, the CNI daemon's manifests, ssh files, sample workloads.

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
    LAB_PREFIX,
    POD_SUBNET,
    SERVICE_SUBNET,
    WORKLOAD_IMAGE,
    LabNode,
)
from shimshift.lab.releases import DEFAULT_VERSION, Release, release

# Finding code (docs/findings.md): the nodes' Docker runs with a cgroup driver the lab cannot configure.
LAB_DOCKER_UNSUPPORTED = "lab-docker-unsupported"

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

# The resolv.conf the kubelet hands to pods with dnsPolicy Default (CoreDNS among them). The node's own
# /etc/resolv.conf names Docker's embedded DNS, 127.0.0.11, which inside a pod's network namespace is
# the pod itself: CoreDNS's `forward . /etc/resolv.conf` would then query itself and its `loop` plugin
# stops it (coredns plugin/loop README, "Troubleshooting"; kubernetes/kubeadm#787, kubernetes-sigs/kind#1975).
# Each node's file names the node's own address instead, where nothing answers DNS: cluster names
# resolve, other names fail at once, and no query leaves the lab's network.
KUBELET_RESOLV_CONF = "/etc/shimshift-lab/resolv.conf"

# kubeadm 1.23 control-plane taint; 1.24 adds node-role.kubernetes.io/control-plane.
CONTROL_PLANE_TAINT_KEYS = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")


def _dump_all(docs: Iterable[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False, default_flow_style=False)


def kubelet_configuration(*, cgroup_driver: str, at: Release | None = None) -> dict[str, Any]:
    """KubeletConfiguration for every node (kubeadm uploads it to the kubelet-config ConfigMap and
    joining nodes take it from there).

    cgroupDriver must equal the node Docker's driver: kubeadm >= 1.22 defaults to systemd and dockershim
    refuses to start on a mismatch (kubernetes/kubeadm#2376). Disk-based eviction is off as in kind
    (kubernetes-sigs/kind pkg/cluster/internal/kubeadm/config.go): the nodes share the VM's disk and would evict each
    other's pods otherwise.
    No cgroupRoot: with --cgroupns=private each node already sees its own cgroup as / (docs/lab.md#the-node-container).
    resolvConf: see :data:`KUBELET_RESOLV_CONF`.
    ``at`` (default 1.23.17) adds what a release needs: its CRI endpoint from 1.27
    (:attr:`Release.runtime_endpoint_in_kubelet_config`) and ``failCgroupV1: false`` from 1.35
    (:attr:`Release.needs_fail_cgroup_v1_false`: this machine runs cgroup v1).
    """
    at = at or release(DEFAULT_VERSION)
    if cgroup_driver not in ("cgroupfs", "systemd"):
        raise Refusal(
            f"node Docker reports cgroup driver {cgroup_driver!r}",
            hint="the lab supports Docker with the cgroupfs or systemd cgroup driver",
            code=LAB_DOCKER_UNSUPPORTED,
        )
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": cgroup_driver,
        "failSwapOn": False,
        "resolvConf": KUBELET_RESOLV_CONF,
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {"nodefs.available": "0%", "nodefs.inodesFree": "0%", "imagefs.available": "0%"},
    }
    if at.runtime_endpoint_in_kubelet_config:
        config["containerRuntimeEndpoint"] = at.cri_socket
    if at.needs_fail_cgroup_v1_false:
        config["failCgroupV1"] = False
    return config


def _node_registration(node: LabNode, at: Release) -> dict[str, Any]:
    registration: dict[str, Any] = {
        "name": node.name,
        # Always explicit (Release.cri_socket says why and in which form).
        "criSocket": at.cri_socket,
    }
    if at.kubeadm_api != "kubeadm.k8s.io/v1beta2":
        # Nothing is ever pulled: every image is loaded into the node's Docker beforehand (the field is
        # new in v1beta3; kubeadm 1.21 pulls only what is missing, which is nothing).
        registration["imagePullPolicy"] = "Never"
    registration["kubeletExtraArgs"] = _extra_args({"node-ip": node.ip}, at)
    if at.cgroup_v1_preflight_error:
        # The one check the lab cannot pass on this cgroup v1 host from 1.35 (Release.cgroup_v1_preflight_error).
        registration["ignorePreflightErrors"] = ["SystemVerification"]
    return registration


def _extra_args(args: Mapping[str, str], at: Release) -> dict[str, str] | list[dict[str, str]]:
    """v1beta4 made extra arguments a list of name/value pairs (kubeadm.k8s.io/v1beta4 doc.go, "Changes")."""
    if at.kubeadm_api == "kubeadm.k8s.io/v1beta4":
        return [{"name": k, "value": v} for k, v in args.items()]
    return dict(args)


def kube_proxy_configuration() -> dict[str, Any]:
    """KubeProxyConfiguration: iptables mode (IPVS is not in this kernel), and nothing written to the
    node's conntrack settings. ``maxPerCore: 0`` leaves ``nf_conntrack_max`` alone, which is global and
    read-only outside the first network namespace (kube-proxy would exit, kubernetes-sigs/kind#2240); the
    two timeouts at 0s leave the per-namespace ones alone (kind and minikube set the same,
    kind pkg/cluster/internal/kubeadm/config.go, minikube pkg/minikube/bootstrapper/bsutil/ktmpl)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def cri_dockerd_dropin(at: Release) -> str:
    """cri-dockerd's settings on the nodes of a lab at 1.24 or later, where it is the kubelet's runtime from
    `kubeadm init` on: the CNI network plugin (flannel's conflist in /etc/cni/net.d, the plugins in
    /opt/cni/bin, both cri-dockerd's defaults) and the pause image that release's kubeadm loads under its
    own tag (cri-dockerd's default, registry.k8s.io/pause:3.10 in v0.3.17 config/options.go, is not in the
    nodes and would be pulled). The packaged unit's ExecStart otherwise (Mirantis/cri-dockerd
    packaging/systemd/cri-docker.service)."""
    if at.uses_dockershim:
        raise Refusal(f"Kubernetes {at.version} runs on dockershim: the lab sets no cri-dockerd flags there")
    return (
        "# shimshift lab: see shimshift.lab.render.cri_dockerd_dropin\n"
        "[Service]\n"
        "ExecStart=\n"
        "ExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd:// --network-plugin=cni"
        f" --pod-infra-container-image={at.pause_image}\n"
    )


def kubelet_resolv_conf(node: LabNode) -> str:
    """The node's :data:`KUBELET_RESOLV_CONF`."""
    return f"# shimshift lab: see shimshift.lab.render.KUBELET_RESOLV_CONF\nnameserver {node.ip}\n"


def kubeadm_init_config(
    *, control_plane: LabNode, token: str, cgroup_driver: str, at: Release | None = None
) -> str:
    """The configuration for `kubeadm init --config` on the control-plane node at release ``at`` (default
    1.23.17), in the kubeadm API that release reads: kubeadm's default addons (CoreDNS, kube-proxy)
    included, as on any kubeadm cluster."""
    at = at or release(DEFAULT_VERSION)
    if control_plane.role != "control-plane":
        raise Refusal(f"{control_plane.name} is not the control-plane node", node=control_plane.name)
    endpoint = f"{control_plane.ip}:6443"
    init: dict[str, Any] = {
        "apiVersion": at.kubeadm_api,
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
        "nodeRegistration": _node_registration(control_plane, at),
    }
    etcd: dict[str, Any] = {"local": {"dataDir": "/var/lib/etcd"}}
    cluster: dict[str, Any] = {
        "apiVersion": at.kubeadm_api,
        "kind": "ClusterConfiguration",
        "clusterName": LAB_PREFIX,
        # Pinned: otherwise kubeadm asks dl.k8s.io for stable-1 (docs/lab.md#kubeadm-offline).
        "kubernetesVersion": at.version,
        "controlPlaneEndpoint": endpoint,
        "apiServer": {"certSANs": [control_plane.ip, control_plane.name, "localhost", "127.0.0.1"]},
        "networking": {
            "podSubnet": POD_SUBNET,
            "serviceSubnet": SERVICE_SUBNET,
            "dnsDomain": "cluster.local",
        },
        "etcd": etcd,
    }
    kubelet = kubelet_configuration(cgroup_driver=cgroup_driver, at=at)
    return _dump_all([init, cluster, kubelet, kube_proxy_configuration()])


def kubeadm_join_config(*, node: LabNode, control_plane: LabNode, token: str, at: Release | None = None) -> str:
    """The JoinConfiguration for a worker at release ``at`` (default 1.23.17). The CA is not pinned: the
    token travels only through `docker exec` on a network of the lab's own, as kind does
    (docs/lab.md#kubeadm-offline)."""
    at = at or release(DEFAULT_VERSION)
    join = {
        "apiVersion": at.kubeadm_api,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": f"{control_plane.ip}:6443",
                "token": token,
                "unsafeSkipCAVerification": True,
            }
        },
        "nodeRegistration": _node_registration(node, at),
    }
    return _dump_all([join])


# ---------------------------------------------------------------------------------------------------
# The CNI daemon: flannel, as its own manifest deploys it (github.com/flannel-io/flannel v0.28.0
# Documentation/kube-flannel.yml), with the images the lab builds and two choices of the lab's:
# - backend host-gw: the nodes share one Docker network (one L2 segment), so a route per node's podCIDR
#   via that node is all pods need; flannel's own docs (Documentation/backends.md) recommend it there.
#   vxlan, the manifest's default, would also work on this kernel; host-gw keeps the packets readable.
# - cniVersion 0.3.1 (the manifest's own in v0.28.0): the dockershim of kubelets before 1.24 vendors
#   libcni v0.8.1, which cannot read results of CNI 1.0.0 (containernetworking/cni pkg/version).

FLANNEL_NAMESPACE = "kube-flannel"
FLANNEL_DAEMONSET = "kube-flannel-ds"
FLANNEL_CONFLIST = "/etc/cni/net.d/10-flannel.conflist"


def flannel(*, image: str, pod_subnet: str = POD_SUBNET) -> str:
    """Namespace, RBAC, configuration and DaemonSet of flannel (``--kube-subnet-mgr``: each node's subnet is
    the podCIDR kubeadm's controller manager gave it)."""
    net = ipaddress.ip_network(pod_subnet)
    if net.version != 4:
        raise Refusal(f"pod subnet {pod_subnet} is not IPv4: the lab's flannel is configured for IPv4 only")
    ns = FLANNEL_NAMESPACE
    labels = {"app": "flannel", "tier": "node"}
    cni_conf = {
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    net_conf = {"Network": str(net), "EnableNFTables": False, "Backend": {"Type": "host-gw"}}
    mounts = {
        "run": {"hostPath": {"path": "/run/flannel"}},
        # /opt/cni/bin is where kubelets and cri-dockerd look by default (the node links it to Debian's plugins).
        "cni-plugin": {"hostPath": {"path": "/opt/cni/bin"}},
        "cni": {"hostPath": {"path": "/etc/cni/net.d"}},
        "flannel-cfg": {"configMap": {"name": "kube-flannel-cfg"}},
        "xtables-lock": {"hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
    }

    def init(name: str, source: str, target: str, *volume_mounts: tuple[str, str]) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "imagePullPolicy": "Never",
            "command": ["cp"],
            "args": ["-f", source, target],
            "volumeMounts": [{"name": v, "mountPath": m} for v, m in volume_mounts],
        }

    daemon = {
        "name": "kube-flannel",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["/opt/bin/flanneld"],
        "args": ["--ip-masq", "--kube-subnet-mgr"],
        "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
        "securityContext": {"privileged": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
        ],
        "volumeMounts": [
            {"name": "run", "mountPath": "/run/flannel"},
            {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
            {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
        ],
    }
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
            "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "flannel", "namespace": ns, "labels": {"k8s-app": "flannel"}},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": ns, "labels": labels},
            "data": {
                "cni-conf.json": json.dumps(cni_conf, indent=2) + "\n",
                "net-conf.json": json.dumps(net_conf, indent=2) + "\n",
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": FLANNEL_DAEMONSET, "namespace": ns, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "flannel"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                        "serviceAccountName": "flannel",
                        "initContainers": [
                            init(
                                "install-cni-plugin", "/flannel", "/opt/cni/bin/flannel", ("cni-plugin", "/opt/cni/bin")
                            ),
                            init(
                                "install-cni",
                                "/etc/kube-flannel/cni-conf.json",
                                FLANNEL_CONFLIST,
                                ("cni", "/etc/cni/net.d"),
                                ("flannel-cfg", "/etc/kube-flannel/"),
                            ),
                        ],
                        "containers": [daemon],
                        "volumes": [{"name": name, **source} for name, source in mounts.items()],
                    },
                },
            },
        },
    ]
    return _dump_all(docs)


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

# The Services the sample workloads answer on, as applications use them: `web` is a ClusterIP Service
# in front of a Deployment (CoreDNS gives its name, kube-proxy's rules carry the traffic), `db` the
# headless Service of a StatefulSet (CoreDNS gives each pod's own name, db-0.db, ...). Their pods run
# busybox's httpd, which answers with the pod's name; the node-agent DaemonSet's pod on every node is
# the client (busybox's nslookup and wget).
WEB_SERVICE = "web"
WEB_PORT = 80
DB_SERVICE = "db"
DB_PORT = 5432
CLIENT_DAEMONSET = "node-agent"


def _http_server(port: int) -> list[str]:
    return [
        "sh",
        "-c",
        f"mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p {port} -h /tmp/www",
    ]


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
                        "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]
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
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": _pod_spec(
                        [_container("web", _http_server(8080), ports=[{"name": "http", "containerPort": 8080}])]
                    ),
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(WEB_SERVICE, app="web"),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": WEB_PORT, "targetPort": "http"}],
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
            "metadata": meta(CLIENT_DAEMONSET, app=CLIENT_DAEMONSET),
            "spec": {
                "selector": {"matchLabels": {"app": CLIENT_DAEMONSET}},
                "template": {
                    "metadata": {"labels": {"app": CLIENT_DAEMONSET}},
                    "spec": _pod_spec(
                        [_container("agent")],
                        tolerations=[
                            {"key": k, "operator": "Exists", "effect": "NoSchedule"} for k in CONTROL_PLANE_TAINT_KEYS
                        ],
                    ),
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(DB_SERVICE, app="db"),
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "db", "port": DB_PORT}]},
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
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": _pod_spec([_container("db", _http_server(DB_PORT))]),
                },
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
