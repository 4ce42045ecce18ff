"""The skew rules (core/journey/skew.py): kubeadm's apply check by target minor, the policy by kubelet minor."""

from __future__ import annotations

import pytest

from shimshift.core.journey.skew import (
    SkewRules,
    apply_needs_force,
    apply_problem,
    kube_proxy_problem,
    kubeadm_kubelet_skew,
    kubelet_problem,
    policy_kubelet_skew,
)


def test_kubeadm_accepts_one_minor_before_1_29_and_three_from_it() -> None:
    assert [kubeadm_kubelet_skew(minor) for minor in (24, 28, 29, 37)] == [1, 1, 3, 3]
    assert apply_problem(kubelet_minor=26, target_minor=28, rules=SkewRules.KUBEADM) is not None
    assert apply_problem(kubelet_minor=27, target_minor=28, rules=SkewRules.KUBEADM) is None
    assert apply_problem(kubelet_minor=26, target_minor=29, rules=SkewRules.KUBEADM) is None
    assert apply_problem(kubelet_minor=25, target_minor=29, rules=SkewRules.KUBEADM) is not None


def test_the_policy_lets_kubelets_before_1_25_trail_by_two_and_later_ones_by_three() -> None:
    assert [policy_kubelet_skew(minor) for minor in (23, 24, 25, 37)] == [2, 2, 3, 3]
    assert kubelet_problem(kubelet_minor=23, apiserver_minor=25) is None
    assert kubelet_problem(kubelet_minor=23, apiserver_minor=26) is not None
    assert kubelet_problem(kubelet_minor=25, apiserver_minor=28) is None
    assert kubelet_problem(kubelet_minor=25, apiserver_minor=29) is not None


@pytest.mark.parametrize("rules", list(SkewRules))
def test_no_kubelet_may_be_newer_than_the_api_server(rules: SkewRules) -> None:
    assert "newer" in (kubelet_problem(kubelet_minor=30, apiserver_minor=29) or "")
    assert apply_problem(kubelet_minor=30, target_minor=29, rules=rules) is not None


def test_the_policy_alone_accepts_what_kubeadm_refuses_and_says_force_is_needed() -> None:
    assert apply_problem(kubelet_minor=23, target_minor=25, rules=SkewRules.KUBERNETES) is None
    assert apply_problem(kubelet_minor=23, target_minor=25, rules=SkewRules.KUBEADM) is not None
    assert apply_needs_force({"w1": 23}, target_minor=25)
    assert not apply_needs_force({"w1": 24}, target_minor=25)


def test_kube_proxy_may_be_three_minors_from_its_kubelet_or_two_before_1_25() -> None:
    assert kube_proxy_problem(kube_proxy_minor=28, kubelet_minor=25) is None
    assert kube_proxy_problem(kube_proxy_minor=29, kubelet_minor=25) is not None
    assert kube_proxy_problem(kube_proxy_minor=24, kubelet_minor=22) is None
    assert kube_proxy_problem(kube_proxy_minor=24, kubelet_minor=21) is not None
