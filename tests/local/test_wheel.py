"""shimshift installed from a wheel built from this checkout, into a fresh venv outside it (no lab needed).

Matrix: `shimshift --help`, `shimshift lab status` and `kubectl-shimshift --help` run from a directory outside
the checkout; `kubectl shimshift --help` through kubectl's plugin lookup on PATH; the package is imported from
the venv, not the checkout; the lab build scripts ship as package data, byte for byte and executable, where
`lab_scripts_dir()` of the installed package finds them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.wheel_fixture import CHECKOUT, InstalledWheel, installed_wheel

ASSETS = CHECKOUT / "src" / "shimshift" / "lab" / "assets"
KUBECTL = shutil.which("kubectl") or "/var/cache/shimshift/bin/v1.23.17/kubectl"


@pytest.fixture(scope="module")
def wheel() -> InstalledWheel:
    return installed_wheel()


def test_the_venv_is_outside_the_checkout_and_imports_its_own_copy(wheel: InstalledWheel) -> None:
    assert not wheel.venv.is_relative_to(CHECKOUT)
    assert not wheel.elsewhere.is_relative_to(CHECKOUT)
    found = wheel.run(str(wheel.bin / "python"), "-c", "import shimshift; print(shimshift.__file__)")
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(wheel.venv)


def test_shimshift_help_from_elsewhere(wheel: InstalledWheel) -> None:
    result = wheel.run("shimshift", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("migrate", "plan", "report", "lab", "--state-dir", "--verbose"):
        assert command in result.stdout


def test_lab_status_from_elsewhere(wheel: InstalledWheel, tmp_path: Path) -> None:
    # An empty lab directory: the answer is "no lab" (exit 1), reached through the installed lab package.
    result = wheel.run("shimshift", "lab", "status", "--dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"lab directory: {tmp_path}" in result.stdout
    assert "problem:" in result.stdout
    assert "Traceback" not in result.stderr


def test_kubectl_plugin_entry_point(wheel: InstalledWheel) -> None:
    result = wheel.run("kubectl-shimshift", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: kubectl-shimshift" in result.stdout


def test_kubectl_finds_the_plugin_on_path(wheel: InstalledWheel) -> None:
    assert os.access(KUBECTL, os.X_OK), f"no kubectl at {KUBECTL}"
    listed = wheel.run(KUBECTL, "plugin", "list")
    assert str(wheel.bin / "kubectl-shimshift") in listed.stdout, listed.stdout + listed.stderr
    result = wheel.run(KUBECTL, "shimshift", "--help")
    assert result.returncode == 0, result.stderr
    assert "migrate" in result.stdout


def test_lab_build_scripts_ship_as_package_data(wheel: InstalledWheel) -> None:
    where = wheel.run(
        str(wheel.bin / "python"), "-c", "from shimshift.lab.images import lab_scripts_dir; print(lab_scripts_dir())"
    )
    assert where.returncode == 0, where.stderr
    installed = Path(where.stdout.strip())
    assert installed.is_relative_to(wheel.venv)
    expected = sorted(path.relative_to(ASSETS) for path in ASSETS.rglob("*") if path.is_file())
    assert sorted(path.relative_to(installed) for path in installed.rglob("*") if path.is_file()) == expected
    for relative in expected:
        source, shipped = ASSETS / relative, installed / relative
        assert shipped.read_bytes() == source.read_bytes(), relative
        assert os.access(shipped, os.X_OK) == os.access(source, os.X_OK), relative
    assert os.access(installed / "build" / "build-kubernetes.sh", os.X_OK)


def test_bash_completion_of_the_installed_command(wheel: InstalledWheel) -> None:
    # What a user's ~/.bashrc line does, then what bash does on `shimshift mig<TAB>`.
    script = (
        'eval "$(_SHIMSHIFT_COMPLETE=bash_source shimshift)"; COMP_WORDS=(shimshift mig); COMP_CWORD=1; '
        '_shimshift_completion shimshift; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = wheel.run("bash", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["migrate"]
