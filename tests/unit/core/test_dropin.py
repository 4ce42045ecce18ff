"""systemd units: the kubeadm drop-in (read) and cri-dockerd's (written).

Matrix: DEB and RPM drop-ins, Environment= quoting, EnvironmentFile order and optional marker, ExecStart
reset and prefixes, $VAR vs ${VAR} expansion, continuation lines; quoting of written ExecStart words.
"""

from __future__ import annotations

import pytest

from shimshift.core.dropin import (
    STANDARD_KUBEADM_DROPIN,
    cri_dockerd_exec_start,
    expand_exec_start,
    parse_kubelet_dropin,
    render_cri_dockerd_dropin,
    split_words,
    systemd_quote,
)
from shimshift.core.errors import Refusal

from .nodes import DEB_DROPIN, RPM_DROPIN

P = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"


@pytest.mark.parametrize(
    ("data", "extra"),
    [
        (DEB_DROPIN, "/etc/default/kubelet"),
        (RPM_DROPIN, "/etc/sysconfig/kubelet"),
        (STANDARD_KUBEADM_DROPIN, "/etc/default/kubelet"),
    ],
)
def test_kubeadm_dropins(data: bytes, extra: str) -> None:
    d = parse_kubelet_dropin(P, data)
    assert [(p, opt) for p, opt, _ in d.environment_files] == [
        ("/var/lib/kubelet/kubeadm-flags.env", True),
        (extra, True),
    ]
    assert [n for n, _v, _l in d.environment] == ["KUBELET_KUBECONFIG_ARGS", "KUBELET_CONFIG_ARGS"]
    assert d.exec_start[0].text == "/usr/bin/kubelet"
    words = expand_exec_start(
        d,
        {
            "KUBELET_CONFIG_ARGS": "--config=/c.yaml",
            "KUBELET_KUBEADM_ARGS": "--a=b  --c d",
            "KUBELET_KUBECONFIG_ARGS": "",
        },
    )
    assert [(w.text, w.var) for w in words] == [
        ("--config=/c.yaml", "KUBELET_CONFIG_ARGS"),
        ("--a=b", "KUBELET_KUBEADM_ARGS"),
        ("--c", "KUBELET_KUBEADM_ARGS"),
        ("d", "KUBELET_KUBEADM_ARGS"),
    ]


def test_last_execstart_after_reset_and_braced_vars() -> None:
    data = (
        b"[Unit]\nExecStart=/ignored\n[Service]\nExecStart=/usr/bin/old $X\nExecStart=\n"
        b'ExecStart=-/usr/bin/kubelet \\\n  --v=${LEVEL} "--node-labels=a=b c" $KUBELET_KUBEADM_ARGS\n'
    )
    d = parse_kubelet_dropin(P, data)
    assert d.exec_start_line == 6
    words = expand_exec_start(d, {"LEVEL": "2", "KUBELET_KUBEADM_ARGS": "--x=y"})
    assert [(w.text, w.var) for w in words] == [
        ("--v=2", None),
        ("--node-labels=a=b c", None),
        ("--x=y", "KUBELET_KUBEADM_ARGS"),
    ]


def test_resets() -> None:
    d = parse_kubelet_dropin(
        P, b"[Service]\nEnvironment=A=1\nEnvironment=\nEnvironmentFile=/x\nEnvironmentFile=\nExecStart=/k\n"
    )
    assert d.environment == () and d.environment_files == ()


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"[Service]\nExecStart=\n", None),
        (b'[Service]\nEnvironment="A=1\nExecStart=/k\n', 2),
        (b"[Service]\nEnvironment=NOEQUALS\nExecStart=/k\n", 2),
        (b"[Service]\njunk\n", 2),
        (b"[Service]\nExecStart=/k \\\n", 2),
    ],
)
def test_refusals(data: bytes, line: int | None) -> None:
    with pytest.raises(Refusal) as info:
        parse_kubelet_dropin(P, data)
    assert info.value.file == P and info.value.line == line


def test_split_words() -> None:
    assert [w.text for w in split_words('a \'b c\' "d \\" e" f\\ g', path=P, line=1)] == [
        "a",
        "b c",
        'd " e',
        "f g",
    ]


def test_cri_dockerd_unit_exec() -> None:
    unit = b"[Service]\nType=notify\nExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd://\n"
    assert [w.text for w in cri_dockerd_exec_start("/u", unit)] == [
        "/usr/bin/cri-dockerd",
        "--container-runtime-endpoint",
        "fd://",
    ]
    assert cri_dockerd_exec_start("/u", b"[Service]\nExecStart=\n") == []


def test_quote_and_render_round_trip() -> None:
    assert systemd_quote("--network-plugin=cni") == "--network-plugin=cni"
    assert systemd_quote("--network-plugin=") == "--network-plugin="
    assert systemd_quote("a b") == '"a b"'
    assert systemd_quote("50%$") == "50%%$$"
    words = ["/usr/bin/cri-dockerd", "--a=x y", '--b="q"']
    data = render_cri_dockerd_dropin(exec_words=[systemd_quote(w) for w in words], comment=["hello", ""])
    assert data.startswith(b"# hello\n#\n[Service]\nExecStart=\nExecStart=")
    assert [w.text for w in cri_dockerd_exec_start("/d", data)] == words


@pytest.mark.parametrize(
    ("word", "written"),
    [
        ("--pod-infra-container-image=reg/p%h", "--pod-infra-container-image=reg/p%%h"),  # specifier
        ("--x=$HOME", "--x=$$HOME"),  # variable expansion
        ("--x=${HOME}", "--x=$${HOME}"),
        ("--x=a\\b", '"--x=a\\\\b"'),  # a C escape systemd would decode
        ('--x="q"', '"--x=\\"q\\""'),
        ("--x='q'", "\"--x='q'\""),
        ("--x=a;b", '"--x=a;b"'),
        (";", '";"'),  # quoted: a literal word, not the command separator
        ("", '""'),
        ("--x=ünï", "--x=ünï"),  # UTF-8 is fine
    ],
)
def test_systemd_quote_per_character(word: str, written: str) -> None:
    assert systemd_quote(word) == written
    data = render_cri_dockerd_dropin(exec_words=["/usr/bin/cri-dockerd", written], comment=[])
    # Our reader of ExecStart= undoes quotes and backslashes but leaves %% and $$ to systemd, which
    # the real one does (tests/e2e/core/test_systemd_quoting.py).
    read = [w.text.replace("%%", "%").replace("$$", "$") for w in cri_dockerd_exec_start("/d", data)]
    assert read == ["/usr/bin/cri-dockerd", word]


@pytest.mark.parametrize(
    ("word", "what"),
    [
        ("--x=a\x00b", "control character 0x00"),
        ("--x=a\x1bb", "control character 0x1b"),
        ("--x=a\x7f", "control character 0x7f"),
        ("--x=a\x85", "control character 0x85"),
        (b"--x=a\xffb".decode("utf-8", "surrogateescape"), "is not UTF-8 (byte 0xff)"),
    ],
)
def test_systemd_quote_refuses_what_systemd_cannot_take(word: str, what: str) -> None:
    with pytest.raises(Refusal) as caught:
        systemd_quote(word)
    assert what in caught.value.what
