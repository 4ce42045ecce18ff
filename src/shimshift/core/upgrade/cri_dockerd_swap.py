"""`--cri-dockerd PATH`: the cri-dockerd binary a journey puts on each node, and what replacing it runs.

The binary is checked on the machine shimshift runs on (``PATH --version``, its sha256), never downloaded,
like ``--binaries`` (binaries.py). On a node it replaces the binary cri-docker.service runs (the unit's
ExecStart, read at preflight), the old one kept beside it, in the drain where the kubelet restarts anyway
(core/journey/cri_dockerd.py says which drain), then cri-dockerd restarts before the kubelet does.

Decisions where upstream is silent:

- The old binary is kept as ``<path>.shimshift-<old version>.bak`` with ``cp --no-clobber``, like the
  kubelet's (plan.py): a resumed step keeps the first copy, the original.
- cri-dockerd is restarted in the same step as the swap: the migration's own restart (core/procedures/
  migration.py) runs only when its settings moved, and the kubelet restarted next must find the new one.
- ``cri-dockerd --version`` prints ``cri-dockerd 0.4.6 (abc1234)`` (on stderr for some builds): the
  version is looked for in both streams, by the word (core/versions.py cri_dockerd_version_word).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from shimshift.core.actions import Run, Upload
from shimshift.core.errors import Refusal
from shimshift.core.upgrade.binaries import command
from shimshift.core.versions import CriDockerdVersion, cri_dockerd_version_word, parse_cri_dockerd_version

__all__ = [
    "CRI_DOCKERD_OPTION",
    "CRI_DOCKERD_UNIT",
    "CriDockerdSwap",
    "ReplacementCriDockerd",
    "check_replacement",
    "moves_back",
    "plan_cri_dockerd_swap",
]

CRI_DOCKERD_OPTION = "--cri-dockerd"
CRI_DOCKERD_UNIT = "cri-docker.service"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BACKUP_SUFFIX = ".shimshift-{version}.bak"
_PRESERVE = "--preserve=mode,ownership,timestamps"


@dataclass(frozen=True)
class ReplacementCriDockerd:
    """The checked ``--cri-dockerd PATH``: where it is here, the version it reports, its digest."""

    source: str
    version: CriDockerdVersion
    sha256: str

    def to_record(self) -> dict[str, Any]:
        return {"source": self.source, "version": str(self.version), "sha256": self.sha256}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReplacementCriDockerd:
        return cls(record["source"], parse_cri_dockerd_version(record["version"]), record["sha256"])


def check_replacement(path: str, *, output: str | None, digest: str | None) -> ReplacementCriDockerd:
    """``--cri-dockerd PATH`` from what ``PATH --version`` printed (None: missing, not executable, or it
    failed) and the file's sha256; the first problem refused, naming the file and what to do."""
    if output is None:
        raise Refusal(
            f"{CRI_DOCKERD_OPTION} {path} is missing, not executable, or `{path} --version` failed",
            hint="give the path of a cri-dockerd binary built for the nodes, executable (chmod +x)",
            file=path,
            code="cri-dockerd-binary-unusable",
        )
    # Any binary prints some X.Y.Z; only one that names itself cri-dockerd is taken for one.
    word = cri_dockerd_version_word(output) if "cri-dockerd" in output else None
    try:
        version = parse_cri_dockerd_version(word or output.strip()[:80])
    except Refusal:
        raise Refusal(
            f"`{path} --version` printed {output.strip()[:80]!r}, not a cri-dockerd version",
            hint="give a cri-dockerd binary (its --version prints `cri-dockerd X.Y.Z (commit)`)",
            file=path,
            code="cri-dockerd-binary-unusable",
        ) from None
    if digest is None or _SHA256.match(digest.lower()) is None:
        raise Refusal(
            f"{path} could not be read", hint="make the file readable", file=path, code="cri-dockerd-binary-unusable"
        )
    return ReplacementCriDockerd(path, version, digest.lower())


@dataclass(frozen=True)
class CriDockerdSwap:
    """The node's cri-dockerd replaced by ``source``: journalled with the drain's plan (plan.py), so a resumed
    drain and its rollback work from the swap that was planned."""

    target: str  # the unit's ExecStart binary on the node
    backup: str
    from_version: str  # "0.3.17"
    to_version: str
    source: str
    sha256: str

    def install_actions(self) -> tuple[Run | Upload, ...]:
        """Keep the old one, put the new one in place (a rename: the running file stays whole), prove it is
        the one checked and reports its version, then restart cri-dockerd on it before the kubelet restarts."""
        return (
            command(
                ("cp", _PRESERVE, "--no-clobber", "--", self.target, self.backup),
                f"keep cri-dockerd {self.from_version} for rollback",
            ),
            Upload(self.source, self.target, self.sha256),
            command(
                ("sha256sum", "--", self.target),
                f"the cri-dockerd in place is {CRI_DOCKERD_OPTION}'s",
                expect=self.sha256,
            ),
            self.version_command(),
            command(
                ("systemctl", "restart", CRI_DOCKERD_UNIT),
                f"cri-dockerd {self.to_version} runs before the kubelet restarts",
            ),
        )

    def version_command(self, *, rollback: bool = False) -> Run:
        version = self.from_version if rollback else self.to_version
        binary = self.target  # the unit's ExecStart binary: a cri-dockerd (core/node_commands.py declares it)
        return command((binary, "--version"), f"cri-dockerd at {self.target} reports {version}", expect=version)

    def running_command(self, pid: int) -> Run:
        """The executable cri-docker.service's main process ``pid`` runs: the replaced file, not a deleted one
        (a cri-dockerd started before the swap shows ``<path> (deleted)``)."""
        return command(("readlink", "--", f"/proc/{pid}/exe"), f"{CRI_DOCKERD_UNIT} runs {self.target}")

    def restore_actions(self) -> tuple[Run, ...]:
        # A copy beside the target, then a rename: the running file is never written in place.
        staged = f"{self.target}.shimshift-restore"
        return (
            command(("cp", _PRESERVE, "--", self.backup, staged), f"stage cri-dockerd {self.from_version}"),
            command(("mv", "-f", "--", staged, self.target), f"put cri-dockerd {self.from_version} back"),
            command(("systemctl", "restart", CRI_DOCKERD_UNIT), f"cri-dockerd {self.from_version} runs again"),
            self.version_command(rollback=True),
        )

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CriDockerdSwap:
        return cls(**record)


def moves_back(replacement: CriDockerdVersion, node: CriDockerdVersion) -> bool:
    """Whether putting ``replacement`` on a node running ``node`` would move its cri-dockerd back: refused, at
    `plan --to` (core/journey/traps.py) and again at the drain's preflight, whose node `plan` may not have read."""
    return not replacement.at_least(node.major, node.minor, node.patch)


def plan_cri_dockerd_swap(
    replacement: ReplacementCriDockerd | None, *, target: str | None, node_version: str | None, node: str
) -> CriDockerdSwap | None:
    """The swap on one node, or None where nothing is to replace: no ``--cri-dockerd``, or the node already
    runs the replacement's version. ``target``/``node_version``: the unit's binary and what it reported."""
    if replacement is None or node_version == str(replacement.version):
        return None
    if node_version is not None and moves_back(replacement.version, parse_cri_dockerd_version(node_version)):
        raise Refusal(
            f"{CRI_DOCKERD_OPTION} {replacement.source} is cri-dockerd {replacement.version}, older than the node's "
            f"{node_version}",
            hint="give --cri-dockerd a cri-dockerd of the node's version or later, or leave it out",
            node=node,
            code="cri-dockerd-replacement-older",
        )
    if target is None or node_version is None:
        raise Refusal(
            f"{CRI_DOCKERD_OPTION} replaces the node's cri-dockerd, and this node has none that answers",
            hint="install cri-dockerd on the node first (`migrate --install-cri-dockerd PATH`)",
            node=node,
            code="cri-dockerd-not-installed",
        )
    return CriDockerdSwap(
        target=target,
        backup=target + _BACKUP_SUFFIX.format(version=node_version),
        from_version=node_version,
        to_version=str(replacement.version),
        source=replacement.source,
        sha256=replacement.sha256,
    )
