"""The lab lock: exclusive excludes all, shared admits shared, a waiter gives up with the holder named."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.lab.docker import LabError
from shimshift.lab.lock import LabLock, lock_path

if TYPE_CHECKING:
    from pathlib import Path


def test_lock_lives_beside_the_lab_directory(tmp_path: Path) -> None:
    assert lock_path(tmp_path / "lab") == tmp_path / ".lab.lock"


def test_exclusive_then_shared_then_exclusive(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    first, second, third = (LabLock(lab, timeout=0.2) for _ in range(3))
    waits: list[str] = []
    second._on_wait = waits.append
    first.acquire(exclusive=True)
    try:
        with pytest.raises(LabError, match=r"stayed in use .*pid \d+"):
            second.acquire(exclusive=False)
        assert waits and "in use" in waits[0]
        first.acquire(exclusive=False)  # downgrade: shared holders may now join
        second.acquire(exclusive=False)
        with pytest.raises(LabError, match="stayed in use"):
            third.acquire(exclusive=True)
    finally:
        first.release()
        second.release()
    with third:
        assert lock_path(lab).read_text().startswith("pid ")
