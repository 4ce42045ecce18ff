"""`--install-cri-dockerd`: a node without cri-dockerd is refused, then migrated once the tool installs
the given binary and its units (nothing downloaded). The node gets the lab's packaged cri-dockerd back
afterwards."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.lab import cluster
from shimshift.lab.model import CriDockerdMode

from .helpers import assert_on_cri_dockerd, back_to_dockershim, shimshift

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e
DRAIN_FLAGS = ["--force", "--delete-emptydir-data"]
INSTALLED = ["/etc/systemd/system/cri-docker.service", "/etc/systemd/system/cri-docker.socket", "/usr/bin/cri-dockerd"]


def test_install_then_migrate_a_node_without_cri_dockerd(lab: LabInfo, tmp_path: Path) -> None:
    builds = sorted(glob.glob("/var/cache/shimshift/bin/cri-dockerd-*/cri-dockerd"))
    assert builds, "no cri-dockerd build under /var/cache/shimshift/bin (shimshift lab up makes it)"
    node = lab.workers[1].name
    journal = tmp_path / "journal.sqlite"
    cluster.set_cri_dockerd(node, CriDockerdMode.ABSENT)
    try:
        refused = shimshift(lab, journal, "migrate", node, *DRAIN_FLAGS)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"{node}: refused" in refused.stderr and "not installed" in refused.stderr
        installed = shimshift(lab, journal, "migrate", node, *DRAIN_FLAGS, "--install-cri-dockerd", builds[-1])
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert_on_cri_dockerd(lab, node)
        on_node = lab.exec(node, ["sha256sum", "/usr/bin/cri-dockerd"]).stdout.split()[0]
        assert on_node == hashlib.sha256(Path(builds[-1]).read_bytes()).hexdigest()
        enabled = lab.exec(node, ["systemctl", "is-enabled", "cri-docker.socket", "cri-docker.service"]).stdout
        assert enabled.split() == ["enabled", "enabled"], enabled
        unit = lab.exec(node, ["systemctl", "show", "--property", "FragmentPath", "--value", "cri-docker.service"])
        assert unit.stdout.strip() == "/etc/systemd/system/cri-docker.service"
    finally:
        back_to_dockershim(lab, journal, node)
        lab.exec(node, ["systemctl", "disable", "--now", "cri-docker.socket", "cri-docker.service"], check=False)
        lab.exec(node, ["rm", "-f", *INSTALLED], check=False)
        cluster.set_cri_dockerd(node, CriDockerdMode.RUNNING)
