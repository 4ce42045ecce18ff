"""CRI over gRPC: vendored runtime.v1 api.proto, checked-in stubs (scripts/gen_cri.py), a thin client."""

from __future__ import annotations

from shimshift.adapters.cri.client import (
    CRI_DOCKERD_SOCKET,
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
