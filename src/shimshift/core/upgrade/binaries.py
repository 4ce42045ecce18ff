"""The target release and the binaries that go to it: ``--to``, ``--binaries DIR``, ``--install-command``.

Decisions where upstream is silent:

- Fleets that install Kubernetes from distro packages give ``--install-command`` (repeatable): each
  value is split once into arguments the way a POSIX shell would split words (:func:`shlex.split`, so
  quoting works as operators expect) and is never run through a shell; ``{binary}`` and ``{version}``
  are expanded inside each argument. The commands run in the order given, once per binary, kubeadm
  before ``kubeadm upgrade`` and kubelet and kubectl after it, as kubeadm's guide does with apt/yum
  ("Upgrading kubeadm clusters", kubernetes.io tasks/administer-cluster/kubeadm/kubeadm-upgrade). A
  rollback runs them again with the node's old version. Example for the pkgs.k8s.io apt repository:
  ``--install-command 'apt-mark unhold {binary}' --install-command 'apt-get install -y
  --allow-downgrades {binary}={version}-1.1' --install-command 'apt-mark hold {binary}'``.
"""

from __future__ import annotations

import json
import re
import shlex
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shimshift.core.actions import Run
from shimshift.core.errors import Refusal
from shimshift.core.versions import KubernetesVersion, parse_kubelet_version

# Finding code (docs/findings.md): a binary to upload changed since the run checked its sha256.
BINARY_CHANGED = "binary-changed"

__all__ = [
    "BINARY_CHANGED",
    "DEFAULT_NODE_PATHS",
    "EXACT_RELEASE",
    "VERSION_QUERY",
    "Binary",
    "PackageInstall",
    "TargetBinary",
    "check_binaries",
    "command",
    "git_version",
    "parse_install_commands",
    "parse_target",
    "reported_version",
    "version_argv",
]


def command(argv: tuple[str, ...], why: str, *, expect: str | None = None) -> Run:
    """A command an upgrade plan holds: never ``check``ed by the executor, because the procedure reads
    the exit status itself and names the command and ``why`` when it fails; ``expect`` must appear in
    its output. Ten minutes: a package manager may download."""
    return Run(argv, check=False, timeout=600.0, why=why, expect=expect)


EXACT_RELEASE = re.compile(r"^v?1\.\d+\.\d+$")
_PRERELEASE = re.compile(r"-(alpha|beta|rc)\b")


def parse_target(text: str) -> KubernetesVersion:
    """``--to``: an exact release, ``1.24.17`` or ``v1.24.17`` (kubeadm upgrades to a patch, not a minor)."""
    if EXACT_RELEASE.match(text.strip()) is None:
        raise Refusal(
            f"--to {text!r} is not an exact Kubernetes release",
            hint="give the release as 1.MINOR.PATCH, e.g. --to 1.24.17",
            code="version-invalid",
        )
    return parse_kubelet_version(text, what="--to")


def git_version(version: KubernetesVersion) -> str:
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
            code="binary-version-unreadable",
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
    to: KubernetesVersion,
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
                code="binary-missing",
            )
        reported = reported_version(binary, output, source=source)
        version = parse_kubelet_version(reported, what=f"{source} version")
        if (version.minor, version.patch) != (to.minor, to.patch) or _PRERELEASE.search(reported):
            raise Refusal(
                f"{binary} reports {reported}, not --to {git_version(to)}",
                hint=f"put the {binary} binary of {git_version(to)} in {directory}, or give the --to it is",
                file=source,
                code="binary-wrong-release",
            )
        digest = digests.get(binary, "").lower()
        if _SHA256.match(digest) is None:
            raise Refusal(f"no sha256 for {binary}", hint="read the file again", file=source, code="binary-unreadable")
        found.append(TargetBinary(binary, source, reported, digest))
    return tuple(found)


_PLACEHOLDERS = frozenset({"binary", "version"})


@dataclass(frozen=True)
class PackageInstall:
    """The operator's package commands (``--install-command``, repeatable), as argument templates."""

    templates: tuple[tuple[str, ...], ...]

    def commands(self, binary: Binary, version: KubernetesVersion) -> tuple[Run, ...]:
        values = {"binary": str(binary), "version": str(version)}
        return tuple(
            command(
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
            raise Refusal(f"{where}: {error}", hint="close the quote", code="install-command-invalid") from error
        if not argv:
            raise Refusal(
                f"{where} is empty",
                hint="give the package command, e.g. 'apt-get install -y ...'",
                code="install-command-invalid",
            )
        for argument in argv:
            used |= _fields(argument, where=where)
        templates.append(argv)
    if not templates:
        raise Refusal(
            "no --install-command given",
            hint="give --binaries DIR or at least one --install-command",
            code="install-command-missing",
        )
    if "binary" not in used:
        raise Refusal(
            "no --install-command uses {binary}",
            hint="name the package with {binary}, e.g. 'apt-get install -y {binary}={version}-1.1'",
            code="install-command-missing",
        )
    return PackageInstall(tuple(templates))


def _fields(argument: str, *, where: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(argument))
    except ValueError as error:
        raise Refusal(
            f"{where}: {error} in {argument!r}",
            hint="write a literal brace as {{ or }}",
            code="install-command-invalid",
        ) from error
    fields = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in _PLACEHOLDERS or spec or conversion:
            raise Refusal(
                f"{where}: unknown placeholder {{{name}}} in {argument!r}",
                hint="only {binary} and {version} are expanded; write a literal brace as {{ or }}",
                code="install-command-invalid",
            )
        fields.add(name)
    return fields
