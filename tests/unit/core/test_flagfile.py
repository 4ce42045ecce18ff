"""Environment files (kubeadm-flags.env, /etc/default/kubelet, /etc/sysconfig/kubelet): read and rewrite.

Matrix: quoting (double, single, none), `--flag=value` / `--flag value` / bare flags, comments, CRLF,
trailing spaces, missing final newline, escapes; refusals with file and line.
"""

from __future__ import annotations

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.flagfile import FlagEdit, encode, flag_uses, parse_env_file, rewrite_assignment

P = "/var/lib/kubelet/kubeadm-flags.env"
KEY = "KUBELET_KUBEADM_ARGS"


def edit(
    data: bytes,
    *,
    set: dict[str, str] | None = None,
    remove: set[str] | None = None,
    append: list[tuple[str, str]] | None = None,
    key: str = KEY,
) -> bytes:
    env = parse_env_file(P, data)
    return encode(rewrite_assignment(env, key, FlagEdit(set or {}, frozenset(remove or ()), append or [])))


def test_kubeadm_shape() -> None:
    env = parse_env_file(
        P, b'KUBELET_KUBEADM_ARGS="--network-plugin=cni --pod-infra-container-image=k8s.gcr.io/pause:3.5"\n'
    )
    a = env.get(KEY)
    assert a is not None and a.line == 1 and a.quote == '"'
    uses = flag_uses(P, a)
    assert [(u.name, u.value) for u in uses] == [
        ("--network-plugin", "cni"),
        ("--pod-infra-container-image", "k8s.gcr.io/pause:3.5"),
    ]


def test_forms_and_quoting() -> None:
    env = parse_env_file(P, b"# c\n; c\n\n  KUBELET_EXTRA_ARGS = '--a b --c --d=e -v 2'   \nOTHER=x\n")
    a = env.get("KUBELET_EXTRA_ARGS")
    assert a is not None and a.line == 4 and a.quote == "'"
    assert [(u.name, u.value, u.separate) for u in flag_uses(P, a)] == [
        ("--a", "b", True),
        ("--c", None, False),
        ("--d", "e", False),
        ("-v", "2", True),
    ]
    assert env.get("OTHER") is not None


def test_double_quote_escapes() -> None:
    env = parse_env_file(P, b'K="--a=x\\"y --b=\\$HOME --c=\\q"\n')
    a = env.get("K")
    assert a is not None
    assert [u.value for u in flag_uses(P, a)] == ['x"y', "$HOME", "\\q"]


def test_remove_and_append_keep_everything_else() -> None:
    data = b'# kubeadm\r\nKUBELET_KUBEADM_ARGS="--network-plugin=cni  --node-ip=1.2.3.4 --cni-bin-dir /opt/x"  \r\nZ=1\r\n'  # noqa: E501
    out = edit(data, remove={"--network-plugin", "--cni-bin-dir"}, append=[("--container-runtime", "remote")])
    assert (
        out
        == b'# kubeadm\r\nKUBELET_KUBEADM_ARGS="--node-ip=1.2.3.4 --container-runtime=remote"  \r\nZ=1\r\n'
    )


def test_set_keeps_form() -> None:
    data = b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint /x.sock --container-runtime=docker --bare"'
    out = edit(
        data,
        set={
            "--container-runtime-endpoint": "unix:///y.sock",
            "--container-runtime": "remote",
            "--bare": "v",
        },
    )
    assert (
        out
        == b'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint unix:///y.sock --container-runtime=remote --bare=v"'
    )


def test_remove_everything_leaves_an_empty_value() -> None:
    assert edit(b'KUBELET_KUBEADM_ARGS="--network-plugin=cni"\n', remove={"--network-plugin"}) == (
        b'KUBELET_KUBEADM_ARGS=""\n'
    )
    assert edit(
        b"KUBELET_EXTRA_ARGS=--network-plugin=cni\n", remove={"--network-plugin"}, key="KUBELET_EXTRA_ARGS"
    ) == (b"KUBELET_EXTRA_ARGS=\n")


def test_append_to_missing_key_and_empty_file() -> None:
    assert edit(b"", append=[("--a", "b")]) == b'KUBELET_KUBEADM_ARGS="--a=b"\n'
    assert edit(b"# x", append=[("--a", "b")]) == b'# x\nKUBELET_KUBEADM_ARGS="--a=b"\n'
    assert edit(b"# x\r\n", append=[("--a", "b")]) == b'# x\r\nKUBELET_KUBEADM_ARGS="--a=b"\r\n'
    assert (
        edit(b'KUBELET_KUBEADM_ARGS=""', append=[("--a", "b"), ("--c", "d")])
        == b'KUBELET_KUBEADM_ARGS="--a=b --c=d"'
    )


def test_nothing_to_do_is_byte_identical() -> None:
    data = b'\xff\xfe junk comment?\n#\xe9\nKUBELET_KUBEADM_ARGS="--a=b"\n'
    data = b"#" + data
    assert edit(data, remove={"--zzz"}) == data


def test_value_that_needs_escaping() -> None:
    assert edit(b'KUBELET_KUBEADM_ARGS="--a=b"', set={"--a": 'x"$'}) == b'KUBELET_KUBEADM_ARGS="--a=x\\"\\$"'
    with pytest.raises(Refusal) as info:
        edit(b"KUBELET_KUBEADM_ARGS=--a=b", set={"--a": "x y"})
    assert info.value.file == P


@pytest.mark.parametrize(
    ("data", "line", "what"),
    [
        (b'A="x\n', 1, "unbalanced"),
        (b"# c\nA='x\n", 2, "unbalanced"),
        (b'A="x" # comment\n', 1, "after the closing quote"),
        (b"A=x\\\n y\n", 1, "continuation"),
        (b"A=1\nA=2\n", 2, "twice"),  # by default every variable must be unique
        (b"export A=1\n", 1, "KEY=VALUE"),
        (b"A=x'y\n", 1, "unquoted"),
    ],
)
def test_refusals(data: bytes, line: int, what: str) -> None:
    with pytest.raises(Refusal) as info:
        parse_env_file(P, data)
    assert (info.value.file, info.value.line) == (P, line)
    assert what in info.value.what
    assert info.value.hint


def test_stray_word_is_refused() -> None:
    env = parse_env_file(P, b'KUBELET_KUBEADM_ARGS="stray --a=b"\n')
    a = env.get(KEY)
    assert a is not None
    with pytest.raises(Refusal, match="neither a flag"):
        flag_uses(P, a)
