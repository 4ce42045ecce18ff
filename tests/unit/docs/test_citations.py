"""The product cites only what a reader of the repository can open: no file of src/ or benchmarks/ points
at a notebook outside the repository (``shared/``), at "§" sections of one, or at our own issue numbers.
Upstream sources (a kubernetes/kubernetes file at a tag, ``Mirantis/cri-dockerd#N``) and docs/ are fine.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = re.compile(r"shared/|§|[Ii]ssue [0-9]+")
TEXT_SUFFIXES = {".py", ".sh", ".md", ".c", ".yaml", ".yml", ".json", ".service", ".conf", ".txt", ".toml"}


def product_files() -> list[Path]:
    files = []
    for top in ("src", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and ".egg-info" not in path.parts[-2]:
                files.append(path)
    return files


def test_the_scan_reads_the_product() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in product_files()}
    assert "src/shimshift/core/versions.py" in names
    assert "src/shimshift/lab/assets/image/build-rootfs.sh" in names


def test_no_citation_a_reader_cannot_open() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in product_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not hits, "cite the upstream source or docs/ instead:\n" + "\n".join(hits)


OUTSIDE = re.compile(r"shared/|§|[Ii]ssue [0-9]+")  # our issue numbers too: a clone has no tracker
REPOSITORY_TOPS = ("src", "benchmarks", "tests", "scripts", "docs", "deploy", ".ci")


def repository_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for top in REPOSITORY_TOPS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES | {""} and "__pycache__" not in path.parts:
                files.append(path)
    return files


def test_nothing_in_the_repository_points_outside_it() -> None:
    """Tests, scripts and docs too: a person who clones the repository has no notebook nor tracker to open."""
    this = Path(__file__).resolve()
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in repository_files()
        if path.resolve() != this
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert ROOT / ".ci" / "run" in repository_files()
    assert not hits, "cite the upstream source or docs/ instead:\n" + "\n".join(hits)
