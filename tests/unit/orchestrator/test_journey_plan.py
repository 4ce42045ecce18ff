"""What `plan --to` gathers before the pure rules run (orchestrator/journey_plan.py), without a cluster.

Matrix: a node's facts read through its access (files, cgroup version, cri-dockerd and crictl releases,
Docker's containerd socket); the kube-apiserver flags from a mirror pod; the deprecated-API metric; the
binaries of each release on the way, one folder per release, a missing one said as a blocking finding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shimshift.adapters.node_access import CommandResult
from shimshift.core.journey.schedule import JourneyNode, plan_journey
from shimshift.core.versions import CriDockerdVersion, KubernetesVersion
from shimshift.orchestrator.journey_plan import (
    CGROUP_V2_MARKER,
    JourneyPlan,
    _check_binaries,
    _manifest,
    _node_facts,
    deprecated_apis,
)
from tests.unit.core.nodes import cri_dockerd_node
from tests.unit.orchestrator.test_upgrade_run import fake_binaries


@dataclass
class FakeAccess:
    """A node's files and the answers of its programs; records what was run."""

    files: dict[str, bytes | None]
    answers: dict[tuple[str, ...], tuple[int, bytes]]
    programs: dict[str, str | None]
    ran: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def node(self) -> str:
        return "w1"

    async def read_file(self, path: str, *, max_bytes: int | None = None) -> bytes | None:
        return self.files.get(path)

    async def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> CommandResult:
        self.ran.append(tuple(argv))
        code, out = self.answers.get(tuple(argv), (1, b""))
        return CommandResult(tuple(argv), code, out, b"")

    async def find_programs(self, programs: Sequence[str]) -> dict[str, str | None]:
        return {program: self.programs.get(program) for program in programs}


def test_a_nodes_facts_come_from_its_files_and_its_programs() -> None:
    access = FakeAccess(
        files={**cri_dockerd_node(30), CGROUP_V2_MARKER: None},
        answers={
            ("/usr/bin/cri-dockerd", "--version"): (0, b"cri-dockerd 0.3.16 (71198646)\n"),
            ("crictl", "--version"): (0, b"crictl version v1.30.1\n"),
            ("ls", "-1", "/run/containerd/containerd.sock"): (0, b"/run/containerd/containerd.sock\n"),
        },
        programs={"cri-dockerd": "/usr/bin/cri-dockerd", "crictl": "/usr/bin/crictl"},
    )
    facts = asyncio.run(_node_facts("w1", access))  # type: ignore[arg-type]

    assert facts.view is not None and facts.view.last("--container-runtime-endpoint") is not None
    assert (facts.cgroup_version, facts.cri_dockerd, facts.crictl) == (
        1,
        CriDockerdVersion(0, 3, 16),
        KubernetesVersion(30, 1),
    )
    assert (facts.crictl_found, facts.containerd_socket) == (True, True)


def test_a_cgroup_v2_host_without_crictl_or_containerd() -> None:
    access = FakeAccess(files={**cri_dockerd_node(30), CGROUP_V2_MARKER: b"cpu memory pids\n"}, answers={}, programs={})
    facts = asyncio.run(_node_facts("w1", access))  # type: ignore[arg-type]
    assert (facts.cgroup_version, facts.cri_dockerd, facts.crictl_found, facts.containerd_socket) == (
        2,
        None,
        False,
        False,
    )
    assert access.ran == [("ls", "-1", "/run/containerd/containerd.sock")]


def test_the_api_server_flags_come_from_its_mirror_pods_command() -> None:
    pod = {
        "spec": {
            "nodeName": "cp1",
            "containers": [
                {"command": ["kube-apiserver", "--enable-admission-plugins=NodeRestriction,PodSecurityPolicy", "--v"]}
            ],
        }
    }
    manifest = _manifest(pod)
    assert manifest.node == "cp1"
    assert manifest.flags == {"--enable-admission-plugins": ("NodeRestriction,PodSecurityPolicy", None)}


def test_the_deprecated_api_metric_names_what_clients_still_request() -> None:
    metrics = (
        "# TYPE apiserver_requested_deprecated_apis gauge\n"
        'apiserver_requested_deprecated_apis{group="policy",removed_release="1.25",resource="poddisruptionbudgets",'
        'subresource="",version="v1beta1"} 1\n'
        'apiserver_request_total{code="200"} 7\n'
    )
    (api,) = deprecated_apis(metrics)
    assert (api.group_version, api.resource, api.removed_release) == ("policy/v1beta1", "poddisruptionbudgets", "1.25")


def test_each_release_on_the_way_is_checked_in_its_own_folder(tmp_path: Path) -> None:
    fake_binaries(tmp_path / "v1.24.17", "1.24.17")
    journey = plan_journey(
        [JourneyNode("cp1", True, KubernetesVersion(23, 17))],
        control_plane=KubernetesVersion(23, 17),
        target=KubernetesVersion(25, 16),
    )
    plan = JourneyPlan(journey)
    asyncio.run(_check_binaries(tmp_path, journey, plan))

    assert list(plan.binaries) == ["v1.24.17"]
    (missing,) = plan.findings
    assert (missing.code, missing.blocking, missing.file) == ("release-binaries", True, str(tmp_path / "v1.25.16"))
