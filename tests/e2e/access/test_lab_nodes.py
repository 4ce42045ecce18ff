"""Node access and CRI over the lab's own SSH: every lab node, with the lab's ssh_config/known_hosts.

Matrix (per lab node, all nodes at once through one NodePool):
- SSH login with strict host-key checking against the lab's known_hosts;
- read /var/lib/kubelet/kubeadm-flags.env (the file the migration rewrites);
- forward /var/run/cri-dockerd.sock through the SSH connection and call RuntimeService.Version.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shimshift.adapters.cri import CRI_DOCKERD_SOCKET, connect_cri
from shimshift.adapters.node_access import NodeAccess, NodePool
from shimshift.adapters.ssh import SSHNodeAccess

pytestmark = pytest.mark.e2e


async def test_every_lab_node_over_ssh(lab: Any) -> None:
    async def connect(node: str) -> NodeAccess:
        return await SSHNodeAccess.connect(node, ssh_config=lab.ssh_config, known_hosts=lab.known_hosts)

    pool = NodePool(connect, max_concurrency=4)

    async def check(node: str) -> tuple[bytes | None, str, str]:
        access = await pool.get(node)
        flags = await access.read_file("/var/lib/kubelet/kubeadm-flags.env")
        async with connect_cri(access, CRI_DOCKERD_SOCKET) as cri:
            version = await cri.version()
        return flags, version.runtime_name, version.runtime_api_version

    try:
        names = [node.name for node in lab.nodes]
        assert names, "the lab has no nodes"
        results = await asyncio.gather(*(check(name) for name in names))
    finally:
        await pool.close()
    for name, (flags, runtime, api) in zip(names, results, strict=True):
        assert flags is not None, f"{name}: no kubeadm-flags.env"
        assert b"KUBELET_KUBEADM_ARGS=" in flags, f"{name}: {flags!r}"
        assert (runtime, api) == ("docker", "v1"), name
