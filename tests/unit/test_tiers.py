"""Every test that needs the Docker lab is marked `e2e`, and the check that says so can fail; the tests
that upgrade the lab run after every other lab test.

The check itself is tests/tiers.py, a collection hook; here it runs in a child pytest that only collects
(nothing is run, the lab is not touched): once over the real tests/e2e and tests/local, and once over a
small suite of its own where one test reaches the lab unmarked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_test_that_uses_the_lab_is_marked_e2e() -> None:
    proc = _collect("tests/e2e", "tests/local", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_an_unmarked_lab_test_fails_the_collection(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    e2e: needs the lab\n")
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "from tests.tiers import pytest_collection_modifyitems\n\n"
        "@pytest.fixture\ndef lab():\n    return object()\n\n"
        "@pytest.fixture\ndef node_state(lab):\n    return lab\n"
    )
    (tmp_path / "test_suite.py").write_text(
        "import pytest\n\n"
        "def test_direct(lab):\n    pass\n\n"
        "def test_through_a_fixture(node_state):\n    pass\n\n"
        "@pytest.mark.e2e\ndef test_marked(lab):\n    pass\n\n"
        "def test_without_the_lab():\n    pass\n"
    )
    proc = _collect(str(tmp_path), cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    # --collect-only lists every test; the refusal is the one line that names the unmarked ones.
    refusal = next((line for line in out.splitlines() if "not marked e2e" in line), None)
    assert refusal is not None, out
    assert "test_suite.py::test_direct" in refusal, out
    assert "test_suite.py::test_through_a_fixture" in refusal, out
    assert "test_marked" not in refusal, out
    assert "test_without_the_lab" not in refusal, out


def test_the_tests_that_upgrade_the_lab_run_after_the_others_whatever_the_command_line_order() -> None:
    proc = _collect("tests/e2e/upgrade/test_upgrade_all.py", "tests/e2e/test_lab.py", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = [line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line]
    upgrade = [i for i, name in enumerate(files) if name.startswith("tests/e2e/upgrade/")]
    other = [i for i, name in enumerate(files) if name == "tests/e2e/test_lab.py"]
    assert upgrade and other, proc.stdout
    assert max(other) < min(upgrade), files
