"""`shimshift -v` against a real kube-apiserver: the debug log records the API traffic and never the bearer
token of the kubeconfig that authenticated it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner

from shimshift.cli.main import main

if TYPE_CHECKING:
    from tests.apiserver_fixture import LocalApiServer


async def test_debug_log_has_the_requests_and_never_the_token(apiserver: LocalApiServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["--state-dir", str(state), "-v", "audit", "-o", "json", "--kubeconfig", str(apiserver.kubeconfig)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output + result.stderr
    match = re.search(r"debug log: (\S+)", result.stderr)
    assert match is not None, result.stderr
    text = Path(match.group(1)).read_text()
    assert f"{apiserver.url}/api/v1/nodes" in text  # the log holds the real traffic...
    assert apiserver.token in apiserver.kubeconfig.read_text()
    assert apiserver.token not in text  # ...and not the credential that carried it
