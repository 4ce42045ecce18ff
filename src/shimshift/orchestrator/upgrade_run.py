"""What `shimshift upgrade` settles before a run begins: the target binaries, the version skew, the roles.

Everything here is checked before any node is touched (a refusal leaves no run behind); the pure
rules are core/upgrade/'s, this module only gathers their facts: each ``--binaries`` file asked its
release and hashed on this machine, the kube-apiservers' releases from their static pods, the
selected nodes' kubelets.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shimshift.adapters.kube import pods
from shimshift.adapters.kube.workloads import kubelet_versions
from shimshift.core.errors import OPTION_INVALID, Refusal
from shimshift.core.fleet import FleetNode, FleetPhase
from shimshift.core.procedures.upgrade import UpgradeSettings
from shimshift.core.upgrade.binaries import (
    BINARY_CHANGED,
    Binary,
    PackageInstall,
    TargetBinary,
    check_binaries,
    parse_install_commands,
    parse_target,
    version_argv,
)
from shimshift.core.upgrade.cluster import NodeVersion, Role, check_skew, node_roles, upgrade_phases
from shimshift.core.upgrade.cri_dockerd_swap import ReplacementCriDockerd, check_replacement
from shimshift.core.versions import KubernetesVersion, parse_kubelet_version

# Where the run's options keep what was settled, for a resumed run.
ROLES_KEY = "upgrade_roles"
DIGESTS_KEY = "upgrade_sha256"


@dataclass(frozen=True)
class UpgradeRequest:
    """`shimshift upgrade`'s own options."""

    to: str
    binaries_dir: Path | None = None
    install_commands: tuple[str, ...] = ()
    kubeadm_flags: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "binaries_dir": str(self.binaries_dir) if self.binaries_dir else None,
            "install_commands": list(self.install_commands),
            "kubeadm_flags": list(self.kubeadm_flags),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> UpgradeRequest:
        return cls(
            to=str(record["to"]),
            binaries_dir=Path(record["binaries_dir"]) if record.get("binaries_dir") else None,
            install_commands=tuple(record.get("install_commands", ())),
            kubeadm_flags=tuple(record.get("kubeadm_flags", ())),
        )


@dataclass(frozen=True)
class UpgradeRun:
    """What a run of `upgrade` settled: the per-node settings the procedure gets, and the phases."""

    request: UpgradeRequest
    binaries: tuple[TargetBinary, ...] | None
    packages: PackageInstall | None
    roles: Mapping[str, Role] = field(default_factory=dict)

    def settings_for(self, node: str) -> UpgradeSettings:
        return UpgradeSettings(
            to=self.request.to,
            binaries=self.binaries,
            packages=self.packages,
            kubeadm_flags=self.request.kubeadm_flags,
            role=self.roles.get(node, Role.WORKER),
        )

    def record(self) -> dict[str, Any]:
        return {
            ROLES_KEY: {node: str(role) for node, role in self.roles.items()},
            DIGESTS_KEY: {str(item.binary): item.sha256 for item in self.binaries or ()},
        }


def release_binaries_dir(directory: Path, release: KubernetesVersion, *, only: bool = False) -> Path:
    """Where ``--binaries DIR`` keeps one release's kubeadm, kubelet and kubectl: ``DIR/v1.24.17`` (or
    ``DIR/1.24.17``); a one-release run may also keep them in DIR itself, as `upgrade` always has."""
    for name in (f"v{release}", str(release)):
        if (directory / name).is_dir():
            return directory / name
    return directory if only else directory / f"v{release}"


async def checked_binaries(directory: Path, to: str) -> tuple[TargetBinary, ...]:
    """kubeadm, kubelet and kubectl of ``directory`` asked their release and hashed, on this machine."""
    outputs, digests = await asyncio.to_thread(_read_binaries, directory)
    return check_binaries(str(directory), outputs=outputs, digests=digests, to=parse_target(to))


def _read_binaries(directory: Path) -> tuple[dict[Binary, str | None], dict[Binary, str]]:
    outputs: dict[Binary, str | None] = {}
    digests: dict[Binary, str] = {}
    for binary in Binary:
        path = directory / str(binary)
        outputs[binary] = _version_output(binary, path)
        if path.is_file():
            with path.open("rb") as stream:
                digests[binary] = hashlib.file_digest(stream, "sha256").hexdigest()
    return outputs, digests


async def checked_cri_dockerd(path: Path) -> ReplacementCriDockerd:
    """``--cri-dockerd PATH`` asked its version and hashed, on this machine (never downloaded)."""
    output, digest = await asyncio.to_thread(_read_cri_dockerd, path)
    return check_replacement(str(path), output=output, digest=digest)


def _read_cri_dockerd(path: Path) -> tuple[str | None, str | None]:
    if not path.is_file():
        return None, None
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, timeout=30, check=False)
        with path.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    # Some cri-dockerd builds print their version on stderr.
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    return (output if done.returncode == 0 else None), digest


def _version_output(binary: Binary, path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        done = subprocess.run(
            version_argv(binary, str(path)), capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None



async def prepare_upgrade(
    client: Any,
    request: UpgradeRequest,
    selected: Sequence[FleetNode],
    *,
    max_unavailable: int,
    recorded: Mapping[str, Any] | None = None,
) -> tuple[UpgradeRun, list[FleetPhase]]:
    """Check the binaries and the skew, give each node its role, order the phases. ``recorded``: the
    options of the run being resumed (its roles stand; its binaries must not have changed)."""
    to = parse_target(request.to)
    binaries: tuple[TargetBinary, ...] | None = None
    packages: PackageInstall | None = None
    if request.install_commands:
        packages = parse_install_commands(request.install_commands)
    if request.binaries_dir is not None:
        binaries = await checked_binaries(request.binaries_dir, request.to)
    if (binaries is None) == (packages is None):
        raise Refusal(
            "give exactly one of --binaries and --install-command",
            hint="--binaries DIR copies kubeadm, kubelet and kubectl; --install-command runs your package manager",
            code=OPTION_INVALID,
        )
    apiservers = await pods.apiserver_versions(client)
    versions = await kubelet_versions(client, [node.name for node in selected]) if selected else {}
    nodes = [
        NodeVersion(node.name, node.control_plane, parse_kubelet_version(versions.get(node.name, ""), what=node.name))
        for node in selected
    ]
    if recorded is None:
        # A resumed run's nodes are half-way by definition; its skew was checked when it began.
        check_skew(to=to, apiservers=apiservers, nodes=nodes)
        roles = node_roles(nodes, to=to, apiservers=apiservers)
    else:
        roles = {node: Role(role) for node, role in (recorded.get(ROLES_KEY) or {}).items()}
        kept = recorded.get(DIGESTS_KEY) or {}
        changed = [item.source for item in binaries or () if kept.get(str(item.binary)) not in (None, item.sha256)]
        if changed:
            raise Refusal(
                f"{', '.join(changed)} changed since the run began (its sha256 differs from the journal's)",
                hint="put the binaries the run began with back, or abandon the run",
                code=BINARY_CHANGED,
            )
    phases = upgrade_phases(nodes, to=to, apiservers=apiservers, max_unavailable=max_unavailable)
    return UpgradeRun(request, binaries, packages, roles), phases


async def select_upgrade_nodes(client: Any, names: Sequence[str], to: str) -> list[str]:
    """Of ``names``, those whose kubelet is older than ``to`` (a node already there has nothing to do)."""
    target = parse_target(to)
    versions = await kubelet_versions(client, list(names)) if names else {}
    return [
        name
        for name in names
        if (version := parse_kubelet_version(versions.get(name, ""), what=name)).minor < target.minor
        or (version.minor == target.minor and (version.patch or 0) < (target.patch or 0))
    ]


__all__ = [
    "UpgradeRequest",
    "UpgradeRun",
    "checked_cri_dockerd",
    "prepare_upgrade",
    "release_binaries_dir",
    "select_upgrade_nodes",
]
