"""`shimshift sudoers` without a node: the declared programs, by their paths on this machine.

(With a node it looks the paths up over SSH: tests/e2e/migrate/test_sudo_user.py.)
"""

from __future__ import annotations

from click.testing import CliRunner

from shimshift.adapters.node_access import find_programs_here
from shimshift.cli.main import main
from shimshift.core.node_commands import PROGRAMS


def test_sudoers_here_lists_every_found_program_by_full_path() -> None:
    result = CliRunner().invoke(main, ["sudoers", "--user", "ops"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    found = find_programs_here(PROGRAMS)
    assert lines[-1] == "ops ALL=(root) NOPASSWD: " + ", ".join(p for p in found.values() if p)
    assert all(line.startswith("#") for line in lines[:-1])
    for name in [name for name, path in found.items() if path is None]:  # cri-dockerd, on this machine
        assert any(line.startswith("# not found") and name in line for line in lines)
