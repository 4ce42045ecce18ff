"""Node files shimshift refuses before parsing, on a real node: `migrate` refuses
the node at preflight and writes nothing (no file, no backup, no drop-in, not cordoned).

Matrix: NUL bytes in kubeadm-flags.env (the issue's case), a 2 MiB /etc/default/kubelet (read only up
to the limit with head -c on the node). The file is put back afterwards; the node must be as found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .helpers import node_json, shimshift

if TYPE_CHECKING:
    from pathlib import Path

    from shimshift.lab.model import LabInfo
    from shimshift.lab.state import NodeStateGuard

pytestmark = pytest.mark.e2e

FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
DEFAULT = "/etc/default/kubelet"
# What to do to the file (sh, "$1" is the path), and what the refusal says.
CASES = {
    "nul": (FLAGS, """sed -i 's/--network-plugin=cni/&\\x00\\x00/' "$1" """, "control character NUL"),
    "huge": (DEFAULT, """yes '# padding' | head -c 2097152 >> "$1" """, "larger than 1 MiB"),
}
# Every place shimshift writes on a node, and nothing the kubelet manages by itself: units and drop-ins
# (/etc/systemd/system, two levels), /etc/default/kubelet, and the kubelet's files with their backups beside
# them, all directly in /var/lib/kubelet. Its subfolders (pods/, plugins/, ...) are the kubelet's own: it
# removes a pod's folder whenever it gets to it, so listing them compared the kubelet's clock, not the tool.
LISTING = ["sh", "-c", "{ find /etc/systemd/system /etc/default -maxdepth 2; "
           "find /var/lib/kubelet -maxdepth 1 -type f; } | sort"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_node_file_changes_nothing(
    lab: LabInfo, node_state: NodeStateGuard, tmp_path: Path, case: str
) -> None:
    path, damage, expected = CASES[case]
    node = lab.workers[-1].name
    node_state.capture(node)
    saved = lab.exec(node, ["cat", path])
    assert saved.returncode == 0 or case == "huge", saved.stderr
    lab.exec(node, ["sh", "-c", f"touch \"$1\"; {damage}", "sh", path], check=True)
    try:
        damaged = lab.exec(node, ["sha256sum", path], check=True).stdout
        listing = lab.exec(node, LISTING, check=True).stdout
        result = shimshift(lab, tmp_path / "journal.sqlite", "migrate", node, "--report-dir", str(tmp_path / "r"))
        assert result.returncode == 1, result.stdout + result.stderr
        assert expected in result.stdout + result.stderr
        assert f"{path}" in result.stdout + result.stderr
        assert lab.exec(node, ["sha256sum", path], check=True).stdout == damaged
        assert lab.exec(node, LISTING, check=True).stdout == listing  # no backup, no drop-in, nothing new
        assert not node_json(lab, node)["spec"].get("unschedulable", False)
    finally:
        if saved.returncode == 0:
            lab.exec(node, ["sh", "-c", 'cat > "$1"', "sh", path], input=saved.stdout, check=True)
        else:
            lab.exec(node, ["rm", "-f", path], check=True)
    node_state.assert_as_found(node)
