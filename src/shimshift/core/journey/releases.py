"""Which patch of each minor the journey stops at on its way: the newest one published.

Read on 2026-12-07 from the Go module proxy (``go mod download -json k8s.io/kubernetes@v1.NN.P``; the
tags are the kubernetes/kubernetes release tags). The target's own minor uses the patch given in
``--to``. A newer patch published later is only missed, never wrong: kubeadm upgrades between any
patches of adjacent minors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shimshift.core.errors import Refusal
from shimshift.core.versions import VERSION_UNSUPPORTED, KubernetesVersion

if TYPE_CHECKING:
    from collections.abc import Mapping

#: minor -> the newest patch published for it.
NEWEST_PATCH: Mapping[int, int] = {
    21: 14, 22: 17, 23: 17, 24: 17, 25: 16, 26: 15, 27: 16, 28: 15, 29: 15,
    30: 14, 31: 14, 32: 13, 33: 13, 34: 12, 35: 8, 36: 5, 37: 2,
}  # fmt: skip

#: The oldest control plane the journey starts from: the first minor whose kubeadm rules were read.
FIRST_JOURNEY_MINOR = min(NEWEST_PATCH)


def stop_release(minor: int, *, target: KubernetesVersion) -> KubernetesVersion:
    """The release the control plane stops at for ``minor``: ``target`` itself on its own minor."""
    if minor == target.minor:
        return target
    if minor not in NEWEST_PATCH:
        raise Refusal(
            f"shimshift knows no release of 1.{minor}",
            hint=f"the journey covers 1.{min(NEWEST_PATCH)} to 1.{max(NEWEST_PATCH)}",
            code=VERSION_UNSUPPORTED,
        )
    return KubernetesVersion(minor, NEWEST_PATCH[minor])
