"""A real OpenSSH server on 127.0.0.1 for the node-access tests.

The session fixture `sshd` starts /usr/sbin/sshd (Debian openssh-server, installed by scripts/setup.sh)
on a free port with a throwaway host key, lets root in by key only (``PermitRootLogin
prohibit-password``), and writes a client ssh_config + known_hosts for it. A non-root account without
any sudo rights (``shimshift-test-nosudo``) may log in with the same key, for the ``sudo -n`` refusal.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

SSHD = Path("/usr/sbin/sshd")
NOSUDO_USER = "shimshift-test-nosudo"
HOST_ALIAS = "shimshift-test-node"
NOSUDO_ALIAS = "shimshift-test-node-nosudo"
JUMP_ALIAS = "shimshift-test-node-via-jump"


@dataclass(frozen=True)
class Sshd:
    directory: Path
    port: int
    ssh_config: Path
    known_hosts: Path
    client_key: Path
    host_public_key: str  # "ssh-ed25519 AAAA..."
    alias: str = HOST_ALIAS
    nosudo_alias: str = NOSUDO_ALIAS

    def known_hosts_line(self, key: str | None = None) -> str:
        return f"[127.0.0.1]:{self.port} {key or self.host_public_key}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def _ensure_nosudo_user() -> None:
    try:
        pwd.getpwnam(NOSUDO_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", NOSUDO_USER], check=True)
    # A locked account ("!" password) is refused by sshd without PAM; "*" means "no password, not locked".
    subprocess.run(["usermod", "-p", "*", NOSUDO_USER], check=True)


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: install Debian's openssh-server (scripts/setup.sh does)")
    if os.geteuid() != 0:
        pytest.fail("the sshd fixture needs root (it runs sshd and logs in as root)")
    _ensure_nosudo_user()
    # sshd reads authorized_keys as the logging-in user, so the directory must be world-readable.
    directory = Path(tempfile.mkdtemp(prefix="shimshift-sshd-"))
    directory.chmod(0o755)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation directory
    host_key = directory / "host_ed25519"
    host_public = _keygen(host_key)
    client_key = directory / "client_ed25519"
    _keygen(client_key)
    authorized = directory / "authorized_keys"
    shutil.copyfile(client_key.with_suffix(".pub"), authorized)
    authorized.chmod(0o644)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowStreamLocalForwarding yes",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    ssh_config = directory / "ssh_config"
    common = [
        "  HostName 127.0.0.1",
        f"  Port {port}",
        f"  IdentityFile {client_key}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {known_hosts}",
    ]
    ssh_config.write_text(
        "\n".join(
            [
                f"Host {HOST_ALIAS}",
                "  User root",
                *common,
                f"Host {NOSUDO_ALIAS}",
                f"  User {NOSUDO_USER}",
                *common,
                # The same sshd, reached through itself as a bastion.
                f"Host {JUMP_ALIAS}",
                "  User root",
                f"  ProxyJump {HOST_ALIAS}",
                *common,
                "",
            ]
        )
    )
    log = (directory / "sshd.log").open("wb")
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}: {(directory / 'sshd.log').read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("sshd did not listen within 10s")
    try:
        yield Sshd(directory, port, ssh_config, known_hosts, client_key, host_public)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
