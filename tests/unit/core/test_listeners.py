"""cri-dockerd's listening sockets from `ss -Hltnp`, and its streaming server's bind address.

Matrix: ss lines for IPv4, IPv6, every-address (`*`, 0.0.0.0, [::]), interface-scoped (`%lo`), IPv4-mapped
loopback, several processes on one socket, the Netid column, and lines that are not sockets; verify's
verdict for cri-dockerd on loopback only / on every address / another process on every address; the bind
address read from cri-dockerd's flags (unset, ADDR, ADDR:PORT, [ADDR]:PORT, unspecified addresses).
"""

from __future__ import annotations

import pytest

from shimshift.core.listeners import (
    Listener,
    exposed_listeners,
    is_loopback,
    parse_ss,
    streaming_bind_address,
    streaming_problems,
)

SS = """\
LISTEN 0      4096       127.0.0.1:38211      0.0.0.0:*    users:(("cri-dockerd",pid=812,fd=12))
LISTEN 0      4096               *:41567            *:*    users:(("cri-dockerd",pid=812,fd=13))
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=90,fd=3))
LISTEN 0      128             [::]:22            [::]:*    users:(("sshd",pid=90,fd=4))
LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*    users:(("systemd-resolve",pid=70,fd=14))
LISTEN 0      4096           [::1]:10248         [::]:*    users:(("kubelet",pid=901,fd=20),("kubelet",pid=902,fd=20))
LISTEN 0      4096 [::ffff:127.0.0.1]:9099          *:*    users:(("cri-dockerd",pid=812,fd=15))
Cannot open netlink socket: Protocol not supported
"""


def test_parse_ss_reads_every_socket_line() -> None:
    listeners = parse_ss(SS)
    assert [(item.address, item.port) for item in listeners] == [
        ("127.0.0.1", 38211),
        ("*", 41567),
        ("0.0.0.0", 22),
        ("::", 22),
        ("127.0.0.53", 53),
        ("::1", 10248),
        ("::ffff:127.0.0.1", 9099),
    ]
    assert listeners[0].processes == (("cri-dockerd", 812),)
    assert listeners[5].processes == (("kubelet", 901), ("kubelet", 902))
    assert listeners[3].endpoint == "[::]:22" and listeners[1].endpoint == "*:41567"


def test_parse_ss_skips_the_netid_column() -> None:
    (item,) = parse_ss('tcp   LISTEN 0 4096 10.0.0.5:10250 0.0.0.0:* users:(("kubelet",pid=5,fd=9))\n')
    assert item == Listener("10.0.0.5", 10250, (("kubelet", 5),))


def test_parse_ss_without_process_column_has_no_owner() -> None:
    (item,) = parse_ss("LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*\n")
    assert item.processes == ()


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("*", False),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("::ffff:10.0.0.5", False),
        ("localhost", False),
    ],
)
def test_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_cri_dockerd_on_every_address_fails_verify() -> None:
    listeners = parse_ss(SS)
    assert [item.endpoint for item in exposed_listeners(listeners, pid=812)] == ["*:41567"]
    (problem,) = streaming_problems(listeners, pid=812)
    assert (problem.code, problem.setting, problem.blocking) == (
        "streaming-server-exposed",
        "--streaming-bind-addr",
        True,
    )
    assert "cri-dockerd (pid 812) listens on *:41567" in problem.message
    assert "--streaming-bind-addr=127.0.0.1" in problem.message


def test_cri_dockerd_on_loopback_only_passes_and_other_processes_do_not_count() -> None:
    loopback_only = [line for line in SS.splitlines() if "41567" not in line]
    assert streaming_problems(parse_ss("\n".join(loopback_only)), pid=812) == []
    assert streaming_problems(parse_ss(SS), pid=4242) == []  # sshd on every address is not cri-dockerd


@pytest.mark.parametrize(
    ("settings", "address"),
    [
        ({}, None),
        ({"--streaming-bind-addr": ""}, None),
        ({"--streaming-bind-addr": "0.0.0.0"}, None),
        ({"--streaming-bind-addr": "0.0.0.0:10010"}, None),
        ({"--streaming-bind-addr": "[::]:10010"}, None),
        ({"--streaming-bind-addr": "::"}, None),
        ({"--streaming-bind-addr": "127.0.0.1"}, "127.0.0.1"),
        ({"--streaming-bind-addr": "127.0.0.1:0"}, "127.0.0.1"),
        ({"--streaming-bind-addr": "[::1]:10010"}, "::1"),
        ({"--streaming-bind-addr": "::1"}, "::1"),
        ({"--streaming-bind-addr": "10.1.2.3:10010"}, "10.1.2.3"),
    ],
)
def test_streaming_bind_address(settings: dict[str, str], address: str | None) -> None:
    assert streaming_bind_address(settings) == address
