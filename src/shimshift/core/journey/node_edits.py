"""What the journey changes in a node's files that the migration's engine (node_planner.py) does not.

In each drain the migration's engine is planned for the drain's kubelet (``plan_node(kubelet_version=
<to>)``): it moves a dockershim node to cri-dockerd and, on a node already there, removes the flags that
kubelet rejects (``--container-runtime`` from 1.27, ``--pod-infra-container-image`` from 1.35). Two settings
are left: where kubeadm 1.34+ finds the node's socket, and (``--kubelet-websockets-off``) the kubelet's
``ExtendWebSocketsToKubelet`` gate.

kubeadm 1.34 to 1.36 create /var/lib/kubelet/instance-config.yaml on their first upgrade of a node from
``--container-runtime-endpoint`` in kubeadm-flags.env, and write an empty endpoint when the flag is not
there (cmd/kubeadm/app/phases/kubelet/flags.go and phases/upgrade/postupgrade.go at v1.34.12); kubeadm 1.37
only detects the socket when the file is missing (cmd/kubeadm/app/util/config/cluster.go at v1.37.2). So
before the first kubeadm of 1.34 or later runs on a node whose kubeadm-flags.env does not carry the
endpoint, shimshift writes the file itself, as kubeadm would have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from shimshift.core.errors import Refusal
from shimshift.core.flagfile import FlagEdit, encode, parse_env_file, rewrite_assignment
from shimshift.core.kubelet_config import parse_kubelet_config, set_top_level_bool
from shimshift.core.node_files import (
    DEFAULT_KUBELET,
    EXTRA_ARGS_VAR,
    INSTANCE_CONFIG,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    NODE_FILES,
    SYSCONFIG_KUBELET,
    NodeView,
)
from shimshift.core.node_plan import FileChange, NodePlan, apply_changes
from shimshift.core.wellknown import CRI_DOCKERD_ENDPOINT

__all__ = [
    "FEATURE_GATE_UNREADABLE",
    "KUBELET_CONFIGMAP",
    "KUBELET_WEBSOCKETS_FROM",
    "NODE_LOCAL_CRI_SOCKET_FROM",
    "WEBSOCKETS_GATE",
    "allow_cgroup_v1",
    "allow_cgroup_v1_on_node",
    "instance_config_before_kubeadm",
    "kubelet_flag_gate",
    "kubelet_websockets_off",
    "plan_with_websockets_off",
]

#: Where kubeadm keeps the cluster's KubeletConfiguration (the key ``kubelet``), as a Refusal names it.
KUBELET_CONFIGMAP = "ConfigMap kube-system/kubelet-config"

#: The kubelet gate that makes it proxy WebSocket exec/attach/port-forward to the runtime's streaming server
#: itself (pkg/kubelet/server/server.go at v1.37.2), and the first kubelet that knows it (Beta, on:
#: pkg/features/kube_features.go at v1.36.5). An older kubelet exits on an unknown gate.
WEBSOCKETS_GATE = "ExtendWebSocketsToKubelet"
KUBELET_WEBSOCKETS_FROM = 36
#: The code of the refusal of a ``--feature-gates`` value the kubelet itself would not parse (docs/findings.md).
FEATURE_GATE_UNREADABLE = "feature-gate-unreadable"

_FEATURE_GATES = "--feature-gates"
# strconv.ParseBool, which the kubelet's --feature-gates parser uses
# (staging/src/k8s.io/component-base/cli/flag/map_string_bool.go at v1.37.2).
_BOOL_WORDS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})
_FALSE_WORDS = frozenset({"0", "f", "F", "FALSE", "false", "False"})

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


# --------------------------------------------------------------------------------------------------
# ExtendWebSocketsToKubelet off on one node (`--kubelet-websockets-off`)


def _gate_items(value: str, *, file: str, line: int, node: str | None) -> list[tuple[str, str]]:
    """``--feature-gates``' comma-separated ``Name=bool`` pairs as (name, value) in order, parsed as the
    kubelet parses them (empty items skipped, names and values trimmed); a pair it would refuse is refused
    here, naming where it is."""
    out: list[tuple[str, str]] = []
    for item in value.split(","):
        if not item:
            continue
        name, sep, setting = item.partition("=")
        if not sep or setting.strip() not in _BOOL_WORDS or not name.strip():
            raise Refusal(
                f"--feature-gates item {item!r} is not Name=true|false",
                hint="fix the value (the kubelet refuses it too), then run the plan again",
                file=file,
                line=line,
                node=node,
                code=FEATURE_GATE_UNREADABLE,
            )
        out.append((name.strip(), setting.strip()))
    return out


def kubelet_flag_gate(view: NodeView, gate: str) -> bool | None:
    """The gate as the kubelet's command line sets it (None: not there). Repeated ``--feature-gates`` merge,
    the last one winning per gate (component-base/cli/flag/map_string_bool.go at v1.37.2); a value the
    kubelet would refuse is refused."""
    gates: dict[str, str] = {}
    for flag in view.all(_FEATURE_GATES):
        gates.update(_gate_items(flag.value or "", file=flag.file, line=flag.line, node=view.node))
    setting = gates.get(gate)
    return None if setting is None else setting not in _FALSE_WORDS


def _extra_args_file(view: NodeView) -> str:
    """Where KUBELET_EXTRA_ARGS lives: the file that sets it already, else the last packaged one the drop-in
    reads (/etc/default/kubelet on Debian, /etc/sysconfig/kubelet on RPM). kubeadm never writes either."""
    read = [
        path for path, _optional, _line in view.dropin.environment_files if path in (DEFAULT_KUBELET, SYSCONFIG_KUBELET)
    ]
    setting = [path for path in read if path in view.env_files and view.env_files[path].get(EXTRA_ARGS_VAR)]
    if setting:
        return setting[-1]
    if not read:
        raise view.refusal(
            f"the kubelet drop-in reads neither {DEFAULT_KUBELET} nor {SYSCONFIG_KUBELET} (KUBELET_EXTRA_ARGS)",
            hint=f"add EnvironmentFile=-{DEFAULT_KUBELET} to the drop-in, or set the gate off by hand",
            file=view.dropin.path,
        )
    return read[-1]


def kubelet_websockets_off(view: NodeView) -> FileChange | None:
    """``--feature-gates=ExtendWebSocketsToKubelet=false`` in KUBELET_EXTRA_ARGS, merged into a
    ``--feature-gates`` already there (None: the kubelet's command line already turns it off).

    The kubelet file because kubeadm never rewrites it (`kubeadm upgrade node` writes config.yaml and
    kubeadm-flags.env), and a node's own: the cluster's kubelet-config ConfigMap would reach kubelets older
    than 1.36, which exit on the unknown gate. Repeated ``--feature-gates`` merge, the last one winning per
    gate (map_string_bool.go at v1.37.2), and KUBELET_EXTRA_ARGS is last on the command line."""
    if kubelet_flag_gate(view, WEBSOCKETS_GATE) is False:
        return None
    path = _extra_args_file(view)
    before = view.files.get(path)
    env = view.env_files.get(path) or parse_env_file(path, b"")
    mine = [
        f for f in view.all(_FEATURE_GATES) if f.use is not None and f.use.file == path and f.use.key == EXTRA_ARGS_VAR
    ]
    if mine:
        items = _gate_items(mine[-1].value or "", file=path, line=mine[-1].line, node=view.node)
        pairs = [f"{name}={'false' if name == WEBSOCKETS_GATE else setting}" for name, setting in items]
        if WEBSOCKETS_GATE not in dict(items):
            pairs.append(f"{WEBSOCKETS_GATE}=false")
        edit = FlagEdit(set={_FEATURE_GATES: ",".join(pairs)}, remove=frozenset(), append=())
    else:
        edit = FlagEdit(set={}, remove=frozenset(), append=[(_FEATURE_GATES, f"{WEBSOCKETS_GATE}=false")])
    text = rewrite_assignment(env, EXTRA_ARGS_VAR, edit)
    return FileChange(path, before, encode(text))


def plan_with_websockets_off(plan: NodePlan, files: Mapping[str, bytes | None]) -> NodePlan:
    """The drain's plan (node_planner.py, for a 1.36+ kubelet) with :func:`kubelet_websockets_off` made on
    the files as the plan leaves them: one change per file, so the drain's write-config writes it and its
    rollback's restore-config puts the file back as it was."""
    after = apply_changes(files, plan.changes)
    change = kubelet_websockets_off(NodeView.load(after, node=plan.node))
    if change is None or change.after is None:
        return plan
    merged = {c.path: c for c in plan.changes}
    merged[change.path] = FileChange(change.path, files.get(change.path), change.after)
    changes = tuple(merged[path] for path in NODE_FILES if path in merged)
    # The drain's verify then reads the gate off the running kubelet's command line (the last
    # --feature-gates, which is KUBELET_EXTRA_ARGS').
    gates = NodeView.load(apply_changes(files, changes), node=plan.node).value(_FEATURE_GATES)
    expected = {**plan.expected_kubelet_args, **({_FEATURE_GATES: gates} if gates else {})}
    return replace(plan, changes=changes, expected_kubelet_args=expected, noop_reason=None)
