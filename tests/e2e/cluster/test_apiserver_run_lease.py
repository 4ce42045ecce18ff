"""The run Lease and the run's copy against a real kube-apiserver, as the user deploy/rbac.yaml binds.

Matrix, every call under exactly deploy/rbac.yaml: a first run creates the Lease and a second is refused
naming the holder; the holder renews in the background (renewTime moves) and releases at the end (no
holder, the run and its status kept); an exception and a cancellation (Ctrl-C) release it too, and SIGTERM
does as Ctrl-C; two writers of the same resourceVersion: one gets 409 (Conflict); a Lease taken by
someone else while held stops the run; a resume from a second journal waits for a stopped holder's Lease to
expire, takes it (recorded), and takes in the run's journal records from its ConfigMap; the ConfigMap
round-trips each node's records; the Lease and ConfigMaps of another namespace, and deleting either, are
403. Through the CLI in a process of its own (admin credentials): a drain that waits on a budget holds the
Lease, a second drain is refused (exit 2) naming it, and SIGTERM ends the first with the Lease released;
`migrate` is refused while another run holds the Lease, before it records a run; `status` shows a holder
that stopped renewing with the way on; `migrate --take-over RUN` takes its place, recorded in the Lease.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from click.testing import CliRunner, Result

from shimshift.adapters.journal import ClusterIdentity, Journal, RunStatus, StepPhase
from shimshift.adapters.kube.client import ApiFailure, make_client, raw_request
from shimshift.adapters.kube.run_lease import Conflict, lease_path, read_lease, write_lease
from shimshift.adapters.kube.run_state import RunState, configmap_name, read_run_state
from shimshift.cli.main import main
from shimshift.core.errors import Refusal
from shimshift.core.run_copy import CopiedRecord, RunCopy
from shimshift.core.run_lease import Claim, Holder, LeaseRefusal
from shimshift.orchestrator.cluster_run import RunOpening, claim_lease, cluster_run, held_run, run_copy
from tests.loopback_relay import pump

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World

pytestmark = pytest.mark.e2e
NS = "kube-system"  # where deploy/rbac.yaml puts the Role; its other namespace is refused
IDENTITY = ClusterIdentity("https://127.0.0.1:6443", "ab" * 32)


def holder(run: str, host: str = "laptop", pid: int = 100) -> Holder:
    return Holder(f"20261207T100000Z-{run}", "alice", host, pid, "migrate")


@pytest.fixture
async def lease_client(as_shimshift: Any, kube: Any) -> AsyncIterator[Any]:
    """The `shimshift` user's client; the Lease and the runs' ConfigMaps are removed (as admin) afterwards."""
    await raw_request(kube, "DELETE", lease_path(NS, "shimshift"))
    yield as_shimshift
    await raw_request(kube, "DELETE", lease_path(NS, "shimshift"))
    listed = await raw_request(
        kube, "GET", f"/api/v1/namespaces/{NS}/configmaps", params={"labelSelector": "app.kubernetes.io/managed-by"}
    )
    for item in listed.body.get("items") or []:
        await raw_request(kube, "DELETE", f"/api/v1/namespaces/{NS}/configmaps/{item['metadata']['name']}")


async def test_a_second_run_is_refused_naming_the_holder_and_the_first_releases(lease_client: Any) -> None:
    first = holder("aaaa0001")
    async with cluster_run(lease_client, namespace=NS, claim=Claim(first)) as held:
        held.status = lambda: RunStatus.SUCCEEDED
        with pytest.raises(LeaseRefusal) as refused:
            await claim_lease(lease_client, NS, Claim(holder("bbbb0002", "ci")), clock=lambda: datetime.now(UTC))
        for part in ("alice", "laptop", first.run_id, "pid 100"):
            assert part in str(refused.value)
        assert refused.value.finding.code == "lease-held"
    lease = await read_lease(lease_client, NS)
    assert lease is not None and lease.holder is None
    assert (lease.run_id, lease.run_status) == (first.run_id, RunStatus.SUCCEEDED)
    # Free again: the next run takes it, one more transition.
    _, second = await claim_lease(lease_client, NS, Claim(holder("cccc0003")), clock=lambda: datetime.now(UTC))
    assert second.holder is not None and second.transitions == 2


async def test_the_holder_renews_in_the_background(lease_client: Any) -> None:
    async with cluster_run(lease_client, namespace=NS, claim=Claim(holder("dddd0004")), duration=timedelta(seconds=3)):
        first = await read_lease(lease_client, NS)
        await asyncio.sleep(2.5)  # two renewals at one per second
        later = await read_lease(lease_client, NS)
    assert first is not None and later is not None and first.renewed is not None and later.renewed is not None
    assert later.renewed - first.renewed >= timedelta(seconds=1.5)
    assert later.acquired == first.acquired


@pytest.mark.parametrize("ending", ["error", "cancel"])
async def test_every_way_out_releases_the_lease(lease_client: Any, ending: str) -> None:
    mine = holder("eeee0005")

    async def run() -> None:
        async with cluster_run(lease_client, namespace=NS, claim=Claim(mine)):
            if ending == "error":
                raise Refusal("a node refused")
            await asyncio.sleep(30)

    task = asyncio.create_task(run())
    await asyncio.sleep(0.5)
    if ending == "cancel":
        task.cancel()  # what asyncio.run does on Ctrl-C
    expected: type[BaseException] = Refusal if ending == "error" else asyncio.CancelledError
    with pytest.raises(expected):
        await asyncio.wait_for(task, 10)
    lease = await read_lease(lease_client, NS)
    assert lease is not None and lease.holder is None and lease.run_id == mine.run_id
    assert lease.run_status is RunStatus.FAILED  # the default when the run did not say how it ended


async def test_two_writers_of_one_version_one_gets_a_conflict(lease_client: Any) -> None:
    _, lease = await claim_lease(lease_client, NS, Claim(holder("ffff0006")), clock=lambda: datetime.now(UTC))
    await write_lease(lease_client, NS, replace(lease, renewed=datetime.now(UTC)))
    with pytest.raises(Conflict):
        await write_lease(lease_client, NS, replace(lease, holder=holder("gggg0007")))


async def test_a_lease_taken_meanwhile_stops_the_run(lease_client: Any) -> None:
    duration = timedelta(seconds=3)
    with pytest.raises(Refusal, match="Lease taken by migrate run 20261207T100000Z-hhhh0009 by alice on other"):
        async with cluster_run(lease_client, namespace=NS, claim=Claim(holder("hhhh0008")), duration=duration):
            current = await read_lease(lease_client, NS)
            assert current is not None
            await write_lease(lease_client, NS, replace(current, holder=holder("hhhh0009", "other")))
            await asyncio.sleep(10)  # cancelled at the next renewal, a second from now


async def test_a_resume_from_a_second_journal_waits_for_expiry_and_takes_in_the_records(
    lease_client: Any, tmp_path: Path
) -> None:
    # Machine A: begins the run, records a node's preflight and the start of its drain, then is "killed":
    # its Lease (2 s) is never renewed nor released.
    first = Journal(tmp_path / "a" / "journal.sqlite")
    run_id = holder("iiii0010").run_id
    _, lease = await claim_lease(
        lease_client, NS, Claim(holder("iiii0010")), clock=lambda: datetime.now(UTC), duration=timedelta(seconds=2)
    )
    run = first.begin_run(IDENTITY, options={"all_nodes": True, "selection": ["w1"]}, run_id=run_id)
    state = RunState(lease_client, NS, run_id)
    await state.write_run(RunCopy(run.id, run.options, run.started_at, "running", by="alice on laptop"))
    first.record(run_id, "w1", "preflight", StepPhase.FINISHED, {"plan": {"before": "dockershim"}})
    first.record(run_id, "w1", "drain", StepPhase.STARTED)
    records = [CopiedRecord(r.step, str(r.phase), r.detail, r.at) for r in first.timeline(run_id, "w1")]
    await state.write_node("w1", records)
    first.close()
    # Machine B: another state directory, `--resume`.
    second = Journal(tmp_path / "b" / "journal.sqlite")
    waits: list[str] = []
    started = asyncio.get_running_loop().time()
    async with held_run(
        lease_client, second, IDENTITY, RunOpening(NS, "migrate", resume=True), on_wait=waits.append
    ) as resumed:
        waited = asyncio.get_running_loop().time() - started
        assert resumed.run_id == run_id
        taken = await read_lease(lease_client, NS)
        assert taken is not None and taken.holder is not None and taken.holder.host != "laptop"
        assert "stopped renewing" in taken.taken_over and "taken over by" in taken.taken_over
        again = second.resume_run(run_id)
        await resumed.held.record_run(run_copy(again, resumed.held))
        assert [(r.step, r.phase, r.detail) for r in second.timeline(run_id, "w1")] == [
            ("preflight", StepPhase.FINISHED, {"plan": {"before": "dockershim"}}),
            ("drain", StepPhase.STARTED, {}),
        ]
        assert again.options == {"all_nodes": True, "selection": ["w1"]}
        second.record(run_id, "w1", "drain", StepPhase.FINISHED)
        await resumed.held.copier(second, run_id)("w1")
        second.finish_run(run_id, status=RunStatus.SUCCEEDED)
    assert waits and "to expire" in waits[0] and 0.5 < waited < 10
    copy = await read_run_state(lease_client, NS, run_id)
    assert copy is not None and copy.status == "succeeded" and [r.step for r in copy.nodes["w1"]][-1] == "drain"
    released = await read_lease(lease_client, NS)
    assert released is not None and released.holder is None and released.run_status is RunStatus.SUCCEEDED
    second.close()
    assert lease.duration == timedelta(seconds=2)


async def test_the_rbac_allows_this_namespace_only_and_no_deletes(lease_client: Any, world: World) -> None:
    await claim_lease(lease_client, NS, Claim(holder("jjjj0011")), clock=lambda: datetime.now(UTC))
    await RunState(lease_client, NS, "jjjj0011").write_run(RunCopy("jjjj0011", {}, datetime.now(UTC), "running"))
    with pytest.raises(ApiFailure) as elsewhere:
        await claim_lease(lease_client, world.namespace, Claim(holder("jjjj0012")), clock=lambda: datetime.now(UTC))
    assert elsewhere.value.status == 403
    with pytest.raises(ApiFailure) as state_elsewhere:
        await RunState(lease_client, world.namespace, "x").write_run(RunCopy("x", {}, datetime.now(UTC), "running"))
    assert state_elsewhere.value.status == 403
    for path in (lease_path(NS, "shimshift"), f"/api/v1/namespaces/{NS}/configmaps/{configmap_name('jjjj0011')}"):
        assert (await raw_request(lease_client, "DELETE", path)).status == 403
    # Another Lease of the namespace is not this user's to read (resourceNames).
    assert (await raw_request(lease_client, "GET", lease_path(NS, "kube-scheduler"))).status == 403


async def test_a_drain_holds_the_lease_refuses_a_second_and_sigterm_releases_it(
    lease_client: Any, world: World, apiserver: LocalApiServer, kube: Any, tmp_path: Path
) -> None:
    node, other = await world.node("held"), await world.node("other")
    owner = await world.owner("ReplicaSet", "web")
    await world.pod("web-0", node=node, owner=owner, labels={"app": "web"})
    await world.pod("web-1", node=other, owner=owner, labels={"app": "web"})
    await world.wait_pdb(await world.pdb("web", labels={"app": "web"}, min_available=2), allowed=0)
    argv = [sys.executable, "-m", "shimshift.cli.main", "--state-dir", str(tmp_path)]
    kubeconfig = ["--kubeconfig", str(apiserver.kubeconfig)]
    first = subprocess.Popen([*argv, "drain", node, *kubeconfig], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            lease = await read_lease(kube, NS)
            if lease is not None and lease.holder is not None and lease.holder.pid == first.pid:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the first drain never took the Lease")
        second = await asyncio.to_thread(
            subprocess.run, [*argv, "drain", other, *kubeconfig], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2, second.stderr
        assert f"drain run {lease.holder.run_id} by {lease.holder.user}" in second.stderr
        assert (await world.get_node(other))["spec"].get("unschedulable") is not True  # changed nothing
        first.send_signal(signal.SIGTERM)
        await asyncio.to_thread(first.wait, 30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    after = await read_lease(kube, NS)
    assert after is not None and after.holder is None and after.run_status is RunStatus.FAILED
    assert first.returncode != 0


async def cli(apiserver: LocalApiServer, *args: str) -> Result:
    # The CLI runs its own event loop (asyncio.run), so it runs in a thread next to the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, main, [*args, "--kubeconfig", str(apiserver.kubeconfig)])


async def test_migrate_is_refused_while_another_run_holds_the_lease_and_records_nothing(
    lease_client: Any, world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    node = await world.node("w", kubelet="v1.24.17")
    await claim_lease(lease_client, NS, Claim(holder("kkkk0013")), clock=lambda: datetime.now(UTC))
    journal = tmp_path / "journal.sqlite"
    refused = await cli(apiserver, "migrate", node, "--journal", str(journal))
    assert refused.exit_code == 2, refused.output
    assert "migrate run 20261207T100000Z-kkkk0013 by alice on laptop (pid 100) is changing" in refused.stderr
    assert Journal(journal).runs() == []
    assert not (await world.get_node(node))["spec"].get("unschedulable")


async def test_status_shows_a_stopped_holder_and_take_over_takes_its_place(
    lease_client: Any, world: World, apiserver: LocalApiServer, tmp_path: Path
) -> None:
    node = await world.node("w", kubelet="v1.24.17")
    stopped = holder("llll0014")
    await claim_lease(
        lease_client, NS, Claim(stopped), clock=lambda: datetime.now(UTC), duration=timedelta(seconds=1)
    )
    await asyncio.sleep(1.5)
    journal = tmp_path / "journal.sqlite"
    shown = await cli(apiserver, "status", "--journal", str(journal))
    assert shown.exit_code == 0, shown.output
    assert f"Lease {NS}/shimshift: held by migrate run {stopped.run_id} by alice on laptop" in shown.stdout
    assert "stopped renewing the Lease" in shown.stdout and f"--take-over {stopped.run_id}" in shown.stdout
    refused = await cli(apiserver, "migrate", node, "--journal", str(journal))
    assert refused.exit_code == 2 and "stopped renewing" in refused.stderr, refused.output
    ssh = tmp_path / "ssh_config"
    ssh.write_text("Host *\n  HostName 127.0.0.1\n  Port 1\n")  # refused at SSH: nothing done to the node
    taken = await cli(
        apiserver, "migrate", node, "--take-over", stopped.run_id, "--journal", str(journal), "--ssh-config", str(ssh)
    )
    assert taken.exit_code == 1, taken.output
    lease = await read_lease(lease_client, NS)
    assert lease is not None and lease.holder is None and lease.run_status is RunStatus.FAILED
    assert stopped.run_id in lease.taken_over and "taken over by migrate run" in lease.taken_over
    (run,) = Journal(journal).runs()
    assert run.id == lease.run_id and run.status is RunStatus.FAILED
    after = await cli(apiserver, "status", "--journal", str(journal))
    assert f"run {run.id}: failed" in after.stdout and "from the cluster" in after.stdout, after.output


class CuttableRelay:
    """Loopback TCP to the API server until ``cut()``: then no connection, open or new, gets through (what a
    run sees while `kubeadm upgrade apply` restarts the API server)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, upstream_writer]
        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))

    def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()


async def test_a_failed_renewal_is_said_once_with_its_cause(
    apiserver: LocalApiServer, lease_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relay = CuttableRelay(apiserver.port)
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{await relay.start()}"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    client = make_client(tmp_path / "kubeconfig")
    said: list[str] = []
    try:
        async with cluster_run(
            client, namespace=NS, claim=Claim(holder("iiii0010")), duration=timedelta(seconds=3), on_wait=said.append
        ):
            relay.cut()
            await asyncio.sleep(2.5)  # renewals at one per second, each failing
    finally:
        await client.close()
    failures = [text for text in said if text.startswith("could not renew the cluster's Lease")]
    assert failures, said
    assert all("()" not in text for text in failures), failures  # an error without text is named by its kind
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert not [text for text in warned if "could not renew" in text], warned  # not said twice
