"""Node access against the real world: a real sshd on 127.0.0.1 and this machine as a local node.

Matrix (every file test runs over SSH as root and locally):
- run: argv elements with shell metacharacters arrive intact; stdin (none or empty reads as EOF);
  non-zero exit with check=True names node, command, status and stderr; check=False returns the
  status; timeout.
- read_file: present (binary), absent; bounded (at most limit + 1 bytes, /dev/zero included).
- write_file_atomic: keeps owner and mode, backup holds the old content with the old owner and mode; a
  new file gets the given mode (and missing directories 0755); an empty file; writes go through a
  symlink to its target; a write that times out mid-way leaves the original intact and no temporary
  file; a transfer cut short never replaces the file.
- remove_file: with backup (moved), without, absent.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.adapters.local import LocalNodeAccess
from shimshift.adapters.node_access import _WRITE_SCRIPT, CommandFailed, CommandTimeout, NodeAccess
from shimshift.adapters.ssh import SSHNodeAccess
from shimshift.core.node_hygiene import MAX_NODE_FILE_BYTES

from .conftest import HOST_ALIAS, Sshd

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NOBODY = 65534  # nobody:nogroup on Debian


@pytest.fixture(params=["ssh", "local"])
async def access(request: pytest.FixtureRequest, sshd: Sshd) -> AsyncIterator[NodeAccess]:
    if request.param == "ssh":
        node: NodeAccess = await SSHNodeAccess.connect(HOST_ALIAS, ssh_config=sshd.ssh_config)
    else:
        node = LocalNodeAccess("local-node")
    try:
        yield node
    finally:
        await node.close()


async def test_argv_elements_arrive_intact(access: NodeAccess) -> None:
    tricky = ["a b", "$(touch /tmp/shimshift-pwned)", "'", '"', "; rm -rf /", "*", "\\n", ""]
    result = await access.run(["printf", "%s\\n", *tricky])
    assert result.stdout.decode().split("\n")[:-1] == tricky
    assert not Path("/tmp/shimshift-pwned").exists()


async def test_stdin_is_passed(access: NodeAccess) -> None:
    data = bytes(range(256)) * 100
    assert (await access.run(["cat"], stdin=data)).stdout == data


async def test_failure_names_node_command_status_and_stderr(access: NodeAccess) -> None:
    with pytest.raises(CommandFailed) as failed:
        await access.run(["sh", "-c", "echo something broke >&2; exit 7", "ignored arg"])
    text = str(failed.value)
    assert access.node in text
    assert "exited with status 7" in text
    assert "something broke" in text
    assert "'echo something broke >&2; exit 7'" in text
    assert failed.value.result.returncode == 7


async def test_check_false_returns_status(access: NodeAccess) -> None:
    result = await access.run(["false"], check=False)
    assert result.returncode == 1
    assert not result.ok


async def test_timeout(access: NodeAccess) -> None:
    with pytest.raises(CommandTimeout):
        await access.run(["sleep", "5"], timeout=0.3)


async def test_bounded_read_transfers_at_most_one_byte_over_the_limit(access: NodeAccess, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    assert await access.read_file(str(big), max_bytes=4999) == b"x" * 5000
    assert await access.read_file(str(big), max_bytes=100) == b"x" * 101  # the core refuses the extra byte
    assert await access.read_file(str(tmp_path / "absent"), max_bytes=100) is None
    # An endless file: a whole read would never finish.
    assert await access.read_file("/dev/zero", max_bytes=MAX_NODE_FILE_BYTES) == bytes(MAX_NODE_FILE_BYTES + 1)


async def test_read_file(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"\x00\xffkubeadm\n")
    assert await access.read_file(str(target)) == b"\x00\xffkubeadm\n"
    assert await access.read_file(str(tmp_path / "absent")) is None


async def test_write_keeps_owner_mode_and_backs_up(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "kubeadm-flags.env"
    target.write_bytes(b"old\n")
    os.chown(target, NOBODY, NOBODY)
    target.chmod(0o640)
    saved = await access.write_file_atomic(str(target), b"new\n")
    assert target.read_bytes() == b"new\n"
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o640)
    assert saved is not None
    assert saved.startswith(f"{target}.shimshift-")
    assert saved.endswith(".bak")
    backup = Path(saved)
    assert backup.read_bytes() == b"old\n"
    bst = backup.stat()
    assert (bst.st_uid, bst.st_gid, stat.S_IMODE(bst.st_mode)) == (NOBODY, NOBODY, 0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, backup.name])


async def test_second_write_keeps_a_second_backup(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"1")
    first = await access.write_file_atomic(str(target), b"2")
    second = await access.write_file_atomic(str(target), b"3")
    assert first != second
    assert first is not None
    assert second is not None
    assert (Path(first).read_bytes(), Path(second).read_bytes(), target.read_bytes()) == (b"1", b"2", b"3")


async def test_new_file_gets_given_mode_and_no_backup(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "new.conf"
    assert await access.write_file_atomic(str(target), b"x", mode=0o600) is None
    st = target.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode), target.read_bytes()) == (0, 0o600, b"x")
    other = tmp_path / "default.conf"
    await access.write_file_atomic(str(other), b"y")
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


async def test_write_without_backup(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    assert await access.write_file_atomic(str(target), b"new", backup=False) is None
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


async def test_write_through_symlink_changes_target(access: NodeAccess, tmp_path: Path) -> None:
    real = tmp_path / "real.service"
    real.write_bytes(b"old")
    link = tmp_path / "link.service"
    link.symlink_to(real)
    await access.write_file_atomic(str(link), b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


async def test_timed_out_write_is_all_or_nothing(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "big"
    target.write_bytes(b"original")
    new = os.urandom(1 << 20) * 64
    with pytest.raises(CommandTimeout):
        await access.write_file_atomic(str(target), new, timeout=0.2)
    # Over SSH the node side may still be finishing (the bytes already sent can complete the write):
    # at every moment the target is the old file or the whole new one, and the temporary file goes away.
    deadline = time.monotonic() + 30
    while True:
        assert target.read_bytes() in (b"original", new)
        leftovers = [p.name for p in tmp_path.iterdir() if "shimshift-tmp" in p.name]
        if not leftovers or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert leftovers == []


async def test_cut_transfer_never_replaces_the_file(access: NodeAccess, tmp_path: Path) -> None:
    """A connection dropped mid-transfer looks like a short stdin to the node: the digest refuses it."""
    target = tmp_path / "kubeadm-flags.env"
    target.write_bytes(b"original")
    whole = b"KUBELET_KUBEADM_ARGS=--container-runtime=remote\n" * 1000
    with pytest.raises(CommandFailed, match="incomplete transfer"):
        await access.run(
            ["sh", "-c", _WRITE_SCRIPT, "shimshift-write", str(target), "", "644", sha256(whole).hexdigest()],
            stdin=whole[:1000],
        )
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["kubeadm-flags.env"]


async def test_remove_file(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "10-cri-dockerd.conf"
    target.write_bytes(b"drop-in")
    saved = await access.remove_file(str(target))
    assert not target.exists()
    assert saved is not None
    assert Path(saved).read_bytes() == b"drop-in"
    assert await access.remove_file(str(target)) is None
    other = tmp_path / "other"
    other.write_bytes(b"x")
    assert await access.remove_file(str(other), backup=False) is None
    assert not other.exists()


async def test_relative_paths_are_rejected(access: NodeAccess) -> None:
    with pytest.raises(ValueError, match="absolute"):
        await access.read_file("etc/passwd")


async def test_no_stdin_reads_as_empty(access: NodeAccess) -> None:
    assert (await access.run(["cat"], timeout=10)).stdout == b""
    assert (await access.run(["cat"], stdin=b"", timeout=10)).stdout == b""


async def test_empty_file(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.write_bytes(b"something")
    await access.write_file_atomic(str(target), b"", timeout=10)
    assert target.read_bytes() == b""


async def test_missing_directories_are_created(access: NodeAccess, tmp_path: Path) -> None:
    target = tmp_path / "cri-docker.service.d" / "sub" / "10-shimshift.conf"
    assert await access.write_file_atomic(str(target), b"[Service]\n") is None
    assert target.read_bytes() == b"[Service]\n"
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755
