"""What the lab writes: kubeadm configs, flannel's manifests, ssh files, workloads.

Matrix: kubeadm init config (dockershim socket, no pulls, kubeadm's default addons, no preflight error
ignored, pinned version, cgroup driver from the node, kube-proxy in iptables mode leaving conntrack
alone, the kubelet's resolv.conf), join config, flannel (cniVersion 0.3.1 for 1.23's libcni, the pod
subnet, nothing pulled), ssh_config (strict checking, one Host per node), known_hosts from real keys,
sample workloads (every drain rule present, Services in front of servers, nothing pulled).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from shimshift.core.errors import Refusal
from shimshift.core.hardened_pods import TEMPLATE_PATHS, HardenedScan
from shimshift.lab import render
from shimshift.lab.model import LabSpec, plan_nodes

NODES = plan_nodes(LabSpec(workers=2))
CP, W1, W2 = NODES


def _docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


def test_init_config_uses_dockershim_and_never_pulls() -> None:
    docs = _docs(
        render.kubeadm_init_config(control_plane=CP, token="abcdef.0123456789abcdef", cgroup_driver="cgroupfs")
    )
    init, cluster, kubelet, proxy = (
        docs["InitConfiguration"],
        docs["ClusterConfiguration"],
        docs["KubeletConfiguration"],
        docs["KubeProxyConfiguration"],
    )
    assert init["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    reg = init["nodeRegistration"]
    assert reg["criSocket"] == "/var/run/dockershim.sock"
    assert reg["imagePullPolicy"] == "Never"
    assert reg["name"] == "shimshift-lab-control-plane"
    assert reg["kubeletExtraArgs"] == {"node-ip": CP.ip}
    assert "ignorePreflightErrors" not in reg
    assert "skipPhases" not in init  # CoreDNS and kube-proxy, as kubeadm installs them
    assert cluster["kubernetesVersion"] == "v1.23.17"
    assert cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    assert CP.ip in cluster["apiServer"]["certSANs"]
    assert cluster["controlPlaneEndpoint"] == f"{CP.ip}:6443"
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["failSwapOn"] is False
    assert kubelet["evictionHard"]["nodefs.available"] == "0%"
    assert kubelet["resolvConf"] == render.KUBELET_RESOLV_CONF
    assert proxy["mode"] == "iptables"
    assert proxy["conntrack"] == {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}
    assert "etcd" not in cluster or "imageTag" not in cluster["etcd"].get("local", {})


def test_kubelet_resolv_conf_names_the_node_itself() -> None:
    assert render.kubelet_resolv_conf(W1).splitlines()[-1] == f"nameserver {W1.ip}"


def test_init_config_follows_the_node_dockers_cgroup_driver() -> None:
    text = render.kubeadm_init_config(control_plane=CP, token="abcdef.0123456789abcdef", cgroup_driver="systemd")
    assert _docs(text)["KubeletConfiguration"]["cgroupDriver"] == "systemd"


def test_unknown_cgroup_driver_is_refused() -> None:
    with pytest.raises(Refusal, match="cgroup driver"):
        render.kubeadm_init_config(control_plane=CP, token="abcdef.0123456789abcdef", cgroup_driver="none")


def test_init_config_refuses_a_worker() -> None:
    with pytest.raises(Refusal, match="not the control-plane"):
        render.kubeadm_init_config(control_plane=W1, token="abcdef.0123456789abcdef", cgroup_driver="cgroupfs")


def test_join_config_points_at_control_plane_with_dockershim() -> None:
    join = _docs(render.kubeadm_join_config(node=W2, control_plane=CP, token="abcdef.0123456789abcdef"))[
        "JoinConfiguration"
    ]
    assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == f"{CP.ip}:6443"
    assert join["nodeRegistration"]["name"] == "shimshift-lab-worker2"
    assert join["nodeRegistration"]["criSocket"] == "/var/run/dockershim.sock"
    assert join["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": W2.ip}


def test_flannel_runs_on_every_node_with_the_lab_image_and_a_0_3_1_conflist() -> None:
    docs = list(yaml.safe_load_all(render.flannel(image="shimshift.local/flannel:v0.28.0")))
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    config = by["ConfigMap", "kube-flannel-cfg"]["data"]
    assert json.loads(config["cni-conf.json"])["cniVersion"] == "0.3.1"
    assert json.loads(config["net-conf.json"])["Network"] == "10.244.0.0/16"
    daemonset = by["DaemonSet", render.FLANNEL_DAEMONSET]
    assert daemonset["metadata"]["namespace"] == render.FLANNEL_NAMESPACE
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["tolerations"] == [{"operator": "Exists", "effect": "NoSchedule"}]
    containers = spec["initContainers"] + spec["containers"]
    assert {c["image"] for c in containers} == {"shimshift.local/flannel:v0.28.0"}
    assert {c["imagePullPolicy"] for c in containers} == {"Never"}
    assert spec["containers"][0]["args"] == ["--ip-masq", "--kube-subnet-mgr"]
    installs = {tuple(c["args"]) for c in spec["initContainers"]}
    assert ("-f", "/flannel", "/opt/cni/bin/flannel") in installs
    assert ("-f", "/etc/kube-flannel/cni-conf.json", render.FLANNEL_CONFLIST) in installs


def test_flannel_refuses_an_ipv6_pod_subnet() -> None:
    with pytest.raises(Refusal, match="IPv4"):
        render.flannel(image="x", pod_subnet="fd00::/48")


def test_ssh_config_has_strict_host_per_node() -> None:
    text = render.ssh_config(nodes=NODES, identity_file="/lab/id_ed25519", known_hosts="/lab/known_hosts")
    blocks = [b for b in text.split("\n\n") if b.startswith("Host ")]
    assert [b.splitlines()[0] for b in blocks] == [f"Host {n.name}" for n in NODES]
    for node, block in zip(NODES, blocks, strict=True):
        assert f"  HostName {node.ip}" in block
        assert "  User root" in block
        assert "  StrictHostKeyChecking yes" in block
        assert "  UserKnownHostsFile /lab/known_hosts" in block
        assert "  IdentityFile /lab/id_ed25519" in block


def test_known_hosts_lists_name_and_ip_per_key() -> None:
    keys = {W1: ["ssh-ed25519 AAAAC3Nza root@x", "ecdsa-sha2-nistp256 AAAAE2V root@x"]}
    assert render.known_hosts(keys) == (
        f"{W1.name},{W1.ip} ssh-ed25519 AAAAC3Nza\n{W1.name},{W1.ip} ecdsa-sha2-nistp256 AAAAE2V\n"
    )


def test_known_hosts_refuses_garbage() -> None:
    with pytest.raises(Refusal, match="not an ssh public key"):
        render.known_hosts({W1: ["-----BEGIN OPENSSH PRIVATE KEY-----"]})


def test_workloads_cover_every_drain_rule_and_never_pull() -> None:
    docs = list(yaml.safe_load_all(render.workloads(first_worker=W1.name)))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Namespace", "shimshift-demo"),
        ("Deployment", "web"),
        ("PodDisruptionBudget", "web"),
        ("DaemonSet", "node-agent"),
        ("StatefulSet", "db"),
        ("Service", "db"),
        ("Pod", "bare"),
        ("Deployment", "scratch"),
        ("Job", "once"),
        ("Deployment", "restricted"),
        ("PodDisruptionBudget", "restricted"),
    } <= kinds
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert by["Deployment", "web"]["spec"]["replicas"] == 3
    assert by["PodDisruptionBudget", "web"]["spec"]["minAvailable"] == 2
    assert by["StatefulSet", "db"]["spec"]["replicas"] == 2
    assert by["Deployment", "restricted"]["spec"]["replicas"] == 2
    assert by["PodDisruptionBudget", "restricted"]["spec"]["minAvailable"] == 1
    assert by["Service", "db"]["spec"]["clusterIP"] == "None"
    scratch = by["Deployment", "scratch"]["spec"]["template"]["spec"]
    assert scratch["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    tolerations = by["DaemonSet", "node-agent"]["spec"]["template"]["spec"]["tolerations"]
    assert {t["key"] for t in tolerations} >= {"node-role.kubernetes.io/master"}
    pod_specs = [d["spec"] for d in docs if d["kind"] == "Pod"] + [
        d["spec"]["template"]["spec"] for d in docs if "template" in d.get("spec", {})
    ]
    pod_specs.append(yaml.safe_load(render.static_pod())["spec"])
    for spec in pod_specs:
        assert spec["terminationGracePeriodSeconds"] <= 5
        for c in spec["containers"]:
            assert c["imagePullPolicy"] == "Never"
            assert c["image"] == "shimshift.local/busybox:1.0"


def test_web_and_db_answer_behind_their_services() -> None:
    docs = list(yaml.safe_load_all(render.workloads(first_worker=W1.name)))
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    web = by["Service", render.WEB_SERVICE]["spec"]
    assert web["type"] == "ClusterIP" and web["selector"] == {"app": "web"}
    assert web["ports"] == [{"name": "http", "port": render.WEB_PORT, "targetPort": "http"}]
    web_pod = by["Deployment", "web"]["spec"]["template"]["spec"]["containers"][0]
    assert web_pod["ports"] == [{"name": "http", "containerPort": 8080}]
    assert "httpd -f -p 8080" in web_pod["command"][-1]
    db_pod = by["StatefulSet", "db"]["spec"]["template"]["spec"]["containers"][0]
    assert f"httpd -f -p {render.DB_PORT}" in db_pod["command"][-1]
    assert by["Service", render.DB_SERVICE]["spec"]["ports"][0]["port"] == render.DB_PORT


def test_restricted_deployment_meets_the_restricted_profile_and_is_refused_by_the_old_kubelet() -> None:
    docs = list(yaml.safe_load_all(render.workloads(first_worker=W1.name)))
    deployment = next(d for d in docs if (d["kind"], d["metadata"]["name"]) == ("Deployment", "restricted"))
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    scan = HardenedScan()
    for doc in docs:
        if doc["kind"] in TEMPLATE_PATHS:
            scan.add_workload(doc["kind"], doc)
    assert [(w.kind, w.name) for w in scan.result()] == [("Deployment", "restricted")]


def test_the_hardened_demo_can_be_left_out() -> None:
    with_demo = [d for d in yaml.safe_load_all(render.workloads(first_worker="w1")) if d]
    without = [d for d in yaml.safe_load_all(render.workloads(first_worker="w1", hardened_demo=False)) if d]
    restricted = {(d["kind"], d["metadata"]["name"]) for d in with_demo} - {
        (d["kind"], d["metadata"]["name"]) for d in without
    }
    assert restricted == {("Deployment", "restricted"), ("PodDisruptionBudget", "restricted")}
