"""Version skew: which kubelets may run beside which kube-apiserver, and what `kubeadm upgrade apply`
accepts. Only minors are compared, as kubeadm and the policy do.

Sources:

- The Kubernetes version skew policy, "Supported version skew" (kubernetes/website
  content/en/releases/version-skew-policy.md): a kubelet is never newer than kube-apiserver; it may
  trail it by three minors, by two when the kubelet is older than 1.25.
- kubeadm's own check, ``detectTooOldKubelets`` in cmd/kubeadm/app/phases/upgrade/policy.go: the apply
  fails when ``target.Minor > kubelet.Minor + MaximumAllowedMinorVersionKubeletSkew`` for any node's
  kubelet, control-plane nodes included. The constant is the target kubeadm's: 1 up to v1.28.15, 3 from
  v1.29.0 (kubernetes/kubernetes#120825). The error is skippable only with ``--force``, which kubeadm's
  own skew CI passes (kubernetes/kubeadm#2924).
- The same policy.go, ``MaximumAllowedMinorVersionUpgradeSkew = 1`` at every tag 1.21-1.37: the control
  plane moves one minor per ``kubeadm upgrade apply``.
- kubeadm's upgrade guide, "Upgrading kubeadm clusters" (kubernetes/website
  content/en/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade.md): upgrade the control plane one
  minor, then every node (drain, ``kubeadm upgrade node``, kubelet, uncordon), then the next minor. So
  at each apply no kubelet trails the control plane by more than one minor: ``--skew lockstep``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: kubeadm's MaximumAllowedMinorVersionUpgradeSkew, the same at every tag 1.21-1.37.
CONTROL_PLANE_MINORS_PER_APPLY = 1
#: The first kubeadm whose MaximumAllowedMinorVersionKubeletSkew is 3 (kubernetes/kubernetes#120825).
KUBEADM_WIDE_KUBELET_SKEW_FROM = 29
#: kubeadm's guide: every node follows the control plane before its next minor.
LOCKSTEP_KUBELET_SKEW = 1
#: The first kubelet the skew policy lets trail kube-apiserver by three minors instead of two.
POLICY_WIDE_KUBELET_SKEW_FROM = 25


class SkewRules(enum.StrEnum):
    """``--skew``: which rules bound how far a kubelet may trail during the journey."""

    KUBEADM = "kubeadm"  # kubeadm's apply check and the policy: no `--force` needed
    KUBERNETES = "kubernetes"  # the policy alone: applies that kubeadm refuses need `--force`
    LOCKSTEP = "lockstep"  # kubeadm's guide: every node drained at every minor, kubelets never trailing


def kubeadm_kubelet_skew(target_minor: int) -> int:
    """How many minors kubeadm 1.<target_minor>'s ``upgrade apply`` lets a kubelet trail the target."""
    return 3 if target_minor >= KUBEADM_WIDE_KUBELET_SKEW_FROM else 1


def policy_kubelet_skew(kubelet_minor: int) -> int:
    """How many minors the skew policy lets kubelet 1.<kubelet_minor> trail kube-apiserver."""
    return 3 if kubelet_minor >= POLICY_WIDE_KUBELET_SKEW_FROM else 2


def kubelet_problem(*, kubelet_minor: int, apiserver_minor: int) -> str | None:
    """Why a kubelet may not run beside this kube-apiserver under the skew policy (None: it may)."""
    if kubelet_minor > apiserver_minor:
        return f"kubelet 1.{kubelet_minor} is newer than kube-apiserver 1.{apiserver_minor}"
    allowed = policy_kubelet_skew(kubelet_minor)
    if apiserver_minor - kubelet_minor > allowed:
        return (
            f"kubelet 1.{kubelet_minor} trails kube-apiserver 1.{apiserver_minor} by more than "
            f"{allowed} minors (version skew policy)"
        )
    return None


def kube_proxy_problem(*, kube_proxy_minor: int, kubelet_minor: int) -> str | None:
    """Why kube-proxy may not run beside this kubelet (None: it may). The skew policy lets kube-proxy be
    three minors newer or older than the kubelet on its node, two when kube-proxy is older than 1.25.
    kubeadm upgrades the kube-proxy DaemonSet with the control plane, so kube-proxy runs its release."""
    allowed = 3 if kube_proxy_minor >= POLICY_WIDE_KUBELET_SKEW_FROM else 2
    if abs(kube_proxy_minor - kubelet_minor) > allowed:
        return (
            f"kube-proxy 1.{kube_proxy_minor} is more than {allowed} minors away from kubelet 1.{kubelet_minor} "
            "(version skew policy)"
        )
    return None


def apply_problem(*, kubelet_minor: int, target_minor: int, rules: SkewRules) -> str | None:
    """Why ``kubeadm upgrade apply`` to 1.<target_minor> may not run while this kubelet is in the cluster
    (None: it may). Under every rule set the kubelet must stay within the policy once the API server is
    at the target; under kubeadm's, also within kubeadm's own check; under lockstep, within one minor of
    the target (never looser than kubeadm's check, so lockstep never needs ``--force``)."""
    if rules is SkewRules.LOCKSTEP and target_minor - kubelet_minor > LOCKSTEP_KUBELET_SKEW:
        return (
            f"kubelet 1.{kubelet_minor} would trail kube-apiserver 1.{target_minor} by more than "
            f"{LOCKSTEP_KUBELET_SKEW} minor (--skew lockstep: kubeadm's guide upgrades every node at every minor)"
        )
    if rules is SkewRules.KUBEADM:
        allowed = kubeadm_kubelet_skew(target_minor)
        if target_minor - kubelet_minor > allowed:
            return (
                f"kubeadm 1.{target_minor} refuses kubelet 1.{kubelet_minor}: more than {allowed} "
                f"minor{'s' if allowed > 1 else ''} older than the target (policy.go; skippable only with --force)"
            )
    return kubelet_problem(kubelet_minor=kubelet_minor, apiserver_minor=target_minor)


def apply_needs_force(kubelets: Mapping[str, int], *, target_minor: int) -> bool:
    """Whether kubeadm's own check refuses this apply (true only on a ``--skew kubernetes`` journey)."""
    return any(
        apply_problem(kubelet_minor=minor, target_minor=target_minor, rules=SkewRules.KUBEADM) is not None
        for minor in kubelets.values()
    )
