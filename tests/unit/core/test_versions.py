"""The rule table and version parsing.

Matrix: every minor 1.20-1.37 against the facts of docs/runtime-facts.md (flag status per flag, dockershim,
`remote` requirement, endpoint home and default, CRI API); cri-dockerd versions against its releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.core.errors import Refusal
from shimshift.core.versions import (
    CRI_DOCKERD_FACTS,
    DOCKERSHIM_ONLY_FLAGS,
    FLAG_RULES,
    MINOR_FACTS,
    CriDockerdVersion,
    CriSocketRecord,
    EndpointHome,
    FlagStatus,
    KubernetesVersion,
    cri_dockerd_facts,
    cri_dockerd_serves,
    cri_dockerd_version_word,
    facts_for,
    flag_status,
    is_cri_dockerd_endpoint,
    normalize_endpoint,
    parse_cgroup_driver,
    parse_cri_dockerd_version,
    parse_kubelet_version,
)
from shimshift.core.wellknown import CONTAINERD_ENDPOINT, DOCKERSHIM_ENDPOINT

from .nodes import MINORS

if TYPE_CHECKING:
    from collections.abc import Callable

A, D, R = FlagStatus.ACCEPTED, FlagStatus.DEPRECATED, FlagStatus.REMOVED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.23.17", KubernetesVersion(23, 17)),
        ("v1.23.17", KubernetesVersion(23, 17)),
        ("Kubernetes v1.24.17", KubernetesVersion(24, 17)),
        ("1.27", KubernetesVersion(27)),
        ("v1.37.0-rc.1", KubernetesVersion(37, 0)),
        (" 1.20.15+k3s1\n", KubernetesVersion(20, 15)),
    ],
)
def test_parse_kubelet_version(text: str, expected: KubernetesVersion) -> None:
    assert parse_kubelet_version(text) == expected


@pytest.mark.parametrize("text", ["1.19.16", "1.38.0", "0.23.1", "2.0", "garbage", "", "1", "v1.x.3"])
def test_unknown_kubelet_versions_are_refused(text: str) -> None:
    with pytest.raises(Refusal) as info:
        parse_kubelet_version(text)
    assert info.value.hint


def test_every_minor_has_exactly_one_facts_row() -> None:
    for minor in MINORS:
        assert sum(row.first <= minor <= row.last for row in MINOR_FACTS) == 1
    with pytest.raises(Refusal):
        facts_for(19)
    with pytest.raises(Refusal):
        facts_for(38)


# Expected status of each flag per minor, written out from docs/runtime-facts.md (not computed from the table).
EXPECTED_STATUS: dict[str, Callable[[int], FlagStatus]] = {
    "--container-runtime": lambda m: A if m < 24 else D if m < 27 else R,
    "--container-runtime-endpoint": lambda m: A if m < 27 else D,
    "--pod-infra-container-image": lambda m: A if m < 24 else D if m < 35 else R,
    "--network-plugin": lambda m: A if m < 21 else D if m < 24 else R,
    "--cni-bin-dir": lambda m: A if m < 21 else D if m < 24 else R,
    "--docker-endpoint": lambda m: A if m < 21 else D if m < 24 else R,
    "--experimental-dockershim-root-directory": lambda m: A if m < 21 else D if m < 24 else R,
    "--non-masquerade-cidr": lambda m: A if m < 24 else R,
    "--runtime-cgroups": lambda m: A,
    # Announced for 1.22 (#95935); the v1.23.17 binary rejects it (tests/e2e/core/test_real_binaries.py).
    "--redirect-container-streaming": lambda m: D if m < 23 else R,
    "--node-ip": lambda m: A,
}


@pytest.mark.parametrize("minor", MINORS)
def test_flag_status_per_minor(minor: int) -> None:
    for flag, expected in EXPECTED_STATUS.items():
        assert flag_status(flag, minor) is expected(minor), flag


@pytest.mark.parametrize("minor", MINORS)
def test_minor_facts(minor: int) -> None:
    f = facts_for(minor)
    assert f.has_dockershim is (minor <= 23)  # #97252
    assert f.needs_remote_runtime_flag is (minor <= 23)  # website#42442
    assert f.endpoint_home is (EndpointHome.FLAG if minor <= 26 else EndpointHome.FLAG_OR_CONFIG)  # #112136
    expected_default = DOCKERSHIM_ENDPOINT if minor <= 23 else None if minor <= 26 else CONTAINERD_ENDPOINT
    assert f.default_endpoint == expected_default
    assert f.cri_v1 is (minor >= 23)  # #106501
    assert f.cri_v1alpha2 is (minor <= 25)  # #110618
    assert f.cgroup_driver_from_cri is (minor >= 31)
    assert ("--container-runtime" in f.kubeadm_writes) is (minor <= 25)  # #112000
    assert ("--pod-infra-container-image" in f.kubeadm_writes) is (24 <= minor <= 34)  # #133778
    assert ("--network-plugin" in f.kubeadm_writes) is False
    record = (
        CriSocketRecord.ANNOTATION
        if minor <= 31
        else CriSocketRecord.ANNOTATION_OR_INSTANCE_CONFIG
        if minor <= 33
        else CriSocketRecord.INSTANCE_CONFIG
    )
    assert f.cri_socket_record is record
    assert f.source


def test_every_rule_cites_a_source() -> None:
    assert all(r.source for r in FLAG_RULES)
    assert all(r.source for r in MINOR_FACTS)
    assert all(r.source for r in CRI_DOCKERD_FACTS)
    assert len({r.flag for r in FLAG_RULES}) == len(FLAG_RULES)


def test_dockershim_only_flags_are_the_124_removal_list() -> None:
    # RN-1.24 (#106907) plus --non-masquerade-cidr (#107096).
    assert set(DOCKERSHIM_ONLY_FLAGS) == {
        "--experimental-dockershim-root-directory",
        "--docker-endpoint",
        "--image-pull-progress-deadline",
        "--network-plugin",
        "--cni-conf-dir",
        "--cni-bin-dir",
        "--cni-cache-dir",
        "--network-plugin-mtu",
        "--non-masquerade-cidr",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.3.16", (0, 3, 16)),
        ("v0.2.6", (0, 2, 6)),
        ("cri-dockerd 0.3.16 (71198646)", (0, 3, 16)),
        ("0.4.0-rc1", (0, 4, 0)),
    ],
)
def test_parse_cri_dockerd_version(text: str, expected: tuple[int, int, int]) -> None:
    v = parse_cri_dockerd_version(text)
    assert (v.major, v.minor, v.patch) == expected


@pytest.mark.parametrize("text", ["", "latest", "0.3", "cri-dockerd"])
def test_bad_cri_dockerd_version(text: str) -> None:
    with pytest.raises(Refusal):
        parse_cri_dockerd_version(text)


@pytest.mark.parametrize(
    ("output", "word"),
    [
        ("cri-dockerd 0.3.21 (abc1234)\n", "0.3.21"),
        ("time=... level=warning msg=\"no config\"\ncri-dockerd v0.4.0-rc1 (HEAD)\n", "0.4.0-rc1"),
        ("cri-dockerd: command not found\n", None),
        ("", None),
    ],
)
def test_the_version_word_of_cri_dockerd_s_output_is_what_the_parser_reads(output: str, word: str | None) -> None:
    assert cri_dockerd_version_word(output) == word
    if word is not None:
        assert str(parse_cri_dockerd_version(word)) == word.split("-")[0]


def test_cri_dockerd_facts_cover_every_release_once() -> None:
    for v in [
        (0, 2, 0),
        (0, 2, 3),
        (0, 2, 4),
        (0, 2, 5),
        (0, 2, 6),
        (0, 3, 0),
        (0, 3, 9),
        (0, 3, 10),
        (0, 3, 17),
        (0, 3, 21),
        (0, 3, 22),
        (0, 3, 25),
        (0, 4, 0),
        (0, 4, 1),
        (0, 4, 2),
        (0, 4, 3),
    ]:
        assert sum(r.first <= v <= r.last for r in CRI_DOCKERD_FACTS) == 1, v
    assert cri_dockerd_facts(CriDockerdVersion(0, 2, 4)).default_network_plugin == "kubenet"  # type: ignore[union-attr]
    assert cri_dockerd_facts(CriDockerdVersion(0, 3, 16)).default_pause_image == "registry.k8s.io/pause:3.9"  # type: ignore[union-attr]
    assert cri_dockerd_facts(CriDockerdVersion(1, 0, 0)) is None


@pytest.mark.parametrize(
    ("kubelet", "cri", "ok"),
    [
        (20, "0.2.6", True),
        (22, "0.3.21", True),
        (22, "0.3.22", False),
        (22, "0.4.2", False),
        (23, "0.3.25", True),
        (25, "0.2.6", True),
        (26, "0.2.6", False),
        (26, "0.3.0", True),
        (37, "0.4.3", True),
        (37, "9.0.0", True),
    ],
)
def test_cri_api_compatibility(kubelet: int, cri: str, ok: bool) -> None:
    assert cri_dockerd_serves(KubernetesVersion(kubelet), parse_cri_dockerd_version(cri)) is ok


def test_endpoints() -> None:
    assert normalize_endpoint("/var/run/cri-dockerd.sock") == "unix:///run/cri-dockerd.sock"
    for e in ("unix:///var/run/cri-dockerd.sock", "unix:///run/cri-dockerd.sock", "/run/cri-dockerd.sock"):
        assert is_cri_dockerd_endpoint(e)
    assert not is_cri_dockerd_endpoint("unix:///run/containerd/containerd.sock")
    assert normalize_endpoint("npipe:////./pipe/x") == "npipe:////./pipe/x"


def test_cgroup_driver() -> None:
    assert parse_cgroup_driver(" systemd\n") == "systemd"
    with pytest.raises(Refusal):
        parse_cgroup_driver("none")
