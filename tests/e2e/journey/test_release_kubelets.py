"""The flag traps on the journey against the real kubelets of the releases on the road.

kubelet parses every flag before it honours --version (tests/e2e/core/test_real_binaries.py does the same
for 1.23 and 1.24), so `kubelet <flags> --version` exits 0 exactly when that kubelet would start with
that command line. Matrix: kubelets 1.25.16, 1.27.16, 1.30.14, 1.33.13, 1.35.8 and 1.37.2 x every flag of
the rule table (1.27 rejects `--container-runtime`, 1.35 `--pod-infra-container-image`, as the table
says); and the node's command line drain after drain - a dockershim node migrated at 1.24, then each
drain's plan for the next kubelet applied to what the last one left - accepted by each kubelet.

Not in `scripts/test.sh` (marker `journey_lab`): it needs six releases CI does not build (about ten
minutes each when the cache lacks them; built on first use, a failed build fails the test).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shimshift.core.node_files import KUBEADM_FLAGS_ENV
from shimshift.core.node_plan import apply_changes
from shimshift.core.node_planner import plan_node
from shimshift.core.versions import FLAG_RULES, FlagRule, FlagStatus, flag_status
from shimshift.lab import images
from tests.e2e.conftest import _progress
from tests.e2e.core.test_real_binaries import VALUES, accepts, dockershim_node, kubelet_argv

if TYPE_CHECKING:
    from shimshift.core.node_plan import NodePlan

pytestmark = [pytest.mark.e2e, pytest.mark.journey_lab]

# The kubelets of the road with `--skew kubernetes` (1.24 is in test_real_binaries.py) and a few between.
RELEASES = ("v1.25.16", "v1.27.16", "v1.30.14", "v1.33.13", "v1.35.8", "v1.37.2")
CRI_DOCKERD = images.CRI_DOCKERD_VERSION.removeprefix("v")


@pytest.fixture(scope="module")
def kubelets() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for version in RELEASES:
        try:
            built = images.ensure_release_artifacts(version, progress=_progress)
        except Exception as e:  # any failure must become a test failure, never a skip
            pytest.fail(f"Kubernetes {version} could not be built: {type(e).__name__}: {e}", pytrace=False)
        found[version] = built.bin_dir / "kubelet"
    return found


def minor(version: str) -> int:
    return int(version.split(".")[1])


@pytest.mark.parametrize("version", RELEASES)
@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.flag)
def test_flag_table_matches_the_release_s_kubelet(kubelets: dict[str, Path], version: str, rule: FlagRule) -> None:
    ok, err = accepts(kubelets[version], [f"{rule.flag}={VALUES.get(rule.flag, '/x')}"])
    removed = flag_status(rule.flag, minor(version)) is FlagStatus.REMOVED
    assert ok is not removed, f"kubelet {version} {'took' if ok else 'refused'} {rule.flag}: {err}"
    if removed:
        assert f"unknown flag: {rule.flag}" in err


def kubeadm_1_24_node() -> dict[str, bytes | None]:
    """A node as kubeadm 1.24 leaves it on cri-dockerd: it writes ``--container-runtime=remote`` beside the
    endpoint and the pause image (cmd/kubeadm/app/phases/kubelet/flags.go at v1.24.17)."""
    files = dockershim_node(24)
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--container-runtime=remote '
        b"--container-runtime-endpoint=unix:///var/run/cri-dockerd.sock "
        b'--pod-infra-container-image=registry.k8s.io/pause:3.7"\n'
    )
    return files


# The flag each release removes that a node on the road may still carry.
REMOVED_AT = {27: "--container-runtime=", 35: "--pod-infra-container-image="}


@pytest.mark.parametrize("start", ["migrated-at-1.24", "kubeadm-1.24"])
def test_each_drain_s_command_line_is_one_its_kubelet_starts_with(kubelets: dict[str, Path], start: str) -> None:
    if start == "kubeadm-1.24":
        files = kubeadm_1_24_node()
    else:
        files = dockershim_node(24)
        files = apply_changes(files, plan(files, "1.24.17").changes)  # the migration, in the first drain
    controls = 0
    for version in RELEASES:
        before = kubelet_argv(files)
        files = apply_changes(files, plan(files, version).changes)
        argv = kubelet_argv(files)
        ok, err = accepts(kubelets[version], argv)
        assert ok, f"kubelet {version} refuses the drain's command line {argv}: {err}"
        for removed_at, flag in REMOVED_AT.items():
            if minor(version) >= removed_at:
                assert not any(arg.startswith(flag) for arg in argv), argv
            if minor(version) == removed_at and any(arg.startswith(flag) for arg in before):
                # The control: the line this drain started from is one this kubelet refuses.
                assert not accepts(kubelets[version], before)[0], before
                controls += 1
    if start == "kubeadm-1.24":
        assert controls == 2  # both removals were met on this road, and both lines refused before the edit


def plan(files: dict[str, bytes | None], version: str) -> NodePlan:
    return plan_node(
        kubelet_version=version.removeprefix("v"),
        files=files,
        cri_dockerd_version=CRI_DOCKERD,
        docker_cgroup_driver="systemd",
    )
