"""The cri-dockerd drop-in the plan writes, read by the real systemd (`systemd-analyze verify`, systemd 252).

Flag values holding what ExecStart= would reinterpret (``%`` specifiers, ``$``, backslashes, quotes,
``;``) are planned, and the drop-in with the unit it overrides is verified: no specifier error, no
unknown escape, no second command. The same words written without our quoting are verified too, and
must fail, so the check can fail. Then a lab node's systemd runs a unit whose ExecStart= holds the
same words, quoted the same way, and they must arrive byte for byte (this also covers ``$``, which
verify cannot see). A missing systemd-analyze FAILS the test (never a skip).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from shimshift.core.dropin import STANDARD_KUBEADM_DROPIN, render_cri_dockerd_dropin, systemd_quote
from shimshift.core.node_files import (
    CRI_DOCKERD_DROPIN,
    CRI_DOCKERD_UNIT_USR,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
)
from shimshift.core.node_planner import plan_node

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e

# /usr/bin/true: verify checks that the binary exists, and cri-dockerd is not installed here.
UNIT = b"[Service]\nType=notify\nExecStart=/usr/bin/true --container-runtime-endpoint fd://\n"
# As kubeadm-flags.env holds them (double-quoted env file: \\ is one backslash, \" a quote, \$ a dollar).
TRICKY_FLAGS = (
    b'KUBELET_KUBEADM_ARGS="--network-plugin=cni --pod-infra-container-image=reg.example/p%Z:3.6'
    b" --cni-bin-dir=/opt/cni/\\$HOME/%h --cni-conf-dir=/etc/cni/a\\\\qb;'c'\\\"d"
    b' --cni-cache-dir=;"\n'
)


def verify(directory: Path, dropin: bytes) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)", pytrace=False)
    (directory / "cri-docker.service").write_bytes(UNIT)
    (directory / "cri-docker.service.d").mkdir(exist_ok=True)
    (directory / "cri-docker.service.d" / "10-shimshift.conf").write_bytes(dropin)
    return subprocess.run(
        [tool, "verify", "--man=no", str(directory / "cri-docker.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def planned_dropin() -> tuple[bytes, tuple[str, ...]]:
    files: dict[str, bytes | None] = {
        KUBELET_DROPIN_USR: STANDARD_KUBEADM_DROPIN,
        KUBEADM_FLAGS_ENV: TRICKY_FLAGS,
        KUBELET_CONFIG: b"kind: KubeletConfiguration\ncgroupDriver: systemd\n",
        CRI_DOCKERD_UNIT_USR: UNIT,
    }
    plan = plan_node(
        kubelet_version="1.23.17", files=files, cri_dockerd_version="0.3.17", docker_cgroup_driver="systemd"
    )
    change = next(c for c in plan.changes if c.path == CRI_DOCKERD_DROPIN)
    assert change.after is not None
    return change.after, plan.cri_dockerd_args


def test_the_planned_dropin_loads_cleanly_in_systemd(tmp_path: Path) -> None:
    dropin, args = planned_dropin()
    assert "--pod-infra-container-image=reg.example/p%Z:3.6" in args
    assert "--cni-bin-dir=/opt/cni/$HOME/%h" in args
    assert "--cni-conf-dir=/etc/cni/a\\qb;'c'\"d" in args
    assert "--cni-cache-dir=;" in args
    result = verify(tmp_path, dropin)
    assert (result.returncode, result.stderr) == (0, ""), dropin.decode()


def test_the_same_words_unquoted_are_refused_by_systemd(tmp_path: Path) -> None:
    _dropin, args = planned_dropin()
    raw = render_cri_dockerd_dropin(exec_words=list(args), comment=[])
    result = verify(tmp_path, raw)
    assert result.returncode != 0
    assert "Failed to resolve unit specifiers" in result.stderr


def test_a_lab_node_systemd_passes_the_quoted_words_unchanged(lab: LabInfo) -> None:
    # verify cannot see `$` expansion; a real systemd running a oneshot unit can: it writes the argv it
    # got, NUL-separated, and that must be the planned words exactly.
    _dropin, args = planned_dropin()
    words = list(args[1:])
    node = lab.workers[0].name
    script = 'printf "%s\\0" "$@" > "$0"'
    argv = ["/bin/sh", "-c", script, "/run/shimshift-quote-test.out", *words]
    unit = "[Service]\nType=oneshot\nExecStart=" + " ".join(systemd_quote(w) for w in argv) + "\n"
    path = "/run/systemd/system/shimshift-quote-test.service"
    try:
        lab.exec(node, ["sh", "-c", 'cat > "$1"', "sh", path], input=unit, check=True)
        lab.exec(node, ["systemctl", "daemon-reload"], check=True)
        started = lab.exec(node, ["systemctl", "start", "shimshift-quote-test.service"])
        assert started.returncode == 0, started.stderr + unit
        out = lab.exec(node, ["cat", "/run/shimshift-quote-test.out"], check=True).stdout
        assert out.split("\0")[:-1] == words
    finally:
        lab.exec(node, ["rm", "-f", path, "/run/shimshift-quote-test.out"])
        lab.exec(node, ["systemctl", "daemon-reload"])
