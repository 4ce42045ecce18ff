"""SSH-only behaviour against the real sshd: host-key trust, unix socket forwarding, sudo -n, the pool.

Matrix:
- host key unknown (empty known_hosts) → Refusal naming node, known_hosts file, "unknown"; nothing run.
- host key changed (another key recorded for the host) → Refusal saying it does NOT match.
- ssh_config saying "UserKnownHostsFile none" → still strict (refused against ~/.ssh/known_hosts... or the
  file we pass), unless insecure_accept_unknown_host_keys=True is given explicitly.
- a unix socket on the node reached through forward_local_path: bytes round-trip.
- non-root login without sudo rights → Refusal naming the user, the command and NOPASSWD.
- ProxyJump in ssh_config is honoured; a broken ssh_config is a Refusal naming the file.
- NodePool: one connection per node, shared by concurrent callers; discard forces a reconnect.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from shimshift.adapters.node_access import NodePool, find_programs_here
from shimshift.adapters.ssh import SSHNodeAccess
from shimshift.core.errors import Refusal
from shimshift.core.node_commands import PROGRAMS, sudoers_rule

from .conftest import HOST_ALIAS, JUMP_ALIAS, NOSUDO_ALIAS, Sshd


def _config_with(sshd: Sshd, tmp_path: Path, known_hosts_line: str) -> Path:
    text = sshd.ssh_config.read_text().replace(
        f"UserKnownHostsFile {sshd.known_hosts}", f"UserKnownHostsFile {known_hosts_line}"
    )
    config = tmp_path / "ssh_config"
    config.write_text(text)
    return config


async def test_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(Refusal) as refused:
        await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=sshd.ssh_config, known_hosts=empty)
    text = str(refused.value)
    assert refused.value.node == HOST_ALIAS
    assert "unknown" in text
    assert str(empty) in text
    assert f"[127.0.0.1]:{sshd.port}" in text


async def test_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    other_public = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    recorded = tmp_path / "known_hosts"
    recorded.write_text(sshd.known_hosts_line(other_public))
    config = _config_with(sshd, tmp_path, str(recorded))
    with pytest.raises(Refusal) as refused:
        await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=config)
    text = str(refused.value)
    assert "does NOT match" in text
    assert str(recorded) in text
    assert "ssh-keygen -R" in text


async def test_known_hosts_none_in_config_does_not_disable_checking(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ~/.ssh/known_hosts is where the fallback looks: point HOME at an empty one.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("HOME", str(home))
    config = _config_with(sshd, tmp_path, "none")
    with pytest.raises(Refusal, match="unknown"):
        await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=config)
    insecure = await SSHNodeAccess.connect(
        HOST_ALIAS, ssh_config=config, insecure_accept_unknown_host_keys=True
    )
    try:
        assert (await insecure.run(["id", "-u"])).stdout == b"0\n"
    finally:
        await insecure.close()


async def test_missing_ssh_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Refusal, match="ssh config file not found"):
        await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=tmp_path / "absent")


async def test_unix_socket_forward_reaches_the_node_socket(sshd: Sshd, tmp_path: Path) -> None:
    socket_path = tmp_path / "node.sock"

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"node says: " + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(echo, path=str(socket_path))
    access = await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=sshd.ssh_config)
    try:
        async with access.open_unix_socket_forward(str(socket_path)) as local:
            assert local != str(socket_path)
            reader, writer = await asyncio.open_unix_connection(local)
            writer.write(b"hello\n")
            await writer.drain()
            assert await reader.read() == b"node says: hello\n"
            writer.close()
        assert not Path(local).exists()
    finally:
        await access.close()
        server.close()
        await server.wait_closed()


async def test_sudo_password_prompt_becomes_a_refusal(sshd: Sshd) -> None:
    access = await SSHNodeAccess.connect(NOSUDO_ALIAS, ssh_config=sshd.ssh_config)
    try:
        assert access.uses_sudo
        with pytest.raises(Refusal) as refused:
            await access.run(["systemctl", "restart", "kubelet"])
        text = str(refused.value)
        assert refused.value.node == NOSUDO_ALIAS
        assert "shimshift-test-nosudo" in text
        assert "systemctl restart kubelet" in text
        # The rule to install: every declared program by its full path on the node (this machine),
        # looked up as the login user on sudo's search path.
        rule = sudoers_rule("shimshift-test-nosudo", find_programs_here(PROGRAMS))
        assert f"`{rule}`" in text
        assert "group docker" in text
        assert await access.find_programs(["sh", "test", "no-such-program"]) == find_programs_here(
            ["sh", "test", "no-such-program"]
        )
    finally:
        await access.close()


async def test_pool_opens_one_connection_per_node(sshd: Sshd) -> None:
    opened: list[str] = []

    async def connect(node: str) -> SSHNodeAccess:
        opened.append(node)
        return await SSHNodeAccess.connect(node, ssh_config=sshd.ssh_config)

    pool = NodePool(connect, max_concurrency=1)
    try:
        first, second, third = await asyncio.gather(
            pool.get(HOST_ALIAS), pool.get(HOST_ALIAS), pool.get(NOSUDO_ALIAS)
        )
        assert first is second
        assert first is not third
        assert opened == [HOST_ALIAS, NOSUDO_ALIAS]
        assert (await first.run(["id", "-u"])).stdout == b"0\n"
        await pool.discard(HOST_ALIAS)
        again = await pool.get(HOST_ALIAS)
        assert again is not first
        assert opened == [HOST_ALIAS, NOSUDO_ALIAS, HOST_ALIAS]
    finally:
        await pool.close()


async def test_proxyjump_from_ssh_config(sshd: Sshd) -> None:
    access = await SSHNodeAccess.connect(JUMP_ALIAS, ssh_config=sshd.ssh_config)
    try:
        assert (await access.run(["id", "-u"])).stdout == b"0\n"
    finally:
        await access.close()


async def test_broken_ssh_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host x\n  Port notaport\n")
    with pytest.raises(Refusal) as refused:
        await SSHNodeAccess.connect("x", ssh_config=config)
    assert str(config) in str(refused.value)
