"""What `upgrade` checks on this machine before a run begins: the --binaries files, asked for real.

Matrix: three executables answering like kubeadm, kubelet and kubectl v1.24.17 pass with their sha256;
one of another release, one missing, one that is not executable are refused naming the file; the
request's journal record round-trips (a resumed run rebuilds it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import stat
from pathlib import Path

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.upgrade.binaries import Binary
from shimshift.orchestrator.upgrade_run import UpgradeRequest, checked_binaries


def answer(binary: Binary, release: str) -> str:
    """What the real binary prints for core.upgrade.binaries.version_argv (tests/unit/core/fixtures/upgrade/)."""
    if binary is Binary.KUBECTL:
        return json.dumps({"clientVersion": {"gitVersion": f"v{release}"}})
    return f"Kubernetes v{release}" if binary is Binary.KUBELET else f"v{release}"


def fake_binaries(directory: Path, release: str = "1.24.17", *, skip: Binary | None = None) -> Path:
    directory.mkdir(exist_ok=True)
    for binary in Binary:
        if binary is skip:
            continue
        path = directory / str(binary)
        path.write_text(f"#!/bin/sh\ncat <<'END'\n{answer(binary, release)}\nEND\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return directory


def test_the_three_binaries_of_the_release_pass_with_their_digests(tmp_path: Path) -> None:
    directory = fake_binaries(tmp_path / "bin")
    found = asyncio.run(checked_binaries(directory, "1.24.17"))
    assert [(item.binary, item.git_version) for item in found] == [(b, "v1.24.17") for b in Binary]
    for item in found:
        assert item.sha256 == hashlib.sha256(Path(item.source).read_bytes()).hexdigest()


def test_another_release_is_refused_naming_the_file(tmp_path: Path) -> None:
    directory = fake_binaries(tmp_path / "bin", "1.24.16")
    with pytest.raises(Refusal, match=re.escape("kubeadm reports v1.24.16, not --to v1.24.17")) as refused:
        asyncio.run(checked_binaries(directory, "1.24.17"))
    assert refused.value.file == f"{directory}/kubeadm"


def test_a_missing_or_unrunnable_binary_is_refused(tmp_path: Path) -> None:
    directory = fake_binaries(tmp_path / "bin", skip=Binary.KUBELET)
    with pytest.raises(Refusal, match="no runnable kubelet"):
        asyncio.run(checked_binaries(directory, "1.24.17"))
    (directory / "kubelet").write_text("not a program")
    with pytest.raises(Refusal, match="no runnable kubelet"):
        asyncio.run(checked_binaries(directory, "1.24.17"))


def test_the_request_round_trips_through_the_journal(tmp_path: Path) -> None:
    request = UpgradeRequest("1.24.17", tmp_path, ("apt-get install -y {binary}={version}-1.1",), ("--v=5",))
    assert UpgradeRequest.from_record(json.loads(json.dumps(request.to_record()))) == request
