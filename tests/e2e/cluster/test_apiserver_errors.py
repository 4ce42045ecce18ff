"""Every error a user meets first, through the CLI, against a real kube-apiserver: one line, no traceback.

Matrix (each: exit code, exactly one line on stderr naming the API server's URL or the node, nothing changed):
a stopped API server (a free loopback port nobody listens on) for `audit` and for `migrate`, whose journal
keeps no unfinished run, so the next `migrate` is not refused; a CA that did not sign the server's
certificate; a context without a user (an anonymous request: 403); a token the server does not know (401); a
user whose ClusterRole lacks `patch nodes` (403 naming verb and resource); an unknown node for `cordon` and
`migrate`; a KUBECONFIG list (two files merged, a missing one skipped) and one naming only missing files; a
node whose SSH port refuses the connection and one whose port accepts but never answers (`migrate` refuses
that node, exit 1, and the node is untouched).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from click.testing import CliRunner, Result

from shimshift.adapters.journal import Journal
from shimshift.cli.main import main
from tests.apiserver_fixture import OPERATOR, _make_pki, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.apiserver_fixture import LocalApiServer
    from tests.kube_world import World


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    # The CLI runs its own event loop (asyncio.run), so it runs in a thread next to the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


def one_line(result: Result, code: int, *expected: str) -> str:
    """The single stderr line of a failed command, checked for the exit code and the names it must carry."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def kubeconfig_with(apiserver: LocalApiServer, path: Path, **cluster: str) -> Path:
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["clusters"][0]["cluster"].update(cluster)
    path.write_text(yaml.safe_dump(config))
    return path


def migrate_args(kubeconfig: Path, tmp_path: Path, *nodes: str, ssh_config: Path | None = None) -> list[str]:
    ssh = ["--ssh-config", str(ssh_config), "--known-hosts", str(tmp_path / "known_hosts")] if ssh_config else []
    return [
        "migrate", *nodes, "--kubeconfig", str(kubeconfig), "--journal", str(tmp_path / "journal.sqlite"),
        "--report-dir", str(tmp_path / "reports"), *ssh,
    ]  # fmt: skip


def unfinished_runs(tmp_path: Path) -> list[str]:
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        return [run.id for run in journal.runs() if run.finished_at is None]
    finally:
        journal.close()


async def test_a_stopped_api_server(apiserver: LocalApiServer, world: World, tmp_path: Path) -> None:
    node = await world.node("a")
    url = f"https://127.0.0.1:{free_port()}"
    kubeconfig = kubeconfig_with(apiserver, tmp_path / "kubeconfig", server=url)
    audit = await run_cli("audit", "--kubeconfig", str(kubeconfig))
    one_line(audit, 2, url, "connection refused")
    migrate = await run_cli(*migrate_args(kubeconfig, tmp_path, node))
    one_line(migrate, 2, url, "connection refused")
    assert unfinished_runs(tmp_path) == []
    # The run that could not start blocks nothing: the next migrate is refused only for the node itself.
    again = await run_cli(*migrate_args(kubeconfig, tmp_path, node))
    assert "did not finish" not in again.output


async def test_a_ca_that_did_not_sign_the_server_certificate(apiserver: LocalApiServer, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other_ca = _make_pki(tmp_path / "other")["ca.crt"]
    kubeconfig = kubeconfig_with(apiserver, tmp_path / "kubeconfig", **{"certificate-authority": str(other_ca)})
    result = await run_cli("audit", "--kubeconfig", str(kubeconfig))
    one_line(result, 2, apiserver.url, "TLS verification failed", "certificate-authority")


async def test_a_token_the_server_does_not_know(apiserver: LocalApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.kubeconfig_for(tmp_path / "kubeconfig", "not-a-valid-token")
    result = await run_cli("audit", "--kubeconfig", str(kubeconfig))
    one_line(result, 2, apiserver.url, "401")


async def test_a_context_without_a_user_is_an_anonymous_request(apiserver: LocalApiServer, tmp_path: Path) -> None:
    # kubectl sends such a context's requests without credentials; lightkube asserted a user exists.
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    del config["contexts"][0]["context"]["user"]
    config["users"] = []
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    result = await run_cli("audit", "--kubeconfig", str(kubeconfig))
    one_line(result, 2, apiserver.url, 'user "system:anonymous" may not list nodes')


async def test_rbac_lacking_one_verb_is_named(apiserver: LocalApiServer, world: World, tmp_path: Path) -> None:
    node = await world.node("a")
    role = world.name("no-patch")
    await world.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}],
    })  # fmt: skip
    await world.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR}],
    })  # fmt: skip
    try:
        kubeconfig = apiserver.kubeconfig_for(tmp_path / "kubeconfig", apiserver.operator_token)
        result = await _when_rbac_applies(lambda: run_cli("cordon", node, "--kubeconfig", str(kubeconfig)))
        one_line(result, 2, apiserver.url, f'user "{OPERATOR}" may not patch nodes')
        assert not (await world.get_node(node))["spec"].get("unschedulable")
    finally:
        for kind in ("clusterrolebindings", "clusterroles"):
            await world.call("DELETE", f"/apis/rbac.authorization.k8s.io/v1/{kind}/{role}")


async def _when_rbac_applies(attempt: Any) -> Result:
    # The RBAC authorizer reads bindings from its informer cache: a new binding applies within moments.
    for _ in range(50):
        result: Result = await attempt()
        if "may not get" not in result.output:
            return result
        await asyncio.sleep(0.1)
    return result


async def test_an_unknown_node(apiserver: LocalApiServer, tmp_path: Path) -> None:
    cordon = await run_cli("cordon", "no-such-node", "--kubeconfig", str(apiserver.kubeconfig))
    one_line(cordon, 2, "no-such-node does not exist")
    migrate = await run_cli(*migrate_args(apiserver.kubeconfig, tmp_path, "no-such-node"))
    one_line(migrate, 2, "no-such-node does not exist")
    assert unfinished_runs(tmp_path) == []


async def test_a_kubeconfig_list_is_merged_and_missing_files_skipped(
    apiserver: LocalApiServer, world: World, tmp_path: Path
) -> None:
    node = await world.node("a")
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    users = {"users": config.pop("users")}
    (tmp_path / "clusters").write_text(yaml.safe_dump(config))
    (tmp_path / "users").write_text(yaml.safe_dump(users))
    listed = f"{tmp_path / 'missing'}:{tmp_path / 'clusters'}:{tmp_path / 'users'}"
    selector = f"shimshift-test={world.suffix}"
    merged = await run_cli("audit", "-l", selector, "-o", "json", env={"KUBECONFIG": listed})
    assert merged.exit_code == 0, merged.output
    assert [item["name"] for item in json.loads(merged.stdout)["nodes"]] == [node]
    only_missing = f"{tmp_path / 'missing'}:{tmp_path / 'gone'}"
    refused = await run_cli("audit", env={"KUBECONFIG": only_missing})
    one_line(refused, 2, "$KUBECONFIG names no file that exists", str(tmp_path / "gone"))


def ssh_config_for(path: Path, node: str, port: int) -> Path:
    (path.parent / "known_hosts").touch()  # empty: no host key is ever accepted, and none is reached
    path.write_text(f"Host {node}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n")
    return path


async def test_ssh_refused(apiserver: LocalApiServer, world: World, tmp_path: Path) -> None:
    node = await world.node("a")
    port = free_port()
    ssh_config = ssh_config_for(tmp_path / "ssh_config", node, port)
    result = await run_cli(*migrate_args(apiserver.kubeconfig, tmp_path, node, ssh_config=ssh_config))
    assert result.exit_code == 1, result.output
    assert f"node {node}: SSH to 127.0.0.1:{port}: connection refused" in result.output
    assert "Traceback" not in result.output
    assert not (await world.get_node(node))["spec"].get("unschedulable")
    assert unfinished_runs(tmp_path) == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose connections the kernel accepts and nobody ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


async def test_ssh_that_never_answers(
    apiserver: LocalApiServer, world: World, tmp_path: Path, silent_port: int
) -> None:
    node = await world.node("a")
    ssh_config = ssh_config_for(tmp_path / "ssh_config", node, silent_port)
    result = await run_cli(*migrate_args(apiserver.kubeconfig, tmp_path, node, ssh_config=ssh_config))
    assert result.exit_code == 1, result.output
    assert f"node {node}: SSH to 127.0.0.1:{silent_port}: no answer within 15 s" in result.output
    assert "Traceback" not in result.output
    assert not (await world.get_node(node))["spec"].get("unschedulable")
