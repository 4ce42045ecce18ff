"""KubeletConfiguration edits (config.yaml, instance-config.yaml): one line changed, the rest kept.

Matrix: replace in place (plain, quoted, with comment, CRLF), append (with and without final newline,
empty file), unchanged when already set; refusals for JSON/flow, multi-document, non-mapping, duplicate key,
wrong kind, broken YAML.
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.kubelet_config import parse_kubelet_config, set_endpoint

P = "/var/lib/kubelet/config.yaml"
S = "unix:///var/run/cri-dockerd.sock"


def set_(data: bytes) -> bytes:
    return set_endpoint(parse_kubelet_config(P, data), S)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            b"kind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///run/containerd/containerd.sock\nx: 1\n",
            b"kind: KubeletConfiguration\ncontainerRuntimeEndpoint: " + S.encode() + b"\nx: 1\n",
        ),
        (
            b'containerRuntimeEndpoint:   "unix:///x"   # why\r\nx: 1\r\n',
            b"containerRuntimeEndpoint:   " + S.encode() + b"   # why\r\nx: 1\r\n",
        ),
        (
            b"kind: KubeletConfiguration\n",
            b"kind: KubeletConfiguration\ncontainerRuntimeEndpoint: " + S.encode() + b"\n",
        ),
        (
            b"kind: KubeletConfiguration",
            b"kind: KubeletConfiguration\ncontainerRuntimeEndpoint: " + S.encode() + b"\n",
        ),
        (
            b"a: 1\r\nb:\r\n  containerRuntimeEndpoint: nested\r\n",
            b"a: 1\r\nb:\r\n  containerRuntimeEndpoint: nested\r\ncontainerRuntimeEndpoint: "
            + S.encode()
            + b"\r\n",
        ),
        (b"", b"containerRuntimeEndpoint: " + S.encode() + b"\n"),
    ],
)
def test_set_endpoint(before: bytes, after: bytes) -> None:
    assert set_(before) == after
    assert set_(after) == after


@pytest.mark.parametrize(
    "data",
    [
        b'{"kind": "KubeletConfiguration"}',
        b"a: 1\n---\nb: 2\n",
        b"- a\n",
        b"containerRuntimeEndpoint: a\ncontainerRuntimeEndpoint: b\n",
        b"kind: KubeProxyConfiguration\n",
        b"a: [1\n",
        b"containerRuntimeEndpoint: |\n  unix:///x\n",
    ],
)
def test_refusals(data: bytes) -> None:
    with pytest.raises(Refusal) as info:
        set_(data)
    assert info.value.file == P and info.value.hint


def test_reading() -> None:
    c = parse_kubelet_config(P, b"kind: KubeletConfiguration\ncgroupDriver: systemd\nport: 10250\n")
    assert c.get_str("cgroupDriver") == "systemd" and c.line_of("cgroupDriver") == 2
    assert c.get_str("missing") is None
    with pytest.raises(Refusal) as info:
        c.get_str("port")
    assert info.value.line == 3
