"""core.upgrade: the upgrade's decisions as data.

Matrix:
- ``--to``: exact releases accepted (with or without ``v``); minors, pre-releases, garbage and versions
  outside the rule table refused.
- Version outputs: the real answers of the lab's built kubeadm, kubelet and kubectl (fixtures/upgrade/,
  one file per binary and release, named ``<what was run>.<release>``) parsed to their release; garbage
  refused naming the file.
- ``--binaries DIR``: all three at ``--to`` give their sha256; a missing one, another release, a
  pre-release of the same patch or a bad digest are refused naming the file.
- Skew: 1.23 → 1.24 and patch upgrades pass, resumed half-upgraded clusters pass; downgrades (API server
  or kubelet), skipping a minor (from the API server or from a kubelet), API servers two minors apart,
  a kubelet already newer than the API server and no API server at all are refused.
- Kubelet swap gate: a worker waits for every API server, a control-plane node for its own.
- Order: control plane first, one at a time; workers alone refused while an API server is behind; the
  node that runs ``kubeadm upgrade apply`` and each node's role; the API server's ``/version`` read.
- ``--install-command``: split like shell words but never given to a shell; placeholders expanded per
  argument; unknown placeholders, format specs, no ``{binary}``, empty values and open quotes refused.
- Node sequence: exact steps and argv lists for the first control-plane node, the others and workers,
  with uploads between backup and digest check; rollback per started step; no rollback on the control
  plane once kubeadm upgrade succeeded; the journal record round-trips; bad inputs refused.
- ``kubeadm upgrade plan`` agreement and the text `plan` prints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shimshift.core.actions import Upload
from shimshift.core.errors import Refusal
from shimshift.core.fleet import FleetPhase
from shimshift.core.steps import Step
from shimshift.core.upgrade.binaries import (
    Binary,
    TargetBinary,
    check_binaries,
    command,
    parse_install_commands,
    parse_target,
    reported_version,
    version_argv,
)
from shimshift.core.upgrade.cluster import (
    NodeVersion,
    Role,
    apiserver_version,
    check_skew,
    first_control_plane,
    kubelet_swap_problem,
    node_roles,
    upgrade_phases,
)
from shimshift.core.upgrade.plan import NodeUpgradePlan, plan_agrees, plan_node_upgrade
from shimshift.core.upgrade.render import render_plan
from shimshift.core.versions import KubernetesVersion, parse_kubelet_version

FIXTURES = Path(__file__).parent / "fixtures" / "upgrade"
V123 = parse_kubelet_version("1.23.17")
V124 = parse_kubelet_version("1.24.17")
SHA = {binary: f"{index:x}" * 64 for index, binary in enumerate(Binary, start=10)}


def v(text: str) -> KubernetesVersion:
    return parse_kubelet_version(text)


# --------------------------------------------------------------------------------------------------
# --to and version outputs


@pytest.mark.parametrize("text", ["1.24.17", "v1.24.17", " 1.24.17\n"])
def test_to_accepts_an_exact_release(text: str) -> None:
    assert parse_target(text) == V124


@pytest.mark.parametrize("text", ["1.24", "v1.24.17-rc.0", "1.24.17+dirty", "2.0.0", "latest", "", "1.19.16"])
def test_to_refuses_anything_but_an_exact_known_release(text: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_target(text)
    assert "--to" in str(refused.value)


# Which binary each fixture comes from: its name starts with what was run.
_FIXTURE_BINARY = {"kubeadm-": Binary.KUBEADM, "kubelet-": Binary.KUBELET, "kubectl-": Binary.KUBECTL}


def _fixtures() -> list[tuple[Binary, str, Path]]:
    found = []
    for path in sorted(FIXTURES.iterdir()):
        release = re.search(r"\.(v1\.\d+\.\d+)\.(txt|json)$", path.name)
        binary = next(b for prefix, b in _FIXTURE_BINARY.items() if path.name.startswith(prefix))
        assert release is not None, path
        found.append((binary, release.group(1), path))
    return found


def test_the_fixtures_cover_every_binary_at_both_releases() -> None:
    covered = {(binary, release) for binary, release, _ in _fixtures()}
    assert covered == {(b, r) for b in Binary for r in ("v1.23.17", "v1.24.17")}


@pytest.mark.parametrize(("binary", "release", "path"), _fixtures(), ids=lambda item: getattr(item, "name", ""))
def test_the_real_version_outputs_give_their_release(binary: Binary, release: str, path: Path) -> None:
    assert reported_version(binary, path.read_text(), source=f"/srv/{binary}") == release


@pytest.mark.parametrize(
    ("binary", "output"),
    [
        (Binary.KUBEADM, ""),
        (Binary.KUBEADM, "kubeadm version: &version.Info{Major:\"1\"}"),
        (Binary.KUBELET, "v1.24.17"),  # kubelet says "Kubernetes v1.24.17"
        (Binary.KUBELET, "Kubernetes vX"),
        (Binary.KUBECTL, "Client Version: v1.24.17"),  # not -o json
        (Binary.KUBECTL, '{"serverVersion": {"gitVersion": "v1.24.17"}}'),
        (Binary.KUBECTL, "[]"),
    ],
)
def test_unreadable_version_outputs_are_refused_naming_the_file(binary: Binary, output: str) -> None:
    with pytest.raises(Refusal) as refused:
        reported_version(binary, output, source=f"/srv/{binary}")
    assert refused.value.file == f"/srv/{binary}"
    assert f"not a {binary} version" in str(refused.value)


def test_version_argv_asks_each_binary_its_own_way() -> None:
    assert version_argv(Binary.KUBEADM, "/d/kubeadm") == ("/d/kubeadm", "version", "-o", "short")
    assert version_argv(Binary.KUBELET, "/d/kubelet") == ("/d/kubelet", "--version")
    assert version_argv(Binary.KUBECTL, "/d/kubectl") == ("/d/kubectl", "version", "--client", "-o", "json")


# --------------------------------------------------------------------------------------------------
# --binaries DIR


def outputs_for(release: str) -> dict[Binary, str | None]:
    return {
        Binary.KUBEADM: f"{release}\n",
        Binary.KUBELET: f"Kubernetes {release}\n",
        Binary.KUBECTL: json.dumps({"clientVersion": {"gitVersion": release}, "kustomizeVersion": "v4.5.4"}),
    }


def test_binaries_at_the_target_release_are_taken_with_their_digests() -> None:
    found = check_binaries("/srv/k8s/", outputs=outputs_for("v1.24.17"), digests=SHA, to=V124)
    assert found == tuple(TargetBinary(b, f"/srv/k8s/{b}", "v1.24.17", SHA[b]) for b in Binary)


def test_a_missing_binary_is_refused_naming_its_path() -> None:
    outputs = {**outputs_for("v1.24.17"), Binary.KUBECTL: None}
    with pytest.raises(Refusal) as refused:
        check_binaries("/srv/k8s", outputs=outputs, digests=SHA, to=V124)
    assert refused.value.file == "/srv/k8s/kubectl"


@pytest.mark.parametrize("release", ["v1.24.16", "v1.23.17", "v1.24.17-rc.1"])
def test_a_binary_of_another_release_is_refused_naming_both(release: str) -> None:
    outputs = {**outputs_for("v1.24.17"), Binary.KUBELET: f"Kubernetes {release}"}
    with pytest.raises(Refusal) as refused:
        check_binaries("/srv/k8s", outputs=outputs, digests=SHA, to=V124)
    assert refused.value.file == "/srv/k8s/kubelet"
    assert f"kubelet reports {release}, not --to v1.24.17" in str(refused.value)


def test_a_bad_digest_is_refused() -> None:
    with pytest.raises(Refusal) as refused:
        check_binaries("/srv/k8s", outputs=outputs_for("v1.24.17"), digests={**SHA, Binary.KUBEADM: "abc"}, to=V124)
    assert refused.value.file == "/srv/k8s/kubeadm"


# --------------------------------------------------------------------------------------------------
# Version skew


CP = NodeVersion("cp1", True, V123)
CP2 = NodeVersion("cp2", True, V123)
W1 = NodeVersion("w1", False, V123)
W2 = NodeVersion("w2", False, V123)


@pytest.mark.parametrize(
    ("to", "apiservers", "nodes"),
    [
        (V124, {"cp1": V123}, [CP, W1, W2]),  # the lab
        (v("1.23.18"), {"cp1": V123}, [CP, W1]),  # a patch upgrade
        (V124, {"cp1": V124}, [NodeVersion("cp1", True, V124), W1]),  # resumed after the control plane
        (V124, {"cp1": V124, "cp2": V123}, [NodeVersion("cp1", True, V124), CP2, W1]),  # HA, half way
        (v("1.23.18"), {"cp1": V123}, [NodeVersion("old", False, v("1.22.9"))]),  # a kubelet one minor behind
    ],
)
def test_skew_allows_one_minor_up(
    to: KubernetesVersion, apiservers: dict[str, KubernetesVersion], nodes: list[NodeVersion]
) -> None:
    check_skew(to=to, apiservers=apiservers, nodes=nodes)


@pytest.mark.parametrize(
    ("to", "apiservers", "nodes", "words", "node"),
    [
        (V124, {}, [W1], "no kube-apiserver version", None),
        (V124, {"cp1": v("1.22.17"), "cp2": V124}, [], "more than one minor apart", None),
        (V123, {"cp1": V124}, [], "downgrade the kube-apiserver on cp1", "cp1"),
        (v("1.24.16"), {"cp1": V124}, [], "downgrade the kube-apiserver", "cp1"),
        (v("1.25.0"), {"cp1": V123}, [], "skips a minor: the oldest kube-apiserver runs 1.23.17", None),
        (V124, {"cp1": V124}, [NodeVersion("w9", False, v("1.25.1"))], "downgrade the kubelet", "w9"),
        (V124, {"cp1": V123}, [NodeVersion("w9", False, v("1.22.17"))], "skips a minor for the kubelet", "w9"),
        (V124, {"cp1": V123}, [NodeVersion("w9", False, v("1.24.0"))], "newer than kube-apiserver 1.23", "w9"),
        (V124, {"cp1": V124, "cp2": V123}, [NodeVersion("cp2", True, V124)], "(1.23.17)", "cp2"),
    ],
)
def test_skew_refusals_say_why_and_where(
    to: KubernetesVersion,
    apiservers: dict[str, KubernetesVersion],
    nodes: list[NodeVersion],
    words: str,
    node: str | None,
) -> None:
    with pytest.raises(Refusal) as refused:
        check_skew(to=to, apiservers=apiservers, nodes=nodes)
    assert words in str(refused.value)
    assert refused.value.node == node


def test_a_worker_kubelet_waits_for_every_api_server() -> None:
    problem = kubelet_swap_problem(W1, to=V124, apiservers={"cp1": V124, "cp2": V123})
    assert problem == "kube-apiserver not yet at 1.24 on cp2 (1.23.17): a kubelet 1.24.17 would be newer"
    assert kubelet_swap_problem(W1, to=V124, apiservers={}) is not None
    assert kubelet_swap_problem(W1, to=V124, apiservers={"cp1": V124, "cp2": v("1.24.3")}) is None


def test_a_control_plane_kubelet_waits_for_its_own_api_server_only() -> None:
    assert kubelet_swap_problem(CP, to=V124, apiservers={"cp1": V124, "cp2": V123}) is None
    assert kubelet_swap_problem(CP2, to=V124, apiservers={"cp1": V124, "cp2": V123}) == (
        "its own kube-apiserver still runs 1.23.17: a kubelet 1.24.17 would be newer"
    )
    assert kubelet_swap_problem(CP2, to=V124, apiservers={"cp1": V124}) is not None


def test_the_control_plane_goes_first_one_at_a_time() -> None:
    phases = upgrade_phases([W2, CP2, W1, CP], to=V124, apiservers={"cp1": V123, "cp2": V123}, max_unavailable=2)
    assert phases == [FleetPhase("control-plane", ("cp1", "cp2"), 1), FleetPhase("workers", ("w1", "w2"), 2)]


def test_workers_alone_wait_for_the_control_plane() -> None:
    with pytest.raises(Refusal) as refused:
        upgrade_phases([W1, W2], to=V124, apiservers={"cp1": V123}, max_unavailable=1)
    assert "before the control plane: kube-apiserver on cp1 is older" in str(refused.value)
    phases = upgrade_phases([W1, W2], to=V124, apiservers={"cp1": V124}, max_unavailable=1)
    assert phases == [FleetPhase("workers", ("w1", "w2"), 1)]


def test_kubeadm_upgrade_apply_runs_once_on_the_first_control_plane_node() -> None:
    assert first_control_plane([W1, CP2, CP], to=V124, apiservers={"cp1": V123, "cp2": V123}) == "cp1"
    # Resumed after apply: every control-plane node left runs `kubeadm upgrade node`.
    assert first_control_plane([CP2], to=V124, apiservers={"cp1": V124, "cp2": V123}) is None
    assert first_control_plane([W1], to=V124, apiservers={"cp1": V123}) is None


def test_each_node_gets_its_part() -> None:
    roles = node_roles([W1, CP2, CP], to=V124, apiservers={"cp1": V123, "cp2": V123})
    assert roles == {"cp1": Role.FIRST_CONTROL_PLANE, "cp2": Role.CONTROL_PLANE, "w1": Role.WORKER}
    resumed = node_roles([CP2, W1], to=V124, apiservers={"cp1": V124, "cp2": V123})
    assert resumed == {"cp2": Role.CONTROL_PLANE, "w1": Role.WORKER}


def test_the_api_server_version_is_read_from_its_version_answer() -> None:
    body = json.dumps({"major": "1", "minor": "23", "gitVersion": "v1.23.17", "platform": "linux/amd64"})
    assert apiserver_version(body, source="cp1") == V123
    for bad in ("", "[]", '{"major": "1"}', '{"gitVersion": 17}'):
        with pytest.raises(Refusal) as refused:
            apiserver_version(bad, source="cp1")
        assert "/version of cp1" in str(refused.value)


# --------------------------------------------------------------------------------------------------
# --install-command


def test_install_commands_are_argument_lists_with_placeholders_per_argument() -> None:
    packages = parse_install_commands(
        [
            "apt-get install -y '--option=Dpkg::Options::=--force-confold' {binary}={version}-1.1",
            "apt-mark hold {binary}",
        ]
    )
    commands = packages.commands(Binary.KUBELET, V124)
    assert [c.argv for c in commands] == [
        ("apt-get", "install", "-y", "--option=Dpkg::Options::=--force-confold", "kubelet=1.24.17-1.1"),
        ("apt-mark", "hold", "kubelet"),
    ]


def test_install_commands_never_meet_a_shell() -> None:
    packages = parse_install_commands(["/opt/install {binary} 'a; rm -rf /' $HOME {{literal}}"])
    (command,) = packages.commands(Binary.KUBEADM, V124)
    assert command.argv == ("/opt/install", "kubeadm", "a; rm -rf /", "$HOME", "{literal}")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([], "no --install-command given"),
        (["  "], "--install-command #1 '  ' is empty"),
        (["apt-get install 'kubelet"], "No closing quotation"),
        (["dnf install {binary}-{release}"], "unknown placeholder {release}"),
        (["dnf install {binary:>10}"], "unknown placeholder {binary}"),
        (["dnf install {binary!r}"], "unknown placeholder {binary}"),
        (["dnf install {0}"], "unknown placeholder {0}"),
        (["dnf install kube-{version"], "--install-command #1"),
        (["apt-get update", "apt-get install -y kubernetes={version}"], "no --install-command uses {binary}"),
    ],
)
def test_bad_install_commands_are_refused_naming_the_value(values: list[str], words: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_install_commands(values)
    assert words in str(refused.value)


# --------------------------------------------------------------------------------------------------
# One node's sequence


BINARIES = check_binaries("/srv/k8s", outputs=outputs_for("v1.24.17"), digests=SHA, to=V124)
CP_PRESERVE = ("cp", "--preserve=mode,ownership,timestamps")


def backup_argv(binary: str) -> tuple[str, ...]:
    return (*CP_PRESERVE, "--no-clobber", "--", f"/usr/bin/{binary}", f"/usr/bin/{binary}.shimshift-v1.23.17.bak")


MIGRATION = ["preflight", "cordon", "drain", "write-config", "annotate", "restart-cri-dockerd"]
FINISH = ["restart-kubelet", "verify", "uncordon"]


def test_the_first_control_plane_node_plans_then_applies() -> None:
    plan = plan_node_upgrade(CP, role=Role.FIRST_CONTROL_PLANE, to=V124, binaries=BINARIES)
    assert list(plan.step_names()) == [
        *MIGRATION,
        "install-kubeadm",
        "kubeadm-upgrade-plan",
        "kubeadm-upgrade",
        "install-kubelet-kubectl",
        *FINISH,
    ]
    steps = {str(actions.step): actions for actions in plan.steps}
    assert steps["kubeadm-upgrade-plan"].actions == (
        command(
            ("/usr/bin/kubeadm", "upgrade", "plan", "v1.24.17"),
            "kubeadm agrees to v1.24.17",
            expect="kubeadm upgrade apply v1.24.17",
        ),
    )
    assert [c.argv for c in steps["kubeadm-upgrade"].commands] == [
        ("/usr/bin/kubeadm", "upgrade", "apply", "v1.24.17", "--yes")
    ]
    assert [c.argv for c in steps["preflight"].commands] == [("crictl", "--version")]
    assert plan.no_rollback_after is Step.KUBEADM_UPGRADE


@pytest.mark.parametrize(("node", "role"), [(CP2, Role.CONTROL_PLANE), (W1, Role.WORKER)])
def test_other_nodes_run_kubeadm_upgrade_node(node: NodeVersion, role: Role) -> None:
    plan = plan_node_upgrade(node, role=role, to=V124, binaries=BINARIES)
    upgrade = ["install-kubeadm", "kubeadm-upgrade", "install-kubelet-kubectl"]
    assert list(plan.step_names()) == [*MIGRATION, *upgrade, *FINISH]
    steps = {str(actions.step): actions for actions in plan.steps}
    assert [c.argv for c in steps["kubeadm-upgrade"].commands] == [("/usr/bin/kubeadm", "upgrade", "node")]
    assert plan.no_rollback_after == (None if role is Role.WORKER else Step.KUBEADM_UPGRADE)


def test_binaries_are_backed_up_then_uploaded_then_checked() -> None:
    plan = plan_node_upgrade(W1, role=Role.WORKER, to=V124, binaries=BINARIES)
    steps = {str(actions.step): actions for actions in plan.steps}
    kubelet = steps["install-kubelet-kubectl"].actions[:4]
    assert kubelet == (
        command(backup_argv("kubelet"), "keep the v1.23.17 kubelet for rollback"),
        Upload("/srv/k8s/kubelet", "/usr/bin/kubelet", SHA[Binary.KUBELET], 0o755),
        command(
            ("sha256sum", "--", "/usr/bin/kubelet"),
            "the kubelet in place is the one from --binaries",
            expect=SHA[Binary.KUBELET],
        ),
        command(("/usr/bin/kubelet", "--version"), "kubelet at /usr/bin/kubelet reports v1.24.17", expect="v1.24.17"),
    )
    assert [a.target for a in steps["install-kubeadm"].actions if isinstance(a, Upload)] == ["/usr/bin/kubeadm"]
    assert [a.target for a in steps["install-kubelet-kubectl"].actions if isinstance(a, Upload)] == [
        "/usr/bin/kubelet",
        "/usr/bin/kubectl",
    ]


def test_kubeadm_flags_go_at_the_end_of_every_kubeadm_upgrade_command() -> None:
    flags = ["--ignore-preflight-errors=ImagePull", "--v=5"]
    first = plan_node_upgrade(CP, role=Role.FIRST_CONTROL_PLANE, to=V124, binaries=BINARIES, kubeadm_flags=flags)
    worker = plan_node_upgrade(W1, role=Role.WORKER, to=V124, binaries=BINARIES, kubeadm_flags=flags)
    kubeadm = [
        c.argv for plan in (first, worker) for actions in plan.steps for c in actions.commands if "upgrade" in c.argv
    ]
    assert kubeadm == [
        ("/usr/bin/kubeadm", "upgrade", "plan", "v1.24.17", *flags),
        ("/usr/bin/kubeadm", "upgrade", "apply", "v1.24.17", "--yes", *flags),
        ("/usr/bin/kubeadm", "upgrade", "node", *flags),
    ]


@pytest.mark.parametrize("flag", ["v1.25.0", "-y", "--", "ImagePull"])
def test_kubeadm_arguments_that_are_not_flags_are_refused(flag: str) -> None:
    with pytest.raises(Refusal) as refused:
        plan_node_upgrade(W1, role=Role.WORKER, to=V124, binaries=BINARIES, kubeadm_flags=[flag])
    assert f"kubeadm flag {flag!r} is not a --flag" in str(refused.value)
    assert refused.value.node == "w1"


def test_node_paths_override_where_binaries_live() -> None:
    plan = plan_node_upgrade(
        W1, role=Role.WORKER, to=V124, binaries=BINARIES, node_paths={Binary.KUBELET: "/opt/bin/kubelet"}
    )
    kubelet = next(swap for swap in plan.swaps if swap.binary is Binary.KUBELET)
    assert (kubelet.target, kubelet.backup) == ("/opt/bin/kubelet", "/opt/bin/kubelet.shimshift-v1.23.17.bak")


def test_a_worker_rollback_restores_what_was_started_and_no_more() -> None:
    plan = plan_node_upgrade(W1, role=Role.WORKER, to=V124, binaries=BINARIES)
    started = [*MIGRATION, "install-kubeadm"]
    rollback = plan.rollback_steps(started)
    assert [str(a.step) for a in rollback] == ["rollback:restore-binaries", "rollback:migration"]
    assert [c.argv for c in rollback[0].commands] == [
        (*CP_PRESERVE, "--", "/usr/bin/kubeadm.shimshift-v1.23.17.bak", "/usr/bin/kubeadm.shimshift-restore"),
        ("mv", "-f", "--", "/usr/bin/kubeadm.shimshift-restore", "/usr/bin/kubeadm"),
        ("/usr/bin/kubeadm", "version", "-o", "short"),
    ]
    assert rollback[0].commands[-1].expect == "v1.23.17"

    everything = plan.rollback_steps(plan.step_names())
    names = [str(a.step) for a in everything]
    assert names == ["rollback:restore-binaries", "rollback:restore-kubeadm-files", "rollback:migration"]
    restored = [c.argv[-1] for c in everything[0].commands if c.argv[0] == "mv"]
    assert restored == ["/usr/bin/kubectl", "/usr/bin/kubelet", "/usr/bin/kubeadm"]

    assert [str(a.step) for a in plan.rollback_steps(["preflight", "cordon"])] == ["rollback:migration"]


def test_the_control_plane_is_not_rolled_back_once_kubeadm_upgrade_succeeded() -> None:
    plan = plan_node_upgrade(CP, role=Role.FIRST_CONTROL_PLANE, to=V124, binaries=BINARIES)
    before = [*MIGRATION, "install-kubeadm", "kubeadm-upgrade-plan"]
    assert plan.may_roll_back(before)
    assert [str(a.step) for a in plan.rollback_steps(before)] == ["rollback:restore-binaries", "rollback:migration"]
    after = [*before, "kubeadm-upgrade"]
    assert not plan.may_roll_back(after)
    assert plan.rollback_steps(after) == ()


def test_package_installs_run_the_operator_commands_both_ways() -> None:
    packages = parse_install_commands(["apt-get install -y --allow-downgrades {binary}={version}-1.1"])
    plan = plan_node_upgrade(W1, role=Role.WORKER, to=V124, packages=packages)
    steps = {str(actions.step): actions for actions in plan.steps}
    assert [c.argv for c in steps["install-kubeadm"].commands] == [
        backup_argv("kubeadm"),
        ("apt-get", "install", "-y", "--allow-downgrades", "kubeadm=1.24.17-1.1"),
        ("/usr/bin/kubeadm", "version", "-o", "short"),
    ]
    assert not any(isinstance(a, Upload) for actions in plan.steps for a in actions.actions)
    rollback = plan.rollback_steps(plan.step_names())
    assert [c.argv for c in rollback[0].commands if c.argv[0] == "apt-get"] == [
        ("apt-get", "install", "-y", "--allow-downgrades", f"{name}=1.23.17-1.1")
        for name in ("kubectl", "kubelet", "kubeadm")
    ]


def test_the_plan_survives_the_journal() -> None:
    packages = parse_install_commands(["dnf install -y kubernetes-{binary}-{version}"])
    for plan in (
        plan_node_upgrade(CP, role=Role.FIRST_CONTROL_PLANE, to=V124, binaries=BINARIES),
        plan_node_upgrade(W1, role=Role.WORKER, to=V124, packages=packages),
    ):
        record = json.loads(json.dumps(plan.to_record()))
        assert NodeUpgradePlan.from_record(record) == plan


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one of --binaries and --install-command"),
        ({"binaries": BINARIES, "packages": parse_install_commands(["x {binary}"])}, "exactly one of"),
        ({"binaries": BINARIES, "role": Role.CONTROL_PLANE}, "role control-plane does not fit"),
    ],
)
def test_inconsistent_inputs_are_refused(kwargs: dict[str, object], words: str) -> None:
    arguments: dict[str, object] = {"role": Role.WORKER, **kwargs}
    with pytest.raises(Refusal) as refused:
        plan_node_upgrade(W1, to=V124, **arguments)  # type: ignore[arg-type]
    assert words in str(refused.value)


# --------------------------------------------------------------------------------------------------
# kubeadm upgrade plan, and the plan text


# The end of `kubeadm upgrade plan` when the upgrade is possible (format of plan.go printAvailableUpgrades).
PLAN_OUTPUT = """\
Upgrade to the latest version in the v1.23 series:

COMPONENT                 CURRENT    TARGET
kube-apiserver            v1.23.17   v1.24.17
kube-controller-manager   v1.23.17   v1.24.17
kube-scheduler            v1.23.17   v1.24.17
etcd                      3.5.6-0    3.5.6-0

You can now apply the upgrade by executing the following command:

\tkubeadm upgrade apply v1.24.17

_____________________________________________________________________
"""


def test_kubeadm_upgrade_plan_agreement() -> None:
    assert plan_agrees(PLAN_OUTPUT, "v1.24.17") is None
    assert plan_agrees(PLAN_OUTPUT, "v1.24.16") == "kubeadm upgrade plan offers v1.24.17, not v1.24.16"
    refused = plan_agrees("[upgrade/config] FATAL: the cluster is unreachable\n", "v1.24.17")
    assert refused == "kubeadm upgrade plan does not offer v1.24.17: [upgrade/config] FATAL: the cluster is unreachable"
    assert plan_agrees("", "v1.24.17") == "kubeadm upgrade plan does not offer v1.24.17: no output"


def test_the_plan_text_lists_every_step_command_and_the_rollback() -> None:
    plan = plan_node_upgrade(CP, role=Role.FIRST_CONTROL_PLANE, to=V124, binaries=BINARIES)
    text = render_plan(plan)
    lines = text.splitlines()
    assert lines[0] == "== cp1 (first-control-plane): v1.23.17 -> v1.24.17"
    numbered = [line.split(". ", 1)[1] for line in lines if re.match(r"^\d+\. ", line)]
    assert numbered == list(plan.step_names())
    assert "   $ /usr/bin/kubeadm upgrade apply v1.24.17 --yes" in lines
    assert f"   upload /srv/k8s/kubelet -> /usr/bin/kubelet (sha256 {SHA[Binary.KUBELET]}, mode 755)" in lines
    assert "rollback (before kubeadm-upgrade):" in lines
    rollback = lines[lines.index("rollback (before kubeadm-upgrade):") :]
    assert "     $ mv -f -- /usr/bin/kubeadm.shimshift-restore /usr/bin/kubeadm" in rollback
    assert not any("kubelet.shimshift-restore" in line for line in rollback)  # kubelet is swapped after apply
    worker = render_plan(plan_node_upgrade(W1, role=Role.WORKER, to=V124, binaries=BINARIES))
    assert "\nrollback:\n" in worker
    assert "rollback:restore-kubeadm-files" in worker
    assert Step.DRAIN in plan.step_names()
