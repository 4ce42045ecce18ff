"""CRI over gRPC: vendored runtime.v1 api.proto, checked-in stubs (scripts/gen_cri.py), a thin client."""

from __future__ import annotations

from shimshift.adapters.cri.client import (
    ContainerInfo,
    CriClient,
    CriError,
    CriStatus,
    CriUnavailable,
    CriVersion,
    PodSandboxInfo,
    RuntimeCondition,
    connect_cri,
)
from shimshift.core.wellknown import CRI_DOCKERD_SOCKET

__all__ = [
    "CRI_DOCKERD_SOCKET",
    "ContainerInfo",
    "CriClient",
    "CriError",
    "CriStatus",
    "CriUnavailable",
    "CriVersion",
    "PodSandboxInfo",
    "RuntimeCondition",
    "connect_cri",
]
