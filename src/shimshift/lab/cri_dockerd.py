"""cri-dockerd on a lab node: left running, stopped or absent, and what it is now."""

from __future__ import annotations

from shimshift.lab.docker import node_exec, wait_until, write_node_file
from shimshift.lab.model import (
    CRI_DOCKERD_SOCKET,
    CriDockerdMode,
)

# Where `--cri-dockerd absent` keeps what it removed, so `set_cri_dockerd` can put it back.
CRI_DOCKERD_BACKUP = "/var/lib/shimshift-lab/cri-dockerd-backup"


CRI_DOCKERD_UNITS = ("cri-docker.socket", "cri-docker.service")


# A lab at 1.24 or later runs cri-dockerd from `lab up` on, with the settings render.cri_dockerd_dropin gives.
CRI_DOCKERD_DROPIN = "/etc/systemd/system/cri-docker.service.d/10-shimshift-lab.conf"


def set_cri_dockerd(node: str, mode: CriDockerdMode) -> None:
    """Leave cri-dockerd running (packaged units, packaged defaults), stopped, or absent on a node.

    The lab adds no drop-in: moving the kubelet's dockershim flags (pause image, CNI dirs) into a
    cri-dockerd drop-in is the migration's job. cri-dockerd's own defaults are enough to
    serve CRI on /run/cri-dockerd.sock; they are wrong only for creating sandboxes (its default pause
    image is newer than the loaded pause:3.6; docs/runtime-facts.md#cri-dockerd).
    `absent` moves the binary and units to CRI_DOCKERD_BACKUP, and any other mode puts them back.
    """
    _restore_cri_dockerd(node)
    if mode is CriDockerdMode.RUNNING:
        node_exec(node, ["systemctl", "enable", "--now", *CRI_DOCKERD_UNITS])

        def probe() -> str | None:
            active = node_exec(
                node, ["systemctl", "is-active", "cri-docker.service"], check=False
            ).stdout.strip()
            sock = node_exec(node, ["test", "-S", CRI_DOCKERD_SOCKET], check=False).returncode == 0
            return None if active == "active" and sock else f"{node}: cri-docker is {active}, socket={sock}"

        wait_until(f"cri-dockerd on {node}", probe, timeout=60)
        return
    node_exec(node, ["systemctl", "disable", "--now", *CRI_DOCKERD_UNITS], check=False)
    if mode is CriDockerdMode.ABSENT:
        paths = _cri_dockerd_paths(node)
        node_exec(node, ["mkdir", "-p", CRI_DOCKERD_BACKUP])
        manifest = "\n".join(paths) + "\n"
        write_node_file(node, f"{CRI_DOCKERD_BACKUP}/MANIFEST", manifest)
        for p in paths:
            node_exec(node, ["cp", "-a", "--parents", p, CRI_DOCKERD_BACKUP])
            node_exec(node, ["rm", "-f", p])
        node_exec(node, ["systemctl", "daemon-reload"])
        node_exec(node, ["systemctl", "reset-failed"], check=False)


def _cri_dockerd_paths(node: str) -> list[str]:
    paths: list[str] = []
    for unit in CRI_DOCKERD_UNITS:
        frag = node_exec(node, ["systemctl", "show", "-P", "FragmentPath", unit]).stdout.strip()
        if frag:
            paths.append(frag)
    binary = node_exec(node, ["sh", "-c", "command -v cri-dockerd"], check=False).stdout.strip()
    if binary:
        paths.append(binary)
    return paths


def _restore_cri_dockerd(node: str) -> None:
    proc = node_exec(node, ["cat", f"{CRI_DOCKERD_BACKUP}/MANIFEST"], check=False)
    if proc.returncode != 0:
        return
    for p in proc.stdout.split():
        node_exec(node, ["cp", "-a", f"{CRI_DOCKERD_BACKUP}{p}", p])
    node_exec(node, ["rm", "-rf", CRI_DOCKERD_BACKUP])
    node_exec(node, ["systemctl", "daemon-reload"])


def cri_dockerd_state(node: str) -> CriDockerdMode:
    """What cri-dockerd is on a node now: absent (no binary), running (service active) or stopped."""
    if node_exec(node, ["sh", "-c", "command -v cri-dockerd"], check=False).returncode != 0:
        return CriDockerdMode.ABSENT
    active = node_exec(node, ["systemctl", "is-active", "cri-docker.service"], check=False).stdout.strip()
    return CriDockerdMode.RUNNING if active == "active" else CriDockerdMode.STOPPED


