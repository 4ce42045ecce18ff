"""`lab down`: remove everything the lab made in the host's Docker and its files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shimshift.lab.docker import docker, labelled
from shimshift.lab.lock import LabLock
from shimshift.lab.model import (
    DEFAULT_DIRECTORY,
    LABEL,
    lab_files,
)
from shimshift.lab.status import load

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


@dataclass
class DownReport:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def down(
    *,
    directory: Path = DEFAULT_DIRECTORY,
    remove_images: bool = True,
    progress: Progress | None = None,
    lock_timeout: float = 1800,
) -> DownReport:
    """Remove every container, volume and network labelled shimshift.lab=1, the lab's files, and
    (unless remove_images is False) the node image and any image labelled shimshift.lab=1.

    Idempotent: a second call finds nothing and removes nothing. The build cache under
    /var/cache/shimshift is never touched, so a later `up` re-imports the node image from it.
    Holds the lab lock exclusively, waiting up to lock_timeout for it.
    """
    with LabLock(directory, timeout=lock_timeout, on_wait=progress):
        return down_locked(directory=directory, remove_images=remove_images, progress=progress)


def down_locked(*, directory: Path, remove_images: bool, progress: Progress | None) -> DownReport:
    say = progress or _noop
    report = DownReport()
    report.containers = labelled("ps", "-a")
    if report.containers:
        say(f"removing containers: {', '.join(report.containers)}")
        docker("rm", "--force", "--volumes", *report.containers, timeout=300)
    report.volumes = labelled("volume ls")
    if report.volumes:
        say(f"removing volumes: {', '.join(report.volumes)}")
        docker("volume", "rm", "--force", *report.volumes)
    report.networks = labelled("network ls")
    if report.networks:
        say(f"removing networks: {', '.join(report.networks)}")
        docker("network", "rm", *report.networks)
    if remove_images:
        report.images = _lab_images(directory)
        if report.images:
            say(f"removing images: {', '.join(report.images)}")
            docker("image", "rm", "--force", *report.images)
    # Former builds of the node image, untagged by a rebuild while a lab still used them
    # (build-node-image.sh labels every build io.shimshift.inputs). Still in use elsewhere: kept.
    stale = docker(
        "images", "--quiet", "--filter", "dangling=true", "--filter", "label=io.shimshift.inputs"
    ).stdout.split()
    for image_id in dict.fromkeys(stale):
        if docker("image", "rm", image_id, check=False).returncode == 0:
            report.images.append(image_id)
    files = lab_files(directory)
    for p in [*files.values(), files["ssh_key"].with_suffix(".pub")]:
        if p.exists():
            p.unlink()
            report.files.append(str(p))
    if (directory / "logs").is_dir():
        shutil.rmtree(directory / "logs")
        report.files.append(str(directory / "logs"))
    if directory.exists() and not any(directory.iterdir()):
        directory.rmdir()
    return report


def _lab_images(directory: Path) -> list[str]:
    """Images the lab made: labelled ones, the node image named in lab.json, and shimshift/node:*."""
    refs = set(
        docker(
            "images", "--filter", f"label={LABEL}=1", "--format", "{{.Repository}}:{{.Tag}}"
        ).stdout.split()
    )
    refs |= set(docker("images", "shimshift/node", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    info = load(directory)
    if info and info.node_image and docker("image", "inspect", info.node_image, check=False).returncode == 0:
        refs.add(info.node_image)
    return sorted(r for r in refs if not r.endswith(":<none>"))


