"""`--cri-dockerd PATH` on the journey's commands against a real kube-apiserver (v1.23.17, no kubelets): the
binary is asked its version here and hashed, the plan names it; bad input is refused before anything else,
naming the path, and changes nothing.

Matrix: `plan --to 1.30.14 --cri-dockerd PATH` as JSON (the version and sha256 read from the file) and as
text (one line naming it); `audit
--to` with a file that is not there (exit 2, the path named); `upgrade --to 1.30.14 --all` with a file not
executable, and with one whose `--version` is no cri-dockerd's (exit 2, nodes neither cordoned nor
annotated, no run to resume); `upgrade --to 1.24.17` (one minor) with `--cri-dockerd` (refused: the option
is the journey's).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from shimshift.adapters.journal import Journal
from shimshift.cli.main import main

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

CONTROL_PLANE = {"node-role.kubernetes.io/control-plane": ""}


@pytest.fixture(autouse=True)
async def whole_cluster(world: World) -> None:
    """The journey takes the whole cluster: nodes earlier tests left in the shared API server are removed."""
    nodes = await world.call("GET", "/api/v1/nodes")
    for node in nodes.get("items") or []:
        await world.call("DELETE", f"/api/v1/nodes/{node['metadata']['name']}", ok=(200, 202, 404))


async def invoke(apiserver: LocalApiServer, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, [*args, "--kubeconfig", str(apiserver.kubeconfig)])


def fake_cri_dockerd(path: Path, printed: str, *, executable: bool = True) -> Path:
    """A script that answers `--version` as a cri-dockerd build does (on stderr, like some do)."""
    path.write_text(f"#!/bin/sh\necho '{printed}' >&2\n")
    path.chmod(0o755 if executable else 0o644)
    return path


async def nodes_as_they_are(world: World, names: tuple[str, ...]) -> list[object]:
    found = [await world.call("GET", f"/api/v1/nodes/{name}") for name in names]
    return [(node["spec"], node["metadata"].get("annotations")) for node in found]


async def test_plan_to_reads_the_version_and_digest_of_cri_dockerd_given(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    await world.node("cp", labels=CONTROL_PLANE)
    await world.node("w")
    binary = fake_cri_dockerd(tmp_path / "cri-dockerd", "cri-dockerd 0.4.6 (a1b2c3d)")

    result = await invoke(
        apiserver, "plan", "--to", "1.30.14", "--all", "--skip-node-files", "--cri-dockerd", str(binary), "-o", "json"
    )

    assert result.exit_code in (0, 1), result.output
    given = json.loads(result.stdout)["journey"]["cri_dockerd"]
    assert given == {
        "source": str(binary),
        "version": "0.4.6",
        "sha256": hashlib.sha256(binary.read_bytes()).hexdigest(),
    }


async def test_plan_to_says_the_cri_dockerd_each_first_drain_puts_in_place(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    await world.node("cp", labels=CONTROL_PLANE)
    binary = fake_cri_dockerd(tmp_path / "cri-dockerd", "cri-dockerd 0.4.6 (a1b2c3d)")

    given = ("--cri-dockerd", str(binary))
    result = await invoke(apiserver, "plan", "--to", "1.30.14", "--all", "--skip-node-files", *given)

    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    assert f"cri-dockerd: {binary} reports 0.4.6 (sha256 {digest[:12]}...); each node's first drain" in result.stdout


async def test_audit_to_refuses_a_cri_dockerd_that_is_not_there(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    await world.node("cp", labels=CONTROL_PLANE)
    missing = tmp_path / "nowhere" / "cri-dockerd"

    result = await invoke(apiserver, "audit", "--to", "1.30.14", "--cri-dockerd", str(missing))

    assert result.exit_code == 2, result.output
    assert f"--cri-dockerd {missing} is missing, not executable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("printed", "executable", "said"),
    [
        ("cri-dockerd 0.4.6 (a1b2c3d)", False, "is missing, not executable"),
        ("Kubernetes v1.30.14", True, "not a cri-dockerd version"),
    ],
)
async def test_upgrade_to_refuses_a_bad_cri_dockerd_before_anything_changes(
    world: World, apiserver: LocalApiServer, tmp_path: Path, printed: str, executable: bool, said: str
) -> None:
    names = (await world.node("cp", labels=CONTROL_PLANE), await world.node("w"))
    before = await nodes_as_they_are(world, names)
    binary = fake_cri_dockerd(tmp_path / "cri-dockerd", printed, executable=executable)
    journal = tmp_path / "journal.db"

    result = await invoke(
        apiserver, "upgrade", "--to", "1.30.14", "--all", "--install-command", "true {binary} {version}",
        "--cri-dockerd", str(binary), "--journal", str(journal),
    )

    assert result.exit_code == 2, result.output
    assert said in result.stderr and str(binary) in result.stderr
    assert await nodes_as_they_are(world, names) == before
    opened = Journal(journal)
    try:
        assert opened.runs() == []  # refused before a run began: nothing to resume
    finally:
        opened.close()


async def test_a_one_minor_upgrade_refuses_cri_dockerd(
    world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    names = (await world.node("cp", labels=CONTROL_PLANE), await world.node("w"))
    before = await nodes_as_they_are(world, names)
    binary = fake_cri_dockerd(tmp_path / "cri-dockerd", "cri-dockerd 0.4.6 (a1b2c3d)")

    result = await invoke(
        apiserver, "upgrade", "--to", "1.24.17", "--all", "--install-command", "true {binary} {version}",
        "--cri-dockerd", str(binary), "--journal", str(tmp_path / "journal.db"),
    )

    assert result.exit_code == 2, result.output
    assert "replaces cri-dockerd in a journey's drains; this upgrade is one minor" in result.stderr
    assert await nodes_as_they_are(world, names) == before
