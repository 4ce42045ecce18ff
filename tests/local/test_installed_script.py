"""What the installed `shimshift` console script prints, run as a user runs it (a process, not click's runner).

The wheel goes into a fresh venv with the newest dependencies its ranges allow (tests/wheel_fixture.py), as in
a user's environment: library warnings show up there first (cryptography 51 deprecated DSA, which asyncssh
touches at import). A second venv holds the wheel on exactly requirements.lock, as scripts/setup.sh installs.

Matrix: `shimshift --version` in both venvs (one line on stdout, nothing on stderr); the lock satisfies the
wheel's ranges (`pip check` in the locked venv); `--help` of every command and
subcommand (nothing on stderr); `shimshift audit` against a kubeconfig whose API server is a loopback port
nobody listens on (exit 2, nothing on stdout, exactly one line on stderr naming the server and what to check,
no traceback); a usage error (click's usage text only, no library warning).
"""

from __future__ import annotations

import socket
from pathlib import Path

import click
import pytest
import yaml

from shimshift import __version__
from shimshift.cli.main import main
from shimshift.cli.options import EXIT_REFUSED
from tests.wheel_fixture import InstalledWheel, installed_from_lock, installed_wheel


@pytest.fixture(scope="module")
def wheel() -> InstalledWheel:
    return installed_wheel()


@pytest.fixture(scope="module")
def locked() -> InstalledWheel:
    return installed_from_lock()


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def _free_loopback_port() -> int:
    # Bound then closed: nothing listens there when the command connects (a refused connection, at once).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("venv", ["wheel", "locked"])
def test_version_is_one_line_and_stderr_is_empty(venv: str, request: pytest.FixtureRequest) -> None:
    installed: InstalledWheel = request.getfixturevalue(venv)
    result = installed.run("shimshift", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [f"shimshift, version {__version__}"]


def test_the_lock_meets_the_wheels_ranges(locked: InstalledWheel) -> None:
    # pip is in the lock (scripts/setup.sh upgrades the venv's own pip from it), so the locked venv has one.
    result = locked.run(str(locked.bin / "python"), "-m", "pip", "check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", _command_paths(main), ids=lambda path: " ".join(path) or "shimshift")
def test_help_prints_nothing_on_stderr(wheel: InstalledWheel, path: tuple[str, ...]) -> None:
    result = wheel.run("shimshift", *path, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"Usage: shimshift {' '.join(path)}".rstrip())


def test_unreachable_api_server_is_one_line_on_stderr(wheel: InstalledWheel, tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{_free_loopback_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "someone", "user": {"token": "not-used"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "someone"}}],
                "current-context": "gone",
            }
        )
    )
    state = tmp_path / "state"
    result = wheel.run("shimshift", "--state-dir", str(state), "audit", "--kubeconfig", str(kubeconfig))
    assert result.returncode == EXIT_REFUSED, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith(f"shimshift: the API server {server}: cannot connect"), line
    assert "check `server:` in the kubeconfig" in line
    assert not (state / "last-error.txt").exists()  # refused, not a bug


def test_a_usage_error_is_clicks_text_only(wheel: InstalledWheel) -> None:
    result = wheel.run("shimshift", "audit", "--output", "xml")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == "Usage: shimshift audit [OPTIONS]"
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for '-o' / '--output': 'xml'")
    assert "Warning" not in result.stderr
