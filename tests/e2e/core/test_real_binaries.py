"""The rule table and the plan against the real binaries the lab builds.

kubelet parses every flag before it honours --version, so `kubelet <flags> --version` exits 0 exactly
when that kubelet accepts the command line (and 1 with "unknown flag: --x" otherwise); cri-dockerd
behaves the same. Matrix: kubelet v1.23.17 and v1.24.17 x every flag of the rule table, and x the
command line before/after the plan; the lab's cri-dockerd (images.CRI_DOCKERD_VERSION) x the command line
the plan writes, built on its own packaged unit. A missing binary FAILS the test with the reason (never a skip).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shimshift.core.dropin import STANDARD_KUBEADM_DROPIN
from shimshift.core.node_files import (
    CRI_DOCKERD_UNIT_USR,
    DEFAULT_KUBELET,
    KUBEADM_FLAGS_ENV,
    KUBELET_CONFIG,
    KUBELET_DROPIN_USR,
    NodeView,
)
from shimshift.core.node_plan import apply_changes
from shimshift.core.node_planner import plan_node
from shimshift.core.versions import FLAG_RULES, FlagRule, FlagStatus, flag_status
from shimshift.lab import images

pytestmark = pytest.mark.e2e

BIN = Path("/var/cache/shimshift/bin")
KUBELETS = {23: BIN / "v1.23.17" / "kubelet", 24: BIN / "v1.24.17" / "kubelet"}
CRI_DOCKERD = BIN / f"cri-dockerd-{images.CRI_DOCKERD_VERSION}"
CRI_DOCKERD_RELEASE = images.CRI_DOCKERD_VERSION.removeprefix("v")

# A value each flag's type accepts.
VALUES = {
    "--network-plugin-mtu": "1450",
    "--image-pull-progress-deadline": "1m",
    "--redirect-container-streaming": "false",
    "--hairpin-mode": "promiscuous-bridge",
    "--non-masquerade-cidr": "10.0.0.0/8",
    "--container-runtime": "remote",
}


@pytest.fixture(scope="module", autouse=True)
def built_binaries() -> None:
    """The kubelets of both releases and cri-dockerd, built now if the cache lacks them: these tests must
    not depend on an earlier lab test having built the 1.24 kubelet. A failed build fails them, never skips."""
    try:
        images.ensure_binaries(kubelet_next=True)
    except Exception as e:  # any failure must become a test failure, never a skip
        pytest.fail(f"the lab binaries could not be built: {type(e).__name__}: {e}", pytrace=False)


def dockershim_node(minor: int) -> dict[str, bytes | None]:
    """What kubeadm 1.23 leaves on a dockershim node, the kubelet now at 1.<minor>."""
    return {
        KUBELET_DROPIN_USR: STANDARD_KUBEADM_DROPIN,
        KUBEADM_FLAGS_ENV: (
            b'KUBELET_KUBEADM_ARGS="--network-plugin=cni '
            b'--pod-infra-container-image=registry.k8s.io/pause:3.6"\n'
        ),
        DEFAULT_KUBELET: b"KUBELET_EXTRA_ARGS=--fail-swap-on=false\n",
        KUBELET_CONFIG: (
            b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
        ),
    }


def binary(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} is missing: the lab build provides it (`shimshift lab up` or scripts/setup.sh)")
    return path


def accepts(exe: Path, args: list[str]) -> tuple[bool, str]:
    done = subprocess.run(
        [str(exe), *args, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    # Keep what explains a refusal, not the usage text kubelet prints after it.
    errors = [line for line in done.stderr.splitlines() if "unknown flag" in line or "rror:" in line]
    return done.returncode == 0, "\n".join(errors)


def kubelet_argv(files: dict[str, bytes | None]) -> list[str]:
    view = NodeView.load(files)
    return [f.name if f.value is None else f"{f.name}={f.value}" for f in view.flags]


@pytest.mark.parametrize("minor", sorted(KUBELETS))
@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.flag)
def test_flag_table_matches_the_kubelet(minor: int, rule: FlagRule) -> None:
    ok, err = accepts(binary(KUBELETS[minor]), [f"{rule.flag}={VALUES.get(rule.flag, '/x')}"])
    removed = flag_status(rule.flag, minor) is FlagStatus.REMOVED
    assert ok is not removed, err
    if removed:
        assert f"unknown flag: {rule.flag}" in err


@pytest.mark.parametrize("minor", sorted(KUBELETS))
def test_planned_kubelet_command_line_is_accepted(minor: int) -> None:
    files = dockershim_node(minor)
    before_ok, before_err = accepts(binary(KUBELETS[minor]), kubelet_argv(files))
    # 1.24 exits on the dockershim flags kubeadm 1.23 left behind; 1.23 takes them (CHANGELOG-1.24).
    assert before_ok is (minor <= 23), before_err
    plan = plan_node(
        kubelet_version=f"1.{minor}.17",
        files=files,
        cri_dockerd_version=CRI_DOCKERD_RELEASE,
        docker_cgroup_driver="systemd",
    )
    after = apply_changes(files, plan.changes)
    argv = kubelet_argv(after)
    ok, err = accepts(KUBELETS[minor], argv)
    assert ok, err
    for flag, value in plan.expected_kubelet_args.items():
        assert f"{flag}={value}" in argv


def test_planned_cri_dockerd_command_line_is_accepted() -> None:
    exe = binary(CRI_DOCKERD / "cri-dockerd")
    files = dockershim_node(23)
    files[CRI_DOCKERD_UNIT_USR] = binary(CRI_DOCKERD / "systemd" / "cri-docker.service").read_bytes()
    files[KUBEADM_FLAGS_ENV] = (
        b'KUBELET_KUBEADM_ARGS="--network-plugin=cni --pod-infra-container-image=registry.k8s.io/pause:3.6 '
        b"--cni-bin-dir=/usr/lib/cni --cni-conf-dir=/etc/cni/net.d --cni-cache-dir=/var/lib/cni/cache "
        b"--network-plugin-mtu=1450 --docker-endpoint=unix:///var/run/docker.sock "
        b"--image-pull-progress-deadline=2m --runtime-cgroups=/system.slice/docker.service "
        b'--hairpin-mode=hairpin-veth"\n'
    )
    plan = plan_node(
        kubelet_version="1.23.17", files=files, cri_dockerd_version=CRI_DOCKERD_RELEASE, docker_cgroup_driver="systemd"
    )
    assert plan.cri_dockerd_args[:3] == ("/usr/bin/cri-dockerd", "--container-runtime-endpoint", "fd://")
    assert len(plan.cri_dockerd_settings) == 12
    assert plan.cri_dockerd_settings["--streaming-bind-addr"] == "127.0.0.1"
    ok, err = accepts(exe, list(plan.cri_dockerd_args[1:]))
    assert ok, err


def streaming_address_error(exe: Path, value: str, workdir: Path) -> str:
    """What cri-dockerd says about ``--streaming-bind-addr=value`` when it starts.

    The flag's value is parsed only at start-up (cmd/server.go at v0.3.17 and v0.4.6, before it dials
    Docker), not by `--version`; pointed at a Docker socket that does not exist, it stops right after
    that parse.
    """
    done = subprocess.run(
        [
            str(exe),
            f"--streaming-bind-addr={value}",
            f"--docker-endpoint=unix://{workdir}/no-docker.sock",
            f"--container-runtime-endpoint=unix://{workdir}/cri.sock",
            f"--cri-dockerd-root-directory={workdir}/root",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0  # it can never serve without Docker
    return done.stderr


def test_planned_streaming_address_is_one_cri_dockerd_parses(tmp_path: Path) -> None:
    exe = binary(CRI_DOCKERD / "cri-dockerd")
    plan = plan_node(
        kubelet_version="1.23.17",
        files=dockershim_node(23),
        cri_dockerd_version=CRI_DOCKERD_RELEASE,
        docker_cgroup_driver="systemd",
    )
    planned = streaming_address_error(exe, plan.cri_dockerd_settings["--streaming-bind-addr"], tmp_path)
    assert "streaming bind address" not in planned
    assert "failed to get docker version" in planned  # it got past the parse
    # The control: a host name is not an address to cri-dockerd, so the check above can fail.
    assert "Could not parse the given streaming bind address" in streaming_address_error(exe, "localhost", tmp_path)
