"""`shimshift upgrade` as data: the target binaries, the version-skew rules, and each node's sequence.

In the one drain that moves a node to cri-dockerd, also upgrade it to the next Kubernetes minor
(1.23 → 1.24 is the route off dockershim: docs/hardened-pods.md). This module decides; it never runs anything.
The executor (still to be written) runs the argv lists below exactly as they are, one argument per
element, over the node's SSH connection or locally; nothing here is ever joined into a shell string
except for display (:meth:`Command.shown`).

Sources for the rules (cited by section below):

- [skew] Kubernetes version skew policy, https://kubernetes.io/releases/version-skew-policy/ :
  kube-apiserver instances of an HA cluster within one minor of each other; kubelet never newer than
  kube-apiserver (and up to two minors older for 1.24); kube-controller-manager and kube-scheduler
  never newer than kube-apiserver; kubectl within one minor of kube-apiserver; upgrade order: all
  kube-apiservers first, then the other control-plane components, then the kubelets.
- [kubeadm-upgrade] "Upgrading kubeadm clusters" (kubernetes.io, tasks/administer-cluster/kubeadm/
  kubeadm-upgrade): one minor at a time, skipping a minor is unsupported; first control-plane node:
  upgrade kubeadm, `kubeadm upgrade plan`, `kubeadm upgrade apply vX.Y.Z`; the other control-plane
  nodes and the workers: `kubeadm upgrade node`; on each node then drain, upgrade kubelet and
  kubectl, restart the kubelet, uncordon.
- [policy.go] k8s.io/kubernetes v1.24.17 cmd/kubeadm/app/phases/upgrade/policy.go
  EnforceVersionPolicies: refuses an upgrade of more than one minor, a target newer than kubeadm
  itself, and a kubeadm of another minor than the target.
- [plan.go] same tree, cmd/kubeadm/app/cmd/upgrade/plan.go: when the upgrade is possible it ends with
  "You can now apply the upgrade by executing the following command:" and `kubeadm upgrade apply vX.Y.Z`.
- [kubeletconfig.go] same tree, cmd/phases/upgrade/node/kubeletconfig.go and phases/upgrade/
  postupgrade.go: `kubeadm upgrade node|apply` rewrites /var/lib/kubelet/config.yaml and
  /var/lib/kubelet/kubeadm-flags.env (docs/runtime-facts.md#kubeadm-124-upgrade).
- [runtime.go] same tree, cmd/kubeadm/app/util/runtime/runtime.go: kubeadm 1.24 reaches every runtime
  through `crictl` and refuses to run without it on the PATH.

Decisions where upstream is silent:

- Binary backups have fixed names, ``<path>.shimshift-<old version>.bak``, not the timestamped backups
  of file writes: a resumed run and ``shimshift rollback`` must find them without a journal lookup,
  and ``cp --no-clobber`` keeps the first (original) copy when the backup step runs again.
- Fleets that install Kubernetes from distro packages give ``--install-command`` (repeatable): each
  value is split once into arguments the way a POSIX shell would split words (:func:`shlex.split`, so
  quoting works as operators expect) and is never run through a shell; ``{binary}`` and ``{version}``
  are expanded inside each argument. The commands run in the order given, once per binary, kubeadm
  before ``kubeadm upgrade`` and kubelet and kubectl after it, as [kubeadm-upgrade] does with
  apt/yum. A rollback runs them again with the node's old version. Example for the pkgs.k8s.io apt
  repository: ``--install-command 'apt-mark unhold {binary}' --install-command 'apt-get install -y
  --allow-downgrades {binary}={version}-1.1' --install-command 'apt-mark hold {binary}'``.
- On the control plane, the kubelet of a control-plane node is swapped once *its own* kube-apiserver
  runs the target version, as [kubeadm-upgrade] does node by node; in an HA control plane that leaves
  the node's kubelet one minor ahead of the other, not yet upgraded API servers for the minutes until
  they are done (the same window kubeadm's own procedure has). Workers wait for every API server.
- Once ``kubeadm upgrade apply`` or ``kubeadm upgrade node`` has succeeded on a control-plane node,
  shimshift does not undo it (kubeadm rolls its static pods back itself when it fails):
  the run stops and says where things stand.
"""

from __future__ import annotations

import json
import re
import shlex
import string
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shimshift.core.actions import Upload
from shimshift.core.errors import Refusal
from shimshift.core.fleet import ControlPlaneOrder, FleetNode, FleetPhase, plan_phases
from shimshift.core.journey.schedule import release_key
from shimshift.core.journey.skew import CONTROL_PLANE_MINORS_PER_APPLY, SkewRules, apply_problem, kubelet_problem
from shimshift.core.steps import Step
from shimshift.core.versions import KubeletVersion, parse_kubelet_version

__all__ = [
    "ROLLBACK_MIGRATION",
    "Binary",
    "BinarySwap",
    "Command",
    "NodeUpgradePlan",
    "NodeVersion",
    "PackageInstall",
    "Role",
    "StepActions",
    "TargetBinary",
    "apiserver_version",
    "apiserver_versions_from_images",
    "check_binaries",
    "check_skew",
    "kubelet_swap_problem",
    "node_roles",
    "parse_install_commands",
    "parse_target",
    "plan_agrees",
    "plan_node_upgrade",
    "render_plan",
    "reported_version",
    "upgrade_phases",
]


# --------------------------------------------------------------------------------------------------
# Versions and the binaries that report them


_EXACT_RELEASE = re.compile(r"^v?1\.\d+\.\d+$")
_PRERELEASE = re.compile(r"-(alpha|beta|rc)\b")


def parse_target(text: str) -> KubeletVersion:
    """``--to``: an exact release, ``1.24.17`` or ``v1.24.17`` (kubeadm upgrades to a patch, not a minor)."""
    if _EXACT_RELEASE.match(text.strip()) is None:
        raise Refusal(
            f"--to {text!r} is not an exact Kubernetes release",
            hint="give the release as 1.MINOR.PATCH, e.g. --to 1.24.17",
        )
    return parse_kubelet_version(text, what="--to")


def git_version(version: KubeletVersion) -> str:
    """``v1.24.17``, as kubeadm, the binaries and the API server spell a release."""
    return f"v{version}"


class Binary(StrEnum):
    KUBEADM = "kubeadm"
    KUBELET = "kubelet"
    KUBECTL = "kubectl"


#: What each binary is asked for its version; the answers of the lab's v1.23.17 and v1.24.17 builds are
#: the fixtures in tests/unit/core/fixtures/upgrade/.
VERSION_QUERY: Mapping[Binary, tuple[str, ...]] = {
    Binary.KUBEADM: ("version", "-o", "short"),  # "v1.24.17"
    Binary.KUBELET: ("--version",),  # "Kubernetes v1.24.17"
    Binary.KUBECTL: ("version", "--client", "-o", "json"),  # {"clientVersion": {"gitVersion": ...}}
}

#: Where the kubeadm, kubelet and kubectl packages put them (and where the lab's node image has them).
DEFAULT_NODE_PATHS: Mapping[Binary, str] = {binary: f"/usr/bin/{binary}" for binary in Binary}

# kubeadm upgrades itself before `kubeadm upgrade` runs; kubelet and kubectl after it [kubeadm-upgrade].
_KUBEADM_FIRST = (Binary.KUBEADM,)
_AFTER_KUBEADM = (Binary.KUBELET, Binary.KUBECTL)


def version_argv(binary: Binary, path: str) -> tuple[str, ...]:
    return (path, *VERSION_QUERY[binary])


def reported_version(binary: Binary, output: str, *, source: str) -> str:
    """The release ``output`` of :func:`version_argv` names, e.g. ``v1.24.17``; refused when unreadable."""
    text = output.strip()
    raw: object = text
    if binary is Binary.KUBECTL:
        try:
            raw = json.loads(text)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError, TypeError):
            raw = None
    elif binary is Binary.KUBELET:
        raw = text.removeprefix("Kubernetes ") if text.startswith("Kubernetes ") else None
    if not isinstance(raw, str) or re.match(r"^v1\.\d+\.\d+", raw) is None:
        asked = shlex.join(version_argv(binary, source))
        raise Refusal(
            f"`{asked}` printed {text[:80]!r}, not a {binary} version",
            hint=f"put the {binary} binary of the target release there",
            file=source,
        )
    return raw


@dataclass(frozen=True)
class TargetBinary:
    """One binary from ``--binaries DIR``, checked against ``--to``."""

    binary: Binary
    source: str  # its path on the machine shimshift runs on
    git_version: str
    sha256: str


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_binaries(
    directory: str,
    *,
    outputs: Mapping[Binary, str | None],
    digests: Mapping[Binary, str],
    to: KubeletVersion,
) -> tuple[TargetBinary, ...]:
    """kubeadm, kubelet and kubectl of ``directory``, each reporting exactly ``to``, with their sha256.

    ``outputs[b]`` is what ``version_argv(b, DIR/b)`` printed, None when the file is missing or would
    not run. The first problem is refused, naming the file.
    """
    found = []
    for binary in Binary:
        source = f"{directory.rstrip('/')}/{binary}"
        output = outputs.get(binary)
        if output is None:
            raise Refusal(
                f"no runnable {binary} in --binaries {directory}",
                hint=f"put the {binary} binary of {git_version(to)} there, executable",
                file=source,
            )
        reported = reported_version(binary, output, source=source)
        version = parse_kubelet_version(reported, what=f"{source} version")
        if (version.minor, version.patch) != (to.minor, to.patch) or _PRERELEASE.search(reported):
            raise Refusal(
                f"{binary} reports {reported}, not --to {git_version(to)}",
                hint=f"put the {binary} binary of {git_version(to)} in {directory}, or give the --to it is",
                file=source,
            )
        digest = digests.get(binary, "").lower()
        if _SHA256.match(digest) is None:
            raise Refusal(f"no sha256 for {binary}", hint="read the file again", file=source)
        found.append(TargetBinary(binary, source, reported, digest))
    return tuple(found)


# --------------------------------------------------------------------------------------------------
# Version skew [skew], [kubeadm-upgrade], [policy.go]


@dataclass(frozen=True)
class NodeVersion:
    """A node as the upgrade sees it: its role and the release its kubelet runs now."""

    name: str
    control_plane: bool
    kubelet: KubeletVersion


def check_skew(
    *, to: KubeletVersion, apiservers: Mapping[str, KubeletVersion], nodes: Sequence[NodeVersion]
) -> None:
    """Refuse a ``--to`` the cluster may not go to in one step; nothing is changed before this passes.

    ``apiservers`` maps each control-plane node to the release its kube-apiserver reports (its
    ``/version``, or the image tag of its static pod). Refused: no API server known; API servers more
    than one minor apart (the cluster is already outside [skew]); a downgrade of any API server or
    kubelet; a ``--to`` more than one minor above the oldest API server or any kubelet ([kubeadm-upgrade]:
    one minor at a time; [policy.go]); a kubelet already newer than its API server ([skew]: the oldest
    one for a worker, its own for a control-plane node). The rules themselves are core/journey/skew.py's,
    as the journey applies them; here for a one-minor run.
    """
    if not apiservers:
        raise Refusal(
            "no kube-apiserver version is known",
            hint="the upgrade needs the control plane's version; check the kubeconfig reaches the cluster",
        )
    oldest = min(apiservers.values())
    newest_node, newest = max(apiservers.items(), key=lambda item: item[1])
    if newest.minor - oldest.minor > CONTROL_PLANE_MINORS_PER_APPLY:
        raise Refusal(
            f"the kube-apiservers run {oldest} to {newest}, more than one minor apart",
            hint="finish the control plane's last upgrade first (version skew policy)",
        )
    if release_key(newest) > release_key(to):
        raise Refusal(
            f"--to {to} would downgrade the kube-apiserver on {newest_node} ({newest})",
            hint="shimshift upgrades only; downgrades are not supported by kubeadm",
            node=newest_node,
        )
    if to.minor > oldest.minor + CONTROL_PLANE_MINORS_PER_APPLY:
        raise Refusal(
            f"--to {to} skips a minor: the oldest kube-apiserver runs {oldest}",
            hint=f"upgrade one minor at a time: first to the latest 1.{oldest.minor + 1} release "
            f"(`shimshift plan --to {to}` shows the whole journey)",
        )
    for node in sorted(nodes, key=lambda item: item.name):
        if release_key(node.kubelet) > release_key(to):
            raise Refusal(
                f"--to {to} would downgrade the kubelet ({node.kubelet})",
                hint="leave this node out of the run",
                node=node.name,
            )
        if apply_problem(kubelet_minor=node.kubelet.minor, target_minor=to.minor, rules=SkewRules.KUBEADM):
            raise Refusal(
                f"--to {to} skips a minor for the kubelet ({node.kubelet})",
                hint=f"upgrade this node's kubelet to 1.{node.kubelet.minor + 1} first, one minor at a time",
                node=node.name,
            )
        # A control-plane node's kubelet answers to its own API server (the HA window of a resumed
        # run, see the module's decisions); a worker's to the oldest.
        server = apiservers.get(node.name, oldest) if node.control_plane else oldest
        problem = kubelet_problem(kubelet_minor=node.kubelet.minor, apiserver_minor=server.minor)
        if problem is not None:
            raise Refusal(
                f"the kubelet ({node.kubelet}) does not fit beside the kube-apiserver ({server}): {problem}",
                hint="the cluster is outside the version skew policy; upgrade the control plane first",
                node=node.name,
            )


def kubelet_swap_problem(
    node: NodeVersion, *, to: KubeletVersion, apiservers: Mapping[str, KubeletVersion]
) -> str | None:
    """Why ``node``'s kubelet may not become ``to`` yet (None: it may); checked right before the swap.

    A worker waits for every kube-apiserver; a control-plane node for its own (see the module's
    decisions). Minors are compared, as [skew] does.
    """
    if node.control_plane:
        own = apiservers.get(node.name)
        if own is None:
            return f"the kube-apiserver of control-plane node {node.name} reports no version"
        if kubelet_problem(kubelet_minor=to.minor, apiserver_minor=own.minor) is not None:
            return f"its own kube-apiserver still runs {own}: a kubelet {to} would be newer"
        return None
    behind = sorted(name for name, version in apiservers.items() if version.minor < to.minor)
    if not apiservers or behind:
        where = ", ".join(f"{name} ({apiservers[name]})" for name in behind) or "no API server known"
        return f"kube-apiserver not yet at 1.{to.minor} on {where}: a kubelet {to} would be newer"
    return None


def upgrade_phases(
    nodes: Sequence[NodeVersion],
    *,
    to: KubeletVersion,
    apiservers: Mapping[str, KubeletVersion],
    max_unavailable: int,
) -> list[FleetPhase]:
    """Control plane first, one node at a time, then the workers within ``max_unavailable``.

    A run of workers alone is refused while an API server is below ``to``'s minor: workers never go
    before the control plane [skew].
    """
    phases = plan_phases(
        (FleetNode(node.name, node.control_plane) for node in nodes),
        control_plane=ControlPlaneOrder.FIRST,
        max_unavailable=max_unavailable,
    )
    selected_control_plane = any(node.control_plane for node in nodes)
    behind = sorted(name for name, version in apiservers.items() if version.minor < to.minor)
    if behind and not selected_control_plane and nodes:
        raise Refusal(
            f"the workers cannot go to {to} before the control plane: kube-apiserver on "
            f"{', '.join(behind)} is older",
            hint="include the control-plane nodes in the run (or run them first)",
        )
    return phases


def apiserver_version(body: str, *, source: str) -> KubeletVersion:
    """The release in a kube-apiserver's ``/version`` answer (``{"gitVersion": "v1.23.17", ...}``)."""
    try:
        raw = json.loads(body)["gitVersion"]
    except (ValueError, KeyError, TypeError):
        raw = None
    if not isinstance(raw, str):
        raise Refusal(f"/version of {source} has no gitVersion: {body[:80]!r}", hint="is it a kube-apiserver?")
    return parse_kubelet_version(raw, what=f"kube-apiserver version on {source}")


def apiserver_versions_from_images(images: Sequence[tuple[str, str]]) -> dict[str, KubeletVersion]:
    """node → release of its kube-apiserver static pod, read from the image tag kubeadm wrote
    (``registry.k8s.io/kube-apiserver:v1.24.17``); an image without a release tag is refused."""
    versions = {}
    for node, image in images:
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        if _EXACT_RELEASE.match(tag) is None:
            raise Refusal(
                f"the kube-apiserver of {node} runs {image!r}, whose tag is not a release",
                hint="shimshift reads the API server's release from kubeadm's image tag",
                node=node,
            )
        versions[node] = parse_kubelet_version(tag, what=f"kube-apiserver image on {node}")
    return versions


def node_roles(
    nodes: Sequence[NodeVersion], *, to: KubeletVersion, apiservers: Mapping[str, KubeletVersion]
) -> dict[str, Role]:
    """Each selected node's part: the one that applies, the other control-plane nodes, the workers."""
    first = first_control_plane(nodes, to=to, apiservers=apiservers)
    return {
        node.name: Role.FIRST_CONTROL_PLANE
        if node.name == first
        else Role.CONTROL_PLANE
        if node.control_plane
        else Role.WORKER
        for node in nodes
    }


def first_control_plane(
    nodes: Sequence[NodeVersion], *, to: KubeletVersion, apiservers: Mapping[str, KubeletVersion]
) -> str | None:
    """The node that runs ``kubeadm upgrade apply``: the first control-plane node by name, unless an API
    server already runs ``to`` (apply has been done; every control-plane node then runs ``upgrade node``)."""
    if any(release_key(version) >= release_key(to) for version in apiservers.values()):
        return None
    names = sorted(node.name for node in nodes if node.control_plane)
    return names[0] if names else None


# --------------------------------------------------------------------------------------------------
# Commands and the distro-package alternative


@dataclass(frozen=True)
class Command:
    """One command for the node, as an argument list. ``expect`` must appear in its stdout."""

    argv: tuple[str, ...]
    why: str
    expect: str | None = None

    def shown(self) -> str:
        """For display only; never executed."""
        return shlex.join(self.argv)


_PLACEHOLDERS = frozenset({"binary", "version"})


@dataclass(frozen=True)
class PackageInstall:
    """The operator's package commands (``--install-command``, repeatable), as argument templates."""

    templates: tuple[tuple[str, ...], ...]

    def commands(self, binary: Binary, version: KubeletVersion) -> tuple[Command, ...]:
        values = {"binary": str(binary), "version": str(version)}
        return tuple(
            Command(
                tuple(argument.format_map(values) for argument in template),
                f"install {binary} {version} with the operator's package command",
            )
            for template in self.templates
        )


def parse_install_commands(values: Sequence[str]) -> PackageInstall:
    """``--install-command`` values → argument templates; refused naming the value and argument.

    Each value is split into arguments once, as a POSIX shell splits words, and never given to a
    shell. Inside an argument, ``{binary}`` is kubeadm, kubelet or kubectl and ``{version}`` the
    release without its ``v`` (``1.24.17``); ``{{`` and ``}}`` are literal braces. At least one
    command must use ``{binary}``, or all three binaries would get the same command.
    """
    templates = []
    used: set[str] = set()
    for index, value in enumerate(values, start=1):
        where = f"--install-command #{index} {value!r}"
        try:
            argv = tuple(shlex.split(value))
        except ValueError as error:
            raise Refusal(f"{where}: {error}", hint="close the quote") from error
        if not argv:
            raise Refusal(f"{where} is empty", hint="give the package command, e.g. 'apt-get install -y ...'")
        for argument in argv:
            used |= _fields(argument, where=where)
        templates.append(argv)
    if not templates:
        raise Refusal("no --install-command given", hint="give --binaries DIR or at least one --install-command")
    if "binary" not in used:
        raise Refusal(
            "no --install-command uses {binary}",
            hint="name the package with {binary}, e.g. 'apt-get install -y {binary}={version}-1.1'",
        )
    return PackageInstall(tuple(templates))


def _fields(argument: str, *, where: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(argument))
    except ValueError as error:
        raise Refusal(f"{where}: {error} in {argument!r}", hint="write a literal brace as {{ or }}") from error
    fields = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in _PLACEHOLDERS or spec or conversion:
            raise Refusal(
                f"{where}: unknown placeholder {{{name}}} in {argument!r}",
                hint="only {binary} and {version} are expanded; write a literal brace as {{ or }}",
            )
        fields.add(name)
    return fields


# --------------------------------------------------------------------------------------------------
# One node's sequence


class Role(StrEnum):
    FIRST_CONTROL_PLANE = "first-control-plane"  # kubeadm upgrade plan, then apply
    CONTROL_PLANE = "control-plane"  # kubeadm upgrade node (static pods and kubelet config)
    WORKER = "worker"  # kubeadm upgrade node (kubelet config)


#: The plan's name for the migration's own rollback steps (core.steps.MIGRATION_ROLLBACK), which end
#: every rollback of an upgrade; never journalled itself.
ROLLBACK_MIGRATION = "rollback:migration"


#: The migration's steps that run first, unchanged, in the same drain:
#: everything up to and including the cri-dockerd restart. The annotation must be right before any
#: kubeadm 1.24 runs (kubernetes/kubeadm#2597, kubernetes/kubeadm#2870).
MIGRATION_PART: tuple[Step, ...] = (
    Step.PREFLIGHT,
    Step.CORDON,
    Step.DRAIN,
    Step.WRITE_CONFIG,
    Step.ANNOTATE,
    Step.RESTART_CRI_DOCKERD,
)
FINISH: tuple[Step, ...] = (Step.RESTART_KUBELET, Step.VERIFY, Step.UNCORDON)

#: Files `kubeadm upgrade apply|node` rewrites on every node [kubeletconfig.go]. The executor keeps
#: their bytes (in the journal) before kubeadm runs; a rollback writes them back, because a 1.23
#: kubelet must not start on the 1.24 KubeletConfiguration.
KUBEADM_REWRITES: tuple[str, ...] = ("/var/lib/kubelet/config.yaml", "/var/lib/kubelet/kubeadm-flags.env")

_BACKUP_SUFFIX = ".shimshift-{version}.bak"
_PRESERVE = "--preserve=mode,ownership,timestamps"


@dataclass(frozen=True)
class BinarySwap:
    """One binary on one node: where it is, where the old one is kept, what replaces it.

    ``source``/``sha256``: the file from ``--binaries`` and its digest; both None when the operator's
    package command installs it (the digest is then recorded after the install).
    """

    binary: Binary
    target: str
    backup: str
    from_version: str
    to_version: str
    source: str | None
    sha256: str | None

    def backup_command(self) -> Command:
        # --no-clobber: run again after a crash, it keeps the first copy, the original binary.
        return Command(
            ("cp", _PRESERVE, "--no-clobber", "--", self.target, self.backup),
            f"keep the {self.from_version} {self.binary} for rollback",
        )

    def digest_command(self) -> Command:
        return Command(
            ("sha256sum", "--", self.target),
            f"the {self.binary} in place is the one from --binaries",
            expect=self.sha256,
        )

    def version_command(self, *, rollback: bool = False) -> Command:
        version = self.from_version if rollback else self.to_version
        return Command(
            version_argv(self.binary, self.target),
            f"{self.binary} at {self.target} reports {version}",
            expect=version,
        )

    def restore_commands(self) -> tuple[Command, ...]:
        # A copy next to the target, then a rename: the kubelet's file may be running (cp onto it
        # fails with "Text file busy") and a rename never leaves the path without a binary.
        staged = f"{self.target}.shimshift-restore"
        return (
            Command(("cp", _PRESERVE, "--", self.backup, staged), f"stage the {self.from_version} {self.binary}"),
            Command(("mv", "-f", "--", staged, self.target), f"put the {self.from_version} {self.binary} back"),
        )


@dataclass(frozen=True)
class StepActions:
    """What one step does beyond what its name already means, in order. ``note`` is for the plan's reader."""

    step: Step | str  # a Step, or ROLLBACK_MIGRATION
    actions: tuple[Command | Upload, ...] = ()
    note: str = ""

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(action for action in self.actions if isinstance(action, Command))


@dataclass(frozen=True)
class NodeUpgradePlan:
    """Everything `upgrade` will do to one node, and how a rollback undoes it."""

    node: str
    role: Role
    from_version: str
    to_version: str
    swaps: tuple[BinarySwap, ...]
    steps: tuple[StepActions, ...]
    # The step after whose success this node is never rolled back (control plane only: kubeadm restores its own
    # static pods when it fails).
    no_rollback_after: Step | None
    # The operator's package commands when they install the binaries (None: uploads from --binaries).
    packages: PackageInstall | None = None

    def step_names(self) -> tuple[str, ...]:
        return tuple(str(actions.step) for actions in self.steps)

    def may_roll_back(self, finished: Collection[str]) -> bool:
        """Whether a failure after the steps in ``finished`` is rolled back (else: stop and report)."""
        return self.no_rollback_after is None or str(self.no_rollback_after) not in finished

    def rollback_steps(self, started: Collection[str]) -> tuple[StepActions, ...]:
        """What undoes the steps in ``started`` (finished or cut short), in order; empty when
        :meth:`may_roll_back` says no. Binaries whose install never started are left alone (their
        backup does not exist yet); the migration's own rollback comes last."""
        if not self.may_roll_back(started):
            return ()
        restore = [command for swap in self.swaps_to_restore(started) for command in self.restore_commands(swap)]
        steps = [StepActions(Step.RESTORE_BINARIES, tuple(restore))] if restore else []
        if str(Step.KUBEADM_UPGRADE) in started:
            steps.append(
                StepActions(
                    Step.RESTORE_KUBEADM_FILES,
                    note=f"write back {', '.join(KUBEADM_REWRITES)} as they were before kubeadm ran",
                )
            )
        steps.append(
            StepActions(
                ROLLBACK_MIGRATION,
                note="the migration's own rollback: files, annotation, restarts, proof of dockershim, uncordon",
            )
        )
        return tuple(steps)

    def swaps_to_restore(self, started: Collection[str]) -> list[BinarySwap]:
        """The binaries whose install step started, newest first."""
        return [
            swap
            for swap in reversed(self.swaps)
            if str(Step.INSTALL_KUBEADM if swap.binary is Binary.KUBEADM else Step.INSTALL_KUBELET) in started
        ]

    def restore_commands(self, swap: BinarySwap) -> tuple[Command, ...]:
        """What puts ``swap``'s old binary back, and proves it."""
        if self.packages is not None:
            restore = self.packages.commands(swap.binary, parse_kubelet_version(swap.from_version))
        else:
            restore = swap.restore_commands()
        return (*restore, swap.version_command(rollback=True))

    def to_record(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_record` gives the same plan back (the journal keeps it at preflight)."""
        return {
            "node": self.node,
            "role": str(self.role),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "swaps": [_swap_record(swap) for swap in self.swaps],
            "steps": [_actions_record(actions) for actions in self.steps],
            "no_rollback_after": None if self.no_rollback_after is None else str(self.no_rollback_after),
            "packages": None if self.packages is None else [list(t) for t in self.packages.templates],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> NodeUpgradePlan:
        after = record["no_rollback_after"]
        packages = record["packages"]
        return cls(
            node=record["node"],
            role=Role(record["role"]),
            from_version=record["from_version"],
            to_version=record["to_version"],
            swaps=tuple(
                BinarySwap(**{**item, "binary": Binary(item["binary"])}) for item in record["swaps"]
            ),
            steps=tuple(_actions_from(item) for item in record["steps"]),
            no_rollback_after=None if after is None else Step(after),
            packages=None if packages is None else PackageInstall(tuple(tuple(t) for t in packages)),
        )


def plan_node_upgrade(
    node: NodeVersion,
    *,
    role: Role,
    to: KubeletVersion,
    binaries: Sequence[TargetBinary] | None = None,
    packages: PackageInstall | None = None,
    node_paths: Mapping[Binary, str] | None = None,
    kubeadm_flags: Sequence[str] = (),
) -> NodeUpgradePlan:
    """The node's whole sequence, forward and rollback, from checked inputs.

    Exactly one of ``binaries`` (from :func:`check_binaries`) and ``packages`` (from
    :func:`parse_install_commands`) says how the binaries get there. ``node_paths`` overrides where
    the node keeps a binary (default :data:`DEFAULT_NODE_PATHS`; the preflight reads the kubelet's
    from its running process). ``kubeadm_flags`` go, each as one argument, at the end of every
    ``kubeadm upgrade`` command: kubeadm 1.24 pre-pulls kube-proxy's and CoreDNS's images on the
    control plane even where those addons are not deployed (cmd/upgrade/apply.go, phases/upgrade/node/
    preflight.go, images.GetControlPlaneImages), and its preflight refuses a cluster without CoreDNS
    ("CoreDNSUnsupportedPlugins: start version '' not supported", seen in the lab), so a cluster
    without them, like the lab, needs
    ``--ignore-preflight-errors=ImagePull,CoreDNSUnsupportedPlugins,CoreDNSMigration``.
    """
    for flag in kubeadm_flags:
        if not flag.startswith("--") or flag == "--":
            raise Refusal(
                f"kubeadm flag {flag!r} is not a --flag",
                hint="give each kubeadm flag as --name=value, e.g. --ignore-preflight-errors=ImagePull",
                node=node.name,
            )
    if (binaries is None) == (packages is None):
        raise Refusal(
            "give exactly one of --binaries and --install-command",
            hint="--binaries DIR copies the files; --install-command runs your package manager",
        )
    if (role is Role.WORKER) == node.control_plane:
        raise Refusal(f"role {role} does not fit this node", hint="a bug in the caller", node=node.name)
    paths = {**DEFAULT_NODE_PATHS, **(node_paths or {})}
    old, new = git_version(node.kubelet), git_version(to)
    by_binary = {item.binary: item for item in binaries or ()}
    swaps = tuple(
        BinarySwap(
            binary=binary,
            target=paths[binary],
            backup=paths[binary] + _BACKUP_SUFFIX.format(version=old),
            from_version=old,
            to_version=new,
            source=by_binary[binary].source if binary in by_binary else None,
            sha256=by_binary[binary].sha256 if binary in by_binary else None,
        )
        for binary in Binary
    )
    swap_of = {swap.binary: swap for swap in swaps}

    def install(step: Step, which: tuple[Binary, ...]) -> StepActions:
        actions: list[Command | Upload] = []
        for swap in (swap_of[binary] for binary in which):
            actions.append(swap.backup_command())
            if packages is not None:
                actions += packages.commands(swap.binary, to)
            elif swap.source is not None and swap.sha256 is not None:
                actions += [Upload(swap.source, swap.target, swap.sha256), swap.digest_command()]
            actions.append(swap.version_command())
        return StepActions(step, tuple(actions))

    kubeadm = swap_of[Binary.KUBEADM].target
    steps = [
        StepActions(
            step,
            # kubeadm reaches cri-dockerd only through crictl [runtime.go]; the lab's dockershim nodes
            # have none, and neither may a fleet that never needed it with dockershim.
            (Command(("crictl", "--version"), "kubeadm needs crictl on the PATH to reach cri-dockerd"),)
            if step is Step.PREFLIGHT
            else (),
            note="besides the migration's preflight" if step is Step.PREFLIGHT else "as `migrate` does",
        )
        for step in MIGRATION_PART
    ]
    steps.append(install(Step.INSTALL_KUBEADM, _KUBEADM_FIRST))
    if role is Role.FIRST_CONTROL_PLANE:
        steps.append(
            StepActions(
                Step.KUBEADM_UPGRADE_PLAN,
                (
                    Command(
                        (kubeadm, "upgrade", "plan", new, *kubeadm_flags),
                        f"kubeadm agrees to {new}",
                        expect=_agree(new),
                    ),
                ),
            )
        )
        upgrade = Command(
            (kubeadm, "upgrade", "apply", new, "--yes", *kubeadm_flags), f"upgrade the control plane to {new}"
        )
    else:
        upgrade = Command(
            (kubeadm, "upgrade", "node", *kubeadm_flags), "upgrade this node's kubeadm-managed configuration"
        )
    steps.append(
        StepActions(
            Step.KUBEADM_UPGRADE,
            (upgrade,),
            note=f"kubeadm rewrites {', '.join(KUBEADM_REWRITES)}; their bytes are kept first",
        )
    )
    steps.append(install(Step.INSTALL_KUBELET, _AFTER_KUBEADM))
    steps += [StepActions(step, note="as `migrate` does, for the target version") for step in FINISH]

    return NodeUpgradePlan(
        node=node.name,
        role=role,
        from_version=old,
        to_version=new,
        swaps=swaps,
        steps=tuple(steps),
        no_rollback_after=None if role is Role.WORKER else Step.KUBEADM_UPGRADE,
        packages=packages,
    )


def _agree(target: str) -> str:
    return f"kubeadm upgrade apply {target}"


def plan_agrees(stdout: str, target: str) -> str | None:
    """None when `kubeadm upgrade plan` ends by offering ``kubeadm upgrade apply <target>`` [plan.go];
    else what it said instead (its last lines)."""
    offered = re.findall(r"^\s*kubeadm upgrade apply (\S+)", stdout, flags=re.MULTILINE)
    if target in offered:
        return None
    tail = " / ".join(line.strip() for line in stdout.strip().splitlines()[-3:] if line.strip())
    if offered:
        return f"kubeadm upgrade plan offers {', '.join(offered)}, not {target}"
    return f"kubeadm upgrade plan does not offer {target}: {tail or 'no output'}"


# --------------------------------------------------------------------------------------------------
# What `plan` prints


def render_plan(plan: NodeUpgradePlan) -> str:
    """The upgrade part of `shimshift plan` for one node (the migration's diffs are printed by its own
    renderer at the migration steps)."""
    lines = [f"== {plan.node} ({plan.role}): {plan.from_version} -> {plan.to_version}"]
    for number, actions in enumerate(plan.steps, start=1):
        lines.append(f"{number}. {actions.step}")
        lines += [f"   {_shown(action)}" for action in actions.actions]
        if actions.note:
            lines.append(f"   ({actions.note})")
    if plan.no_rollback_after is not None:
        lines.append(
            f"once {plan.no_rollback_after} has succeeded this node is not rolled back: "
            "a later failure stops the run and reports where it stands"
        )
    # The widest rollback there can be: every step started, or every step before the point of no return.
    started = plan.step_names()
    if plan.no_rollback_after is not None:
        started = started[: started.index(str(plan.no_rollback_after))]
    rollback = plan.rollback_steps(started)
    lines.append("rollback:" if plan.no_rollback_after is None else f"rollback (before {plan.no_rollback_after}):")
    for actions in rollback:
        lines.append(f"   {actions.step}" + (f" ({actions.note})" if actions.note else ""))
        lines += [f"     {_shown(action)}" for action in actions.actions]
    return "\n".join(lines)


def _shown(action: Command | Upload) -> str:
    if isinstance(action, Upload):
        return f"upload {action.source} -> {action.target} (sha256 {action.sha256}, mode {action.mode:o})"
    return f"$ {action.shown()}"


def _swap_record(swap: BinarySwap) -> dict[str, Any]:
    return {
        "binary": str(swap.binary),
        "target": swap.target,
        "backup": swap.backup,
        "from_version": swap.from_version,
        "to_version": swap.to_version,
        "source": swap.source,
        "sha256": swap.sha256,
    }


def _actions_record(actions: StepActions) -> dict[str, Any]:
    def one(action: Command | Upload) -> dict[str, Any]:
        if isinstance(action, Upload):
            return {"upload": {"source": action.source, "target": action.target, "sha256": action.sha256,
                               "mode": action.mode}}
        return {"command": {"argv": list(action.argv), "why": action.why, "expect": action.expect}}

    return {"step": str(actions.step), "actions": [one(action) for action in actions.actions], "note": actions.note}


def _actions_from(record: Mapping[str, Any]) -> StepActions:
    def one(item: Mapping[str, Any]) -> Command | Upload:
        if "upload" in item:
            return Upload(**item["upload"])
        command = item["command"]
        return Command(tuple(command["argv"]), command["why"], command["expect"])

    name = record["step"]
    step: Step | str = name if name == ROLLBACK_MIGRATION else Step(name)
    return StepActions(step, tuple(one(item) for item in record["actions"]), record["note"])
