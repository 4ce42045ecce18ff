"""A worker migrated, verified and rolled back by a non-root SSH user whose sudoers file holds exactly
the rule `shimshift sudoers` prints.

The user is made on the node for the test (group docker for the CRI socket forward, root's SSH key),
and sudo itself is installed from Debian's package when the node image lacks it. Before the sudoers
file exists, shimshift must refuse with that same rule in its hint. Afterwards the user, the sudoers
file and (if we installed it) sudo are removed, and the node must be exactly as found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .helpers import assert_on_cri_dockerd, assert_on_dockershim, back_to_dockershim, cli_env, shimshift

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo
    from shimshift.lab.state import NodeStateGuard

pytestmark = pytest.mark.e2e

USER = "shimshift-ops"
SUDOERS = "/etc/sudoers.d/shimshift-test"
BACKUP_DIRS = ("/etc/systemd/system", "/var/lib/kubelet", "/etc/default")
DEBS = Path(os.environ.get("SHIMSHIFT_CACHE", "/var/cache/shimshift")) / "debs"


def sudo_deb() -> Path:
    """Debian's sudo package for bookworm (the node image's release), fetched once with apt like the
    rest of the lab's packages."""
    found = sorted(DEBS.glob("sudo_*.deb"))
    if not found:
        DEBS.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            ["apt-get", "download", "sudo"], cwd=DEBS, capture_output=True, text=True, timeout=300, check=False
        )
        found = sorted(DEBS.glob("sudo_*.deb"))
        if not found:
            pytest.fail(f"cannot fetch Debian's sudo package into {DEBS}: {fetched.stderr.strip()}", pytrace=False)
    return found[-1]


def on_node(lab: LabInfo, node: str, *argv: str, data: str | None = None) -> str:
    result = lab.exec(node, list(argv), input=data, check=False)
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result.stdout


def backups(lab: LabInfo, node: str) -> list[str]:
    found = lab.exec(node, ["find", *BACKUP_DIRS, "-maxdepth", "2", "-name", "*.shimshift-*.bak"])
    return found.stdout.split()


def sudoers_from_cli(lab: LabInfo, node: str) -> str:
    argv = [sys.executable, "-m", "shimshift.cli.main", "sudoers", node, "--ssh-user", USER]
    argv += ["--ssh-config", str(lab.ssh_config)]
    result = subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_non_root_user_with_just_the_printed_sudoers_rule_migrates_a_node(
    lab: LabInfo, node_state: NodeStateGuard, tmp_path: Path
) -> None:
    node = lab.workers[-1].name
    journal = tmp_path / "journal.sqlite"
    node_state.capture(node)
    backups_before = backups(lab, node)
    had_sudo = lab.exec(node, ["sh", "-c", "command -v sudo"]).returncode == 0
    try:
        if not had_sudo:
            deb = sudo_deb()
            # Through docker exec, not docker cp: /tmp is a tmpfs in the node container, which docker cp
            # writes underneath (the file would not be seen).
            copied = subprocess.run(
                ["docker", "exec", "-i", node, "sh", "-c", 'cat > "$1"', "sh", "/tmp/shimshift-sudo.deb"],
                input=deb.read_bytes(),
                capture_output=True,
                timeout=60,
            )
            assert copied.returncode == 0, copied.stderr
            on_node(lab, node, "dpkg", "-i", "/tmp/shimshift-sudo.deb")
        on_node(lab, node, "useradd", "--create-home", "--shell", "/bin/sh", "--groups", "docker", USER)
        home = f"/home/{USER}"
        on_node(lab, node, "install", "-d", "-m", "700", "-o", USER, "-g", USER, f"{home}/.ssh")
        on_node(
            lab, node, "install", "-m", "600", "-o", USER, "-g", USER, "/root/.ssh/authorized_keys",
            f"{home}/.ssh/authorized_keys",
        )

        printed = sudoers_from_cli(lab, node)
        rule = printed.strip().splitlines()[-1]
        assert rule.startswith(f"{USER} ALL=(root) NOPASSWD: /")
        assert "not found" not in printed, printed  # every program, cri-dockerd included, is on the node

        # Without the rule: refused, and the refusal carries the very rule to install.
        refused = shimshift(lab, journal, "plan", node, "--ssh-user", USER)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"sudo asks user {USER} for a password" in refused.stdout + refused.stderr
        assert rule in refused.stdout + refused.stderr

        on_node(lab, node, "sh", "-c", 'cat > "$1" && chmod 0440 "$1"', "sh", SUDOERS, data=printed)
        on_node(lab, node, "visudo", "-c", "-f", SUDOERS)

        migrated = shimshift(
            lab, journal, "migrate", node, "--ssh-user", USER, "--force", "--delete-emptydir-data",
            "--report-dir", str(tmp_path / "reports"),
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert_on_cri_dockerd(lab, node)
        verified = shimshift(lab, journal, "verify", node, "--ssh-user", USER)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        back = shimshift(lab, journal, "rollback", node, "--ssh-user", USER)
        assert back.returncode == 0, back.stdout + back.stderr
        assert_on_dockershim(lab, node)
    finally:
        back_to_dockershim(lab, journal, node)  # as root, if the test stopped half way
        lab.exec(node, ["rm", "-f", SUDOERS, "/tmp/shimshift-sudo.deb"])
        lab.exec(node, ["userdel", "--remove", USER])
        if not had_sudo:
            # Debian's sudo refuses its own removal when root has no password, unless forced.
            on_node(lab, node, "env", "SUDO_FORCE_REMOVE=yes", "dpkg", "--purge", "sudo")
        made = sorted(set(backups(lab, node)) - set(backups_before))
        if made:  # the backups this migration and its rollback wrote beside the files they replaced
            lab.exec(node, ["rm", "-f", "--", *made])
    node_state.assert_as_found(node)
    assert lab.exec(node, ["id", USER]).returncode != 0
    assert (lab.exec(node, ["sh", "-c", "command -v sudo"]).returncode == 0) == had_sudo
