"""Node access over SSH (asyncssh): ~/.ssh/config, ssh-agent, strict known_hosts, ``sudo -n``.

Why asyncssh and how it is used: docs/architecture.md#libraries-and-why. One connection per node
carries every command (each its own channel) and the CRI socket forward.

Host keys are always checked against known_hosts. asyncssh would switch checking off for a config that
says ``UserKnownHostsFile none`` (and it does not read ``StrictHostKeyChecking`` at all:
ronf/asyncssh ``asyncssh/config.py``), so the file
list is resolved here and checking is only ever disabled by ``insecure_accept_unknown_host_keys=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import asyncssh

from shimshift.adapters.node_access import (
    FIND_PROGRAMS_SCRIPT,
    SSH_CONFIG_INVALID,
    SSH_CONNECT_FAILED,
    SSH_HOST_KEY_MISMATCH,
    SSH_HOST_KEY_UNKNOWN,
    SSH_LOGIN_REFUSED,
    SSH_SESSION_FAILED,
    SUDO_PROMPT,
    CommandNodeAccess,
    CommandResult,
    CommandTimeout,
    NodeAccessError,
    display,
)
from shimshift.core.errors import Refusal
from shimshift.core.node_commands import PROGRAMS, SUDO_SECURE_PATH, parse_found_programs, sudoers_rule

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from contextlib import AbstractAsyncContextManager
    from datetime import datetime

DEFAULT_SSH_CONFIG = Path("~/.ssh/config")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
_SUDO_PASSWORD_MARKERS = (b"a password is required", b"a terminal is required")


class SSHNodeAccess(CommandNodeAccess):
    """A node reached over one SSH connection. Open with `SSHNodeAccess.connect`."""

    def __init__(
        self,
        node: str,
        connection: asyncssh.SSHClientConnection,
        *,
        use_sudo: bool,
        username: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(node, clock=clock)
        self._connection = connection
        self._use_sudo = use_sudo
        self._username = username

    @property
    def uses_sudo(self) -> bool:
        return self._use_sudo

    @property
    def username(self) -> str:
        return self._username

    @classmethod
    async def connect(
        cls,
        host: str,
        *,
        ssh_config: Path | None = None,
        known_hosts: Path | None = None,
        username: str | None = None,
        connect_timeout: float = 15,
        insecure_accept_unknown_host_keys: bool = False,
        clock: Callable[[], datetime] | None = None,
        reconnect: bool = True,
    ) -> SSHNodeAccess:
        """Connect to ``host`` (an ssh_config Host alias or a host name) and find out whether sudo is needed.

        ``ssh_config`` defaults to ~/.ssh/config (used only if it exists; an explicit path must exist).
        ``known_hosts`` overrides the config's UserKnownHostsFile; without either, ~/.ssh/known_hosts.
        Raises `Refusal` for an unknown or changed host key, a refused login or an unreachable host.
        """
        config_paths = _config_paths(ssh_config)
        try:
            options = asyncssh.SSHClientConnectionOptions(
                config=config_paths, host=host, **({"username": username} if username else {})
            )
        except (ValueError, OSError, asyncssh.Error) as exc:
            raise Refusal(
                f"cannot use the ssh config for {host}: {exc}",
                hint="fix the ssh config (ssh -G HOST shows how OpenSSH reads it)",
                file=", ".join(config_paths) or None,
                node=host,
                code=SSH_CONFIG_INVALID,
            ) from exc
        known = _known_hosts_files(options, known_hosts, insecure=insecure_accept_unknown_host_keys)
        try:
            connection = await asyncssh.connect(
                host,
                config=config_paths,
                known_hosts=known,
                connect_timeout=connect_timeout,
                login_timeout=connect_timeout,
                keepalive_interval=15,
                keepalive_count_max=4,
                **({"username": username} if username else {}),
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise _host_key_refusal(host, options, known or [], exc) from exc
        except asyncssh.PermissionDenied as exc:
            raise Refusal(
                f"SSH login as {options.username} to {options.host}:{options.port} was refused "
                f"({exc.reason})",
                hint="check the User and IdentityFile for this host in the ssh config, and that ssh-agent "
                "holds the key (ssh-add -l)",
                node=host,
                code=SSH_LOGIN_REFUSED,
            ) from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise Refusal(
                f"SSH to {options.host}:{options.port}: {_connect_problem(exc, connect_timeout)}",
                hint=f"check that `ssh {host} true` works from this machine",
                node=host,
                code=SSH_CONNECT_FAILED,
            ) from exc
        login = connection.get_extra_info("username") or options.username
        try:
            uid = await connection.run("id -u", check=False, timeout=connect_timeout)
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, asyncssh.ChannelOpenError) as exc:
            connection.close()
            if not reconnect:
                raise Refusal(f"`id -u` over SSH failed: {exc}", node=host, code=SSH_SESSION_FAILED) from exc
            # Seen on freshly booted nodes: sshd drops the first session right after login. One new
            # connection is cheap; a second drop is a real problem and is reported.
            await asyncio.sleep(1)
            return await cls.connect(
                host,
                ssh_config=ssh_config,
                known_hosts=known_hosts,
                username=username,
                connect_timeout=connect_timeout,
                insecure_accept_unknown_host_keys=insecure_accept_unknown_host_keys,
                clock=clock,
                reconnect=False,
            )
        except (asyncssh.Error, TimeoutError) as exc:
            connection.close()
            raise Refusal(f"`id -u` over SSH failed: {exc}", node=host, code=SSH_SESSION_FAILED) from exc
        use_sudo = str(uid.stdout).strip() != "0"
        return cls(host, connection, use_sudo=use_sudo, username=str(login), clock=clock)

    async def _exec(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None) -> CommandResult:
        full = ["sudo", "-n", "--", *argv] if self._use_sudo else list(argv)
        # asyncssh sends one command string; every element is quoted, nothing is concatenated raw.
        command = shlex.join(full)
        try:
            # asyncssh sends EOF only after non-empty input: no or empty input must read as /dev/null,
            # or a command that reads stdin (dd writing an empty file) would wait forever.
            feed: dict[str, Any] = {"input": stdin} if stdin else {"stdin": asyncssh.DEVNULL}
            completed = await self._connection.run(command, check=False, timeout=timeout, encoding=None, **feed)
        except asyncssh.TimeoutError as exc:
            raise CommandTimeout(self._node, argv, timeout) from exc
        except (asyncssh.Error, OSError) as exc:
            raise NodeAccessError(self._node, f"`{display(argv)}` failed over SSH: {exc}") from exc
        stdout = completed.stdout if isinstance(completed.stdout, bytes) else b""
        stderr = completed.stderr if isinstance(completed.stderr, bytes) else b""
        returncode = completed.exit_status if completed.exit_status is not None else -1
        if completed.exit_signal:
            returncode = -1
            stderr += f"\n(killed by signal {completed.exit_signal[0]})".encode()
        if self._use_sudo and returncode == 1 and any(m in stderr for m in _SUDO_PASSWORD_MARKERS):
            user = self._username
            rule = sudoers_rule(user, await self.find_programs(PROGRAMS))
            raise Refusal(
                f"sudo asks user {user} for a password to run `{display(argv)}`",
                hint=f"allow {user} exactly the commands shimshift runs, in /etc/sudoers.d/shimshift: `{rule}`, "
                f"and add {user} to group docker (`shimshift sudoers {self._node}` prints the file); "
                "or log in as root",
                node=self._node,
                code=SUDO_PROMPT,
            )
        return CommandResult(tuple(argv), returncode, stdout, stderr)

    async def find_programs(self, programs: Sequence[str]) -> dict[str, str | None]:
        # As the login user, never through sudo: this also serves the hint for a user sudo refuses.
        command = shlex.join(["sh", "-c", FIND_PROGRAMS_SCRIPT, "shimshift-find", SUDO_SECURE_PATH, *programs])
        try:
            found = await self._connection.run(command, check=False, timeout=30, stdin=asyncssh.DEVNULL)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            raise NodeAccessError(self._node, f"cannot look up {', '.join(programs)} over SSH: {exc}") from exc
        return parse_found_programs(programs, str(found.stdout or ""))

    def open_unix_socket_forward(self, remote_path: str) -> AbstractAsyncContextManager[str]:
        return self._forward(remote_path)

    @contextlib.asynccontextmanager
    async def _forward(self, remote_path: str) -> AsyncIterator[str]:
        # The forward is opened by the SSH user itself: sudo cannot help here, so a non-root login must be
        # allowed to open the socket (cri-docker.socket is root:docker 0660, Mirantis/cri-dockerd
        # packaging/systemd/cri-docker.socket).
        with tempfile.TemporaryDirectory(prefix="shimshift-fwd-") as directory:
            local = str(Path(directory) / "socket")
            try:
                listener = await self._connection.forward_local_path(local, remote_path)
            except (asyncssh.Error, OSError) as exc:
                raise NodeAccessError(self._node, f"cannot forward {remote_path} over SSH: {exc}") from exc
            try:
                yield local
            finally:
                listener.close()
                await listener.wait_closed()

    async def close(self) -> None:
        self._connection.close()
        with contextlib.suppress(Exception):
            await self._connection.wait_closed()


def _connect_problem(exc: BaseException, timeout: float) -> str:
    """Why a connection failed, in words (asyncio's own messages are empty or name only the address)."""
    if isinstance(exc, TimeoutError):
        # A firewall that drops packets, or a port that accepts but never speaks SSH.
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no sshd listens on that port)"
    if isinstance(exc, OSError) and exc.errno is not None:
        reason = os.strerror(exc.errno).lower()
        return f"{reason}: {exc.filename}" if exc.filename else reason
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    return str(exc) or type(exc).__name__


def _config_paths(ssh_config: Path | None) -> list[str]:
    if ssh_config is not None:
        path = ssh_config.expanduser()
        if not path.is_file():
            raise Refusal(
                "ssh config file not found", hint="pass an existing --ssh-config", file=str(path),
                code=SSH_CONFIG_INVALID,
            )
        return [str(path)]
    default = DEFAULT_SSH_CONFIG.expanduser()
    return [str(default)] if default.is_file() else []


def _known_hosts_files(
    options: asyncssh.SSHClientConnectionOptions, known_hosts: Path | None, *, insecure: bool
) -> list[str] | None:
    """The known_hosts files to check against; None (no checking) only when explicitly insecure."""
    if insecure:
        return None
    if known_hosts is not None:
        return [str(known_hosts.expanduser())]
    configured = cast("Sequence[str] | None", options.known_hosts)
    if configured:
        return [str(Path(p).expanduser()) for p in configured]
    # Also when the config says "UserKnownHostsFile none": strict checking is not negotiable.
    return [str(DEFAULT_KNOWN_HOSTS.expanduser())]


def _host_key_refusal(
    host: str, options: asyncssh.SSHClientConnectionOptions, known: list[str], exc: Exception
) -> Refusal:
    alias = options.host_key_alias or options.host
    port = options.port if options.port != 22 else None
    entry = f"[{alias}]:{port}" if port else str(alias)
    files = ", ".join(known) or "(none)"
    listed = False
    with contextlib.suppress(Exception):
        listed = bool(known) and bool(asyncssh.read_known_hosts(known).match(str(alias), "", port)[0])
    if listed:
        return Refusal(
            f"the SSH host key of {entry} does NOT match the key recorded in {files}: the host was "
            "reinstalled or someone is intercepting the connection",
            hint=f"verify the new key out of band (e.g. on the node's console: ssh-keygen -lf "
            f"/etc/ssh/ssh_host_ed25519_key.pub), then `ssh-keygen -R '{entry}' -f <known_hosts>` and add it",
            node=host,
            code=SSH_HOST_KEY_MISMATCH,
        )
    return Refusal(
        f"the SSH host key of {entry} is unknown: no entry in {files} ({exc})",
        hint=f"verify the key and add it, e.g. `ssh-keyscan -p {options.port} {options.host} >> "
        "<known_hosts>` after checking its fingerprint, or connect once with ssh; shimshift never accepts "
        "unknown keys by default",
        node=host,
        code=SSH_HOST_KEY_UNKNOWN,
    )
