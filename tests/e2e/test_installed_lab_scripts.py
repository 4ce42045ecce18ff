"""The lab build scripts as installed from a wheel judge the lab's warm cache up to date.

Their `--check` hashes the scripts' contents, never their path; so moving them into the package (or a
user's venv) must not rebuild a node image or an image tarball the checkout's scripts built. Needs the
built artifacts, hence the e2e tier (the `lab` fixture ensures them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shimshift.lab.images import DEFAULT_CACHE_DIR, KUBERNETES_VERSION, addon_dirs, ensure_artifacts
from tests.wheel_fixture import installed_wheel

if TYPE_CHECKING:
    from shimshift.lab.model import LabInfo

pytestmark = pytest.mark.e2e


def test_installed_scripts_find_the_warm_cache_fresh(lab: LabInfo) -> None:
    artifacts = ensure_artifacts()
    wheel = installed_wheel()
    where = wheel.run(
        str(wheel.bin / "python"), "-c", "from shimshift.lab.images import lab_scripts_dir; print(lab_scripts_dir())"
    )
    image_dir = where.stdout.strip() + "/image"
    assert image_dir.startswith(str(wheel.venv)), where.stderr
    cri_dir = artifacts.cri_dockerd.parent
    node = wheel.run(
        f"{image_dir}/build-node-image.sh",
        "--check",
        artifacts.node_image,
        str(artifacts.bin_dir_123),
        str(cri_dir),
        str(DEFAULT_CACHE_DIR),
    )
    assert node.returncode == 0, f"node image judged stale ({node.returncode}): {node.stderr}"
    addons = [str(d) for d in addon_dirs(DEFAULT_CACHE_DIR, KUBERNETES_VERSION)]
    inner = wheel.run(
        f"{image_dir}/build-inner-images.sh",
        "--check",
        str(artifacts.bin_dir_123),
        *addons,
        str(artifacts.inner_images_tar),
    )
    assert inner.returncode == 0, f"inner images judged stale ({inner.returncode}): {inner.stderr}"
