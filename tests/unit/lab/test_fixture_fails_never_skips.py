"""The e2e `lab` fixture, when the lab cannot be had, fails the tests with the reason: never a skip.

Runs the real tests/e2e/conftest.py in a child pytest whose PATH has no `docker`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_lab_fixture_fails_with_the_reason_when_docker_is_missing(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(ROOT / "tests" / "e2e" / "conftest.py", suite / "conftest.py")
    (suite / "test_uses_lab.py").write_text("def test_needs_lab(lab):\n    assert lab.nodes\n")
    env = {
        **os.environ,
        "PATH": str(tmp_path / "empty-bin"),  # no docker, no ssh-keygen
        "PYTHONPATH": str(ROOT / "src"),
        "SHIMSHIFT_LAB_DIR": str(tmp_path / "lab"),
        "SHIMSHIFT_LAB_LOCK_TIMEOUT": "5",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(suite)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "the lab could not be brought up" in out, out
    assert "docker client is not installed" in out, out
    assert "skipped" not in out.lower(), out
