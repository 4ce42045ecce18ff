"""Node files are refused before parsing when they are oversized or hold control characters.

Matrix: every refused character class (C0 but tab/LF, lone CR, DEL, C1 incl. NEL, U+2028/9) with its
line and column; what stays accepted (tab, CRLF endings, non-UTF-8 bytes); the size limit at and one
byte over it; every kind of node file (env file, drop-in, unit, config.yaml) through `plan_node`, which
raises instead of returning a plan (so nothing can be written); the node stamped on the refusal.
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.node_files import (
    CRI_DOCKERD_UNIT_USR,
    DEFAULT_KUBELET,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
)
from shimshift.core.node_hygiene import MAX_NODE_FILE_BYTES, check_node_file, check_node_files
from shimshift.core.node_planner import plan_node

from .nodes import dockershim_node

P = "/var/lib/kubelet/kubeadm-flags.env"


def refusal(data: bytes, path: str = P) -> Refusal:
    with pytest.raises(Refusal) as caught:
        check_node_file(path, data)
    return caught.value


def test_the_issue_case_nul_bytes_in_kubeadm_flags() -> None:
    # these NULs used to be copied into the planned cri-dockerd unit.
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = b'KUBELET_KUBEADM_ARGS="--network-plugin=cni\0\0"\n'
    with pytest.raises(Refusal) as caught:
        plan_node(
            kubelet_version="1.23.17",
            files=files,
            cri_dockerd_version="0.3.17",
            docker_cgroup_driver="systemd",
            node="worker-1",
        )
    text = str(caught.value)
    assert text.startswith(f"node worker-1, {KUBEADM_FLAGS_ENV}:1: control character NUL (0x00) at column 43")
    assert f"cat -A {KUBEADM_FLAGS_ENV}" in text


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\x00", "NUL (0x00)"),
        ("\x01", "0x01"),
        ("\x0b", "VT (0x0b)"),
        ("\x1b", "ESC (0x1b)"),
        ("\x1f", "0x1f"),
        ("\x7f", "DEL (0x7f)"),
        ("\x85", "NEL (0x85)"),
        ("\x9b", "0x9b"),
        ("\u2028", "LINE SEPARATOR (U+2028)"),
        ("\u2029", "PARAGRAPH SEPARATOR (U+2029)"),
    ],
)
def test_refused_characters_with_line_and_column(char: str, name: str) -> None:
    data = ("# kubeadm\n\nKUBELET_KUBEADM_ARGS=--v=2" + char + "\n").encode()
    found = refusal(data)
    assert (found.file, found.line) == (P, 3)
    assert found.what == f"control character {name} at column 27"


def test_a_lone_cr_is_refused_but_crlf_endings_are_not() -> None:
    check_node_file(P, b"# comment\r\nKUBELET_KUBEADM_ARGS=--v=2\r\n")
    found = refusal(b"# comment\r\nKUBELET_KUBEADM_ARGS=--v=2\rKUBELET_EXTRA_ARGS=\r\n")
    assert (found.line, found.what) == (2, "control character CR (0x0d) at column 27")
    assert "line break for systemd" in found.hint
    assert refusal(b"KUBELET_KUBEADM_ARGS=--v=2\r").line == 1  # a CR at the very end ends no CRLF


def test_tabs_and_non_utf8_bytes_are_left_to_the_parsers() -> None:
    check_node_file(P, b'KUBELET_KUBEADM_ARGS=\t"--v=2"\t\n')
    check_node_file(P, b"# \xe9t\xe9 (latin-1 comment)\nKUBELET_KUBEADM_ARGS=--v=2\n")


def test_size_limit_at_and_over_the_limit() -> None:
    line = b"# padding " + b"x" * 53 + b"\n"  # 64 bytes
    exactly = line * (MAX_NODE_FILE_BYTES // len(line))
    assert len(exactly) == MAX_NODE_FILE_BYTES
    check_node_file(P, exactly)
    found = refusal(exactly + b"#")
    assert (found.file, found.line) == (P, None)
    assert "larger than 1 MiB (1048576 bytes)" in found.what
    assert "was not read whole" in found.what


def test_the_size_is_checked_before_the_characters() -> None:
    # A bounded read hands over limit+1 bytes of whatever the file holds; the size is what matters.
    assert "larger than" in refusal(b"\0" * (MAX_NODE_FILE_BYTES + 1)).what


@pytest.mark.parametrize(
    ("path", "good", "bad_line"),
    [
        (DEFAULT_KUBELET, b"KUBELET_EXTRA_ARGS=--fail-swap-on=false\n", 1),
        (KUBELET_DROPIN_USR, None, 2),
        (KUBELET_CONFIG, None, 3),
        (CRI_DOCKERD_UNIT_USR, b"[Service]\nExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd://\n", 2),
    ],
)
def test_every_kind_of_node_file_is_checked_before_planning(path: str, good: bytes | None, bad_line: int) -> None:
    files = dockershim_node(23)
    original = good if good is not None else files[path]
    assert original is not None
    lines = original.split(b"\n")
    lines[bad_line - 1] += b"\x1b[31m"
    files[path] = b"\n".join(lines)
    with pytest.raises(Refusal) as caught:
        plan_node(kubelet_version="1.23.17", files=files, cri_dockerd_version="0.3.17", docker_cgroup_driver="systemd")
    assert (caught.value.file, caught.value.line) == (path, bad_line)
    assert "ESC (0x1b)" in caught.value.what


def test_check_node_files_goes_in_the_given_order_and_skips_absent_files() -> None:
    files: dict[str, bytes | None] = {"/b": b"\x01", "/a": b"\x02", "/c": None}
    with pytest.raises(Refusal) as caught:
        check_node_files(files, order=("/b",), node="n1")
    assert (caught.value.file, caught.value.node) == ("/b", "n1")
    with pytest.raises(Refusal) as caught:
        check_node_files(files)
    assert caught.value.file == "/a"
    check_node_files({"/c": None})


def test_a_value_systemd_would_drop_is_refused_at_its_flag() -> None:
    # Not UTF-8: systemd ignores an ExecStart= line that is not UTF-8 clean (seen with systemd-analyze
    # verify), which would leave cri-dockerd without a command. The env file itself may hold such bytes.
    files = dockershim_node(23)
    files[KUBEADM_FLAGS_ENV] = b'# x\nKUBELET_KUBEADM_ARGS="--pod-infra-container-image=reg/p\xffuse:3.6"\n'
    with pytest.raises(Refusal) as caught:
        plan_node(
            kubelet_version="1.23.17", files=files, cri_dockerd_version="0.3.17", docker_cgroup_driver="systemd",
            node="w1",
        )
    assert (caught.value.file, caught.value.line, caught.value.node) == (KUBEADM_FLAGS_ENV, 2, "w1")
    assert "not UTF-8 (byte 0xff)" in caught.value.what
