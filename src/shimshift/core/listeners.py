"""Where cri-dockerd listens: `ss -Hltnp` read into data, and the streaming server's addresses judged.

dockershim's CRI streaming server (exec, attach, port-forward) listened on localhost only (kubelet 1.23
``getStreamingConfig``: ``localhost:0``); cri-dockerd's listens on every address unless
``--streaming-bind-addr`` says otherwise (Mirantis/cri-dockerd#106). The
migration binds it to loopback; verify reads the node's listening sockets to prove it, and `flags check`
points at a command line that leaves it open.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shimshift.core.findings import Finding, error

STREAMING_FLAG = "--streaming-bind-addr"

# One process of ss's `users:((...),(...))` column: name, pid, fd.
_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)')
_SOCKET_KINDS = {"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl", "mptcp", "sctp"}


@dataclass(frozen=True)
class Listener:
    """One listening socket: its local address (brackets and %interface removed; ``*`` for every
    address), port, and the processes that hold it."""

    address: str
    port: int
    processes: tuple[tuple[str, int], ...]  # (name, pid)

    @property
    def endpoint(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def parse_ss(output: str) -> list[Listener]:
    """The lines of `ss -Hltnp` (no header; one socket per line). Lines it cannot read are skipped:
    ss's columns are stable, but a line that is not a socket (a warning) says nothing about listeners."""
    listeners = []
    for line in output.splitlines():
        fields = line.split()
        if fields and fields[0] in _SOCKET_KINDS:
            fields = fields[1:]  # the Netid column, printed when more than one kind is listed
        if len(fields) < 5:
            continue
        host, sep, port = fields[3].rpartition(":")
        if not sep or not port.isdigit():
            continue
        host = host.split("%", 1)[0]
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        processes = tuple((name, int(pid)) for name, pid in _PROCESS.findall(" ".join(fields[5:])))
        listeners.append(Listener(host, int(port), processes))
    return listeners


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and the IPv4-mapped 127.x; ``*``, unspecified and every other address are not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def owned_by(listeners: Iterable[Listener], *, pid: int) -> list[Listener]:
    """The sockets process ``pid`` listens on."""
    return [item for item in listeners if any(owner == pid for _name, owner in item.processes)]


def exposed_listeners(listeners: Iterable[Listener], *, pid: int) -> list[Listener]:
    """The sockets process ``pid`` listens on at an address other than loopback."""
    return [item for item in owned_by(listeners, pid=pid) if not is_loopback(item.address)]


# The code of the finding below (docs/findings.md).
STREAMING_EXPOSED = "streaming-server-exposed"


def streaming_problems(listeners: Iterable[Listener], *, pid: int) -> list[Finding]:
    """What verify says when cri-dockerd (``pid``) listens beyond loopback; empty when it does not."""
    exposed = exposed_listeners(listeners, pid=pid)
    if not exposed:
        return []
    where = ", ".join(item.endpoint for item in exposed)
    text = (
        f"cri-dockerd (pid {pid}) listens on {where}: its streaming server (exec, attach, port-forward) "
        f"must listen on loopback only, as dockershim's did ({STREAMING_FLAG}=127.0.0.1)"
    )
    return [error(STREAMING_EXPOSED, text, setting=STREAMING_FLAG)]


def streaming_bind_address(settings: Mapping[str, str]) -> str | None:
    """The address cri-dockerd's streaming server binds to from its flags; None for every address."""
    value = settings.get(STREAMING_FLAG, "").strip()
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and (host.startswith("[") or host.count(":") == 0):
        value = host  # ADDR:PORT or [ADDR]:PORT, as cri-dockerd v0.3.17 accepts it
    value = value.strip("[]")
    try:
        unspecified = ipaddress.ip_address(value).is_unspecified
    except ValueError:
        return value  # cri-dockerd itself refuses it at start-up; not ours to judge here
    return None if unspecified else value
