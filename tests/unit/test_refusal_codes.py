"""The refusals a user meets most carry codes of their own (docs/findings.md), not the generic ``refused``:
one input of each family, refused by the real rule, with the code scripts match on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shimshift.adapters.kube.kubeconfig import load_kubeconfig
from shimshift.core.dropin import parse_kubelet_dropin
from shimshift.core.errors import Refusal
from shimshift.core.flagfile import parse_env_file
from shimshift.core.fleet import parse_max_unavailable
from shimshift.core.kubelet_config import parse_kubelet_config
from shimshift.core.node_hygiene import check_node_file
from shimshift.core.versions import parse_kubelet_version

CASES: dict[str, tuple[Callable[[], Any], str]] = {
    "max-unavailable 0": (lambda: parse_max_unavailable("0", total=5), "option-invalid"),
    "max-unavailable 120%": (lambda: parse_max_unavailable("120%", total=5), "option-invalid"),
    "a version that is none": (lambda: parse_kubelet_version("latest"), "version-invalid"),
    "a release shimshift does not know": (lambda: parse_kubelet_version("1.99.0"), "version-unsupported"),
    "a flag file line that is no assignment": (
        lambda: parse_env_file("/var/lib/kubelet/kubeadm-flags.env", b"KUBELET_KUBEADM_ARGS\n"),
        "flag-file-unreadable",
    ),
    "a kubelet config that is not YAML": (
        lambda: parse_kubelet_config("/var/lib/kubelet/config.yaml", b"kind: [\n"),
        "kubelet-config-unreadable",
    ),
    "a unit line that is not Key=Value": (
        lambda: parse_kubelet_dropin("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", b"[Service]\nnope\n"),
        "unit-file-unreadable",
    ),
    "a control character in a node file": (
        lambda: check_node_file("/etc/default/kubelet", b"KUBELET_EXTRA_ARGS=\x07\n"),
        "node-file-control-character",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_refusal_names_its_rule(case: str) -> None:
    call, code = CASES[case]
    with pytest.raises(Refusal) as refused:
        call()
    assert refused.value.finding.code == code, refused.value


def test_a_missing_kubeconfig_is_kubeconfig_missing(tmp_path: Path) -> None:
    with pytest.raises(Refusal) as refused:
        load_kubeconfig(tmp_path / "nope", environ={}, home=tmp_path)
    assert refused.value.code == "kubeconfig-missing", refused.value
    (tmp_path / "config").write_text("current-context: nowhere\n")
    with pytest.raises(Refusal) as unknown:
        load_kubeconfig(tmp_path / "config", environ={}, home=tmp_path)
    assert unknown.value.code == "kubeconfig-context-unknown", unknown.value
