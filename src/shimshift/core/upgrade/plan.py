"""One node's upgrade in its drain, as data: in the one drain that moves a node to cri-dockerd, also
upgrade it to the next Kubernetes minor (1.23 -> 1.24 is the route off dockershim: docs/hardened-pods.md).

The commands are ``core.actions.Run`` values, one argument per element, performed by the executor
over the node's connection; nothing here is ever joined into a shell string except for display
(``Run.shown``).

Sources:

- [kubeadm-upgrade] "Upgrading kubeadm clusters" (kubernetes.io, tasks/administer-cluster/kubeadm/
  kubeadm-upgrade): first control-plane node: upgrade kubeadm, `kubeadm upgrade plan`, `kubeadm
  upgrade apply vX.Y.Z`; the other nodes `kubeadm upgrade node`; on each node then drain, upgrade
  kubelet and kubectl, restart the kubelet, uncordon.
- [plan.go] k8s.io/kubernetes v1.24.17 cmd/kubeadm/app/cmd/upgrade/plan.go: when the upgrade is
  possible it ends with "You can now apply the upgrade by executing the following command:" and
  `kubeadm upgrade apply vX.Y.Z`.
- [kubeletconfig.go] same tree, cmd/phases/upgrade/node/kubeletconfig.go and phases/upgrade/
  postupgrade.go: `kubeadm upgrade node|apply` rewrites /var/lib/kubelet/config.yaml and
  /var/lib/kubelet/kubeadm-flags.env (docs/runtime-facts.md#kubeadm-124-upgrade).
- [runtime.go] same tree, cmd/kubeadm/app/util/runtime/runtime.go: kubeadm 1.24 reaches every runtime
  through `crictl` and refuses to run without it on the PATH.

Decisions where upstream is silent:

- Binary backups have fixed names, ``<path>.shimshift-<old version>.bak``, not the timestamped backups
  of file writes: a resumed run and ``shimshift rollback`` must find them without a journal lookup,
  and ``cp --no-clobber`` keeps the first (original) copy when the backup step runs again.
- Once ``kubeadm upgrade apply`` or ``kubeadm upgrade node`` has succeeded on a control-plane node,
  shimshift does not undo it (kubeadm rolls its static pods back itself when it fails):
  the run stops and says where things stand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shimshift.core.actions import Run, Upload
from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.steps import MIGRATION_STEPS, Step
from shimshift.core.upgrade.binaries import (
    DEFAULT_NODE_PATHS,
    Binary,
    PackageInstall,
    TargetBinary,
    command,
    git_version,
    version_argv,
)
from shimshift.core.upgrade.cluster import NodeVersion, Role
from shimshift.core.upgrade.cri_dockerd_swap import CriDockerdSwap
from shimshift.core.versions import KubernetesVersion, parse_kubelet_version

__all__ = [
    "FINISH",
    "KUBEADM_REWRITES",
    "MIGRATION_PART",
    "ROLLBACK_MIGRATION",
    "BinarySwap",
    "NodeUpgradePlan",
    "StepActions",
    "plan_agrees",
    "plan_node_upgrade",
]

# kubeadm upgrades itself before `kubeadm upgrade` runs; kubelet and kubectl after it [kubeadm-upgrade].
_KUBEADM_FIRST = (Binary.KUBEADM,)
_AFTER_KUBEADM = (Binary.KUBELET, Binary.KUBECTL)


#: The plan's name for the migration's own rollback steps (core.steps.MIGRATION_ROLLBACK), which end
#: every rollback of an upgrade; never journalled itself.
ROLLBACK_MIGRATION = "rollback:migration"


#: The migration's steps that run first, unchanged, in the same drain:
#: everything up to and including the cri-dockerd restart. The annotation must be right before any
#: kubeadm 1.24 runs (kubernetes/kubeadm#2597, kubernetes/kubeadm#2870).
MIGRATION_PART: tuple[Step, ...] = MIGRATION_STEPS[
    MIGRATION_STEPS.index(Step.PREFLIGHT) : MIGRATION_STEPS.index(Step.RESTART_KUBELET)
]
#: The migration's steps that end the drain: the kubelet restart (of the new kubelet), verify, uncordon.
FINISH: tuple[Step, ...] = MIGRATION_STEPS[MIGRATION_STEPS.index(Step.RESTART_KUBELET) :]

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

    def backup_command(self) -> Run:
        # --no-clobber: run again after a crash, it keeps the first copy, the original binary.
        return command(
            ("cp", _PRESERVE, "--no-clobber", "--", self.target, self.backup),
            f"keep the {self.from_version} {self.binary} for rollback",
        )

    def digest_command(self) -> Run:
        return command(
            ("sha256sum", "--", self.target),
            f"the {self.binary} in place is the one from --binaries",
            expect=self.sha256,
        )

    def version_command(self, *, rollback: bool = False) -> Run:
        version = self.from_version if rollback else self.to_version
        return command(
            version_argv(self.binary, self.target),
            f"{self.binary} at {self.target} reports {version}",
            expect=version,
        )

    def restore_commands(self) -> tuple[Run, ...]:
        # A copy next to the target, then a rename: the kubelet's file may be running (cp onto it
        # fails with "Text file busy") and a rename never leaves the path without a binary.
        staged = f"{self.target}.shimshift-restore"
        return (
            command(("cp", _PRESERVE, "--", self.backup, staged), f"stage the {self.from_version} {self.binary}"),
            command(("mv", "-f", "--", staged, self.target), f"put the {self.from_version} {self.binary} back"),
        )


@dataclass(frozen=True)
class StepActions:
    """What one step does beyond what its name already means, in order. ``note`` is for the plan's reader."""

    step: Step | str  # a Step, or ROLLBACK_MIGRATION
    actions: tuple[Run | Upload, ...] = ()
    note: str = ""

    @property
    def commands(self) -> tuple[Run, ...]:
        return tuple(action for action in self.actions if isinstance(action, Run))


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
    # A journey drain's `--cri-dockerd PATH` replacement (cri_dockerd_swap.py): installed first in the
    # kubelet's install step, proven at verify, put back first thing in the rollback's binaries step.
    cri_dockerd: CriDockerdSwap | None = None

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
        if self.cri_dockerd is not None and str(Step.INSTALL_KUBELET) in started:
            restore += self.cri_dockerd.restore_actions()
        steps = [StepActions(Step.RESTORE_BINARIES, tuple(restore))] if restore else []
        if str(Step.KUBEADM_UPGRADE) in started and self.runs_kubeadm:
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

    @property
    def runs_kubeadm(self) -> bool:
        """False in a journey's drain, whose kubeadm ran at the control-plane step, outside the drain."""
        return any(actions.step == Step.KUBEADM_UPGRADE and actions.actions for actions in self.steps)

    def swaps_to_restore(self, started: Collection[str]) -> list[BinarySwap]:
        """The binaries whose install step started, newest first."""
        return [
            swap
            for swap in reversed(self.swaps)
            if str(Step.INSTALL_KUBEADM if swap.binary is Binary.KUBEADM else Step.INSTALL_KUBELET) in started
        ]

    def restore_commands(self, swap: BinarySwap) -> tuple[Run, ...]:
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
            "cri_dockerd": None if self.cri_dockerd is None else self.cri_dockerd.to_record(),
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
            swaps=tuple(BinarySwap(**{**item, "binary": Binary(item["binary"])}) for item in record["swaps"]),
            steps=tuple(_actions_from(item) for item in record["steps"]),
            no_rollback_after=None if after is None else Step(after),
            packages=None if packages is None else PackageInstall(tuple(tuple(t) for t in packages)),
            # Plans journalled before `--cri-dockerd` existed have no such key.
            cri_dockerd=CriDockerdSwap.from_record(record["cri_dockerd"]) if record.get("cri_dockerd") else None,
        )


def plan_node_upgrade(
    node: NodeVersion,
    *,
    role: Role,
    to: KubernetesVersion,
    binaries: Sequence[TargetBinary] | None = None,
    packages: PackageInstall | None = None,
    node_paths: Mapping[Binary, str] | None = None,
    kubeadm_flags: Sequence[str] = (),
    with_kubeadm: bool = True,
    cri_dockerd: CriDockerdSwap | None = None,
) -> NodeUpgradePlan:
    """The node's whole sequence, forward and rollback, from checked inputs.

    ``with_kubeadm`` False: a drain of the journey (core/journey/sequence.py), where kubeadm has already
    run at the control-plane step; the drain swaps kubelet and kubectl only, and any node's drain, a
    control-plane node's too, may then be rolled back (it changes no static pod).

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

    ``cri_dockerd``: a journey drain's replacement of the node's cri-dockerd (:func:`_with_cri_dockerd`).
    """
    for flag in kubeadm_flags:
        if not flag.startswith("--") or flag == "--":
            raise Refusal(
                f"kubeadm flag {flag!r} is not a --flag",
                hint="give each kubeadm flag as --name=value, e.g. --ignore-preflight-errors=ImagePull",
                node=node.name,
                code=OPTION_INVALID,
            )
    if (binaries is None) == (packages is None):
        raise Refusal(
            "give exactly one of --binaries and --install-command",
            hint="--binaries DIR copies the files; --install-command runs your package manager",
            code=OPTION_INVALID,
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
        if with_kubeadm or binary is not Binary.KUBEADM
    )
    swap_of = {swap.binary: swap for swap in swaps}

    def install(step: Step, which: tuple[Binary, ...]) -> StepActions:
        actions: list[Run | Upload] = []
        for swap in (swap_of[binary] for binary in which):
            actions.append(swap.backup_command())
            if packages is not None:
                actions += packages.commands(swap.binary, to)
            elif swap.source is not None and swap.sha256 is not None:
                actions += [Upload(swap.source, swap.target, swap.sha256), swap.digest_command()]
            actions.append(swap.version_command())
        return StepActions(step, tuple(actions))

    kubeadm = paths[Binary.KUBEADM]
    steps = [
        StepActions(
            step,
            # kubeadm reaches cri-dockerd only through crictl [runtime.go]; the lab's dockershim nodes
            # have none, and neither may a fleet that never needed it with dockershim.
            (command(("crictl", "--version"), "kubeadm needs crictl on the PATH to reach cri-dockerd"),)
            if step is Step.PREFLIGHT and with_kubeadm
            else (),
            note="besides the migration's preflight" if step is Step.PREFLIGHT else "as `migrate` does",
        )
        for step in MIGRATION_PART
    ]
    if not with_kubeadm:
        return _without_kubeadm(node.name, role, old, new, swaps, steps, install, packages, cri_dockerd)
    steps.append(install(Step.INSTALL_KUBEADM, _KUBEADM_FIRST))
    if role is Role.FIRST_CONTROL_PLANE:
        steps.append(
            StepActions(
                Step.KUBEADM_UPGRADE_PLAN,
                (
                    command(
                        (kubeadm, "upgrade", "plan", new, *kubeadm_flags),
                        f"kubeadm agrees to {new}",
                        expect=_agree(new),
                    ),
                ),
            )
        )
        upgrade = command(
            (kubeadm, "upgrade", "apply", new, "--yes", *kubeadm_flags), f"upgrade the control plane to {new}"
        )
    else:
        upgrade = command(
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
        steps=_with_cri_dockerd(steps, cri_dockerd),
        no_rollback_after=None if role is Role.WORKER else Step.KUBEADM_UPGRADE,
        packages=packages,
        cri_dockerd=cri_dockerd,
    )


def _with_cri_dockerd(steps: Sequence[StepActions], swap: CriDockerdSwap | None) -> tuple[StepActions, ...]:
    """``swap`` first in the kubelet's install step (after the drain and any kubeadm, before the kubelet
    restarts, so the new kubelet starts on the new cri-dockerd) and its version proven at verify."""
    if swap is None:
        return tuple(steps)
    out = []
    for actions in steps:
        if actions.step == Step.INSTALL_KUBELET:
            actions = StepActions(actions.step, (*swap.install_actions(), *actions.actions), actions.note)
        elif actions.step == Step.VERIFY:
            actions = StepActions(actions.step, (*actions.actions, swap.version_command()), actions.note)
        out.append(actions)
    return tuple(out)


def _without_kubeadm(
    node: str,
    role: Role,
    old: str,
    new: str,
    swaps: tuple[BinarySwap, ...],
    steps: list[StepActions],
    install: Callable[[Step, tuple[Binary, ...]], StepActions],
    packages: PackageInstall | None,
    cri_dockerd: CriDockerdSwap | None,
) -> NodeUpgradePlan:
    """A journey drain's plan: the kubeadm steps stay in the sequence (the procedure's steps are the same
    in every drain) but do nothing. A cri-dockerd replacement goes first in the kubelet's install step,
    after the drain and before the kubelet restarts; verify then proves the running one."""
    ran = "kubeadm ran at the control-plane step, before this drain"
    steps += [StepActions(Step.INSTALL_KUBEADM, note=ran), StepActions(Step.KUBEADM_UPGRADE, note=ran)]
    steps.append(install(Step.INSTALL_KUBELET, _AFTER_KUBEADM))
    steps += [StepActions(step, note="as `migrate` does, for the target version") for step in FINISH]
    return NodeUpgradePlan(
        node,
        role,
        old,
        new,
        swaps,
        _with_cri_dockerd(steps, cri_dockerd),
        no_rollback_after=None,
        packages=packages,
        cri_dockerd=cri_dockerd,
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
    def one(action: Run | Upload) -> dict[str, Any]:
        if isinstance(action, Upload):
            return {
                "upload": {
                    "source": action.source,
                    "target": action.target,
                    "sha256": action.sha256,
                    "mode": action.mode,
                }
            }
        return {"command": {"argv": list(action.argv), "why": action.why, "expect": action.expect}}

    return {"step": str(actions.step), "actions": [one(action) for action in actions.actions], "note": actions.note}


def _actions_from(record: Mapping[str, Any]) -> StepActions:
    def one(item: Mapping[str, Any]) -> Run | Upload:
        if "upload" in item:
            return Upload(**item["upload"])
        fields = item["command"]
        return command(tuple(fields["argv"]), fields["why"], expect=fields["expect"])

    name = record["step"]
    step: Step | str = name if name == ROLLBACK_MIGRATION else Step(name)
    return StepActions(step, tuple(one(item) for item in record["actions"]), record["note"])
