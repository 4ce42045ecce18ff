"""Every command shimshift runs as root on a node, declared once, and the sudoers lines made from it.

A non-root SSH login runs each command through ``sudo -n``, so its sudoers file must allow exactly
the programs below. The list is not kept by hand next to the code: a unit test
(tests/unit/core/test_node_commands.py) reads every argv the step machine and the node access send
and fails when one is not declared here, or when a declared one is no longer sent.

A shape is a program and the first argument that says what it does (``systemctl restart``); ``None``
means the program's arguments vary (paths). The sudoers lines allow each *program*, not each shape:
the atomic write and remove are constant ``sh -c`` scripts (node_access.py), and allowing ``sh`` is
allowing root, so narrowing ``systemctl``'s arguments would add breakage and no protection. The
commands those scripts run (``mktemp``, ``dd``, ``mv``, ...) run inside the root shell and need no
line of their own.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: Debian's and Ubuntu's sudo ``secure_path``: where sudo itself looks a command up, so the paths
#: printed for sudoers are the ones sudo will run.
SUDO_SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class CommandShape:
    program: str  # the name `command -v` finds; the argv may give a full path with this base name
    subcommand: str | None  # argv[1], or None: any arguments
    why: str
    upgrade: bool = False  # run by `shimshift upgrade` only


def _systemctl(verb: str, why: str) -> CommandShape:
    return CommandShape("systemctl", verb, why)


def _upgrade(program: str, subcommand: str | None, why: str) -> CommandShape:
    return CommandShape(program, subcommand, why, upgrade=True)


NODE_COMMANDS: tuple[CommandShape, ...] = (
    CommandShape("sh", "-c", "atomic file write and remove: constant scripts, every value an argument"),
    CommandShape("cat", None, "read a file (unit files, /proc/<pid>/cmdline)"),
    CommandShape("head", "-c", "read a kubelet or cri-dockerd file, at most 1 MiB + 1 byte"),
    CommandShape("test", "-e", "tell a missing file from an unreadable one"),
    CommandShape("ls", "-1", "find the CNI network configuration"),
    CommandShape("chmod", None, "make an installed cri-dockerd binary executable (--install-cri-dockerd)"),
    CommandShape("docker", "info", "Docker Engine answers; its cgroup driver"),
    CommandShape("docker", "network", "Docker's bridge subnets, which the canary's IP must be outside"),
    CommandShape("ss", "-Hltnp", "cri-dockerd's listening sockets: its streaming server must be on loopback"),
    # The path comes from cri-docker.service's ExecStart; `command -v cri-dockerd` finds the usual one.
    CommandShape("cri-dockerd", "--version", "cri-dockerd's version, for the CRI API check"),
    _systemctl("cat", "is cri-docker.service packaged (--install-cri-dockerd)"),
    _systemctl("daemon-reload", "load the rewritten drop-ins"),
    _systemctl("enable", "enable and start installed cri-dockerd units (--install-cri-dockerd)"),
    _systemctl("is-active", "Docker Engine and cri-docker.socket are running"),
    _systemctl("is-enabled", "cri-docker.socket and cri-docker.service are enabled"),
    _systemctl("show", "the main PID of a unit, cri-dockerd's ExecStart"),
    _systemctl("restart", "restart cri-dockerd and the kubelet"),
    _systemctl("try-restart", "restart cri-dockerd on rollback"),
    # `shimshift upgrade` (core/upgrade/ builds these argvs; the operator's --install-command values
    # are theirs to allow).
    _upgrade("crictl", "--version", "upgrade: kubeadm 1.24 reaches cri-dockerd only through crictl"),
    _upgrade("crictl", "-r", "upgrade: the runtime at the node's cri-socket answers kubeadm's crictl"),
    _upgrade("cp", None, "upgrade: keep the old binaries (--no-clobber); stage them back on rollback"),
    _upgrade("mv", "-f", "upgrade rollback: put an old binary back in one rename"),
    _upgrade("sha256sum", "--", "upgrade: the binary in place is the one from --binaries"),
    _upgrade("kubeadm", "version", "upgrade: the kubeadm in place reports its release"),
    _upgrade("kubeadm", "upgrade", "upgrade: kubeadm upgrade plan, apply and node"),
    _upgrade("kubelet", "--version", "upgrade: the kubelet in place reports its release"),
    _upgrade("kubectl", "version", "upgrade: the kubectl in place reports its release"),
    _upgrade("readlink", "--", "upgrade --cri-dockerd: the running cri-dockerd is the new file, not a deleted one"),
)

#: The programs a sudoers file must allow for `migrate`, in the order above.
PROGRAMS: tuple[str, ...] = tuple(dict.fromkeys(shape.program for shape in NODE_COMMANDS if not shape.upgrade))
#: ... and for `upgrade`, which also swaps kubeadm, kubelet and kubectl and runs kubeadm and crictl.
UPGRADE_PROGRAMS: tuple[str, ...] = tuple(dict.fromkeys(shape.program for shape in NODE_COMMANDS))


def shape_of(argv: Sequence[str]) -> CommandShape | None:
    """The declared shape ``argv`` has, or None when it is not declared."""
    if not argv:
        return None
    program = posixpath.basename(argv[0])
    first = argv[1] if len(argv) > 1 else None
    for shape in NODE_COMMANDS:
        if shape.program == program and shape.subcommand in (None, first):
            return shape
    return None


def sudoers_lines(
    user: str, paths: Mapping[str, str | None], programs: Sequence[str] = PROGRAMS
) -> list[str]:
    """A sudoers.d file for ``user``: one NOPASSWD rule over the full paths found for `PROGRAMS`.

    ``paths`` maps a program to its path on the node (None or absent: not found there); a program
    not found is named in a comment, since sudoers needs full paths.
    """
    found = [path for p in programs if (path := paths.get(p))]
    missing = [p for p in programs if not paths.get(p)]
    lines = [
        "# shimshift: the commands a migration runs as root through `sudo -n` (shimshift sudoers).",
        "# sh is among them (the atomic file writes), so this grant is as strong as root.",
        f"# {user} must also be in group docker: the CRI socket is forwarded as {user}, without sudo.",
    ]
    if missing:
        lines.append(f"# not found on the node, add their full paths: {', '.join(missing)}")
    lines.append(f"{user} ALL=(root) NOPASSWD: {', '.join(found)}")
    return lines


def sudoers_rule(user: str, paths: Mapping[str, str | None], programs: Sequence[str] = PROGRAMS) -> str:
    """The one rule line of `sudoers_lines` (for a one-line hint)."""
    return sudoers_lines(user, paths, programs)[-1]


def parse_found_programs(programs: Sequence[str], output: str) -> dict[str, str | None]:
    """Pair ``programs`` with the lines the node access's lookup printed, one per program (empty: not found)."""
    lines = output.split("\n")
    out: dict[str, str | None] = {}
    for index, program in enumerate(programs):
        line = lines[index].strip() if index < len(lines) else ""
        out[program] = line if line.startswith("/") else None
    return out
