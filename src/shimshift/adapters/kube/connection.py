"""A command's use of the API server, opened and closed in one place, its failures in one line.

``open_client`` resolves the kubeconfig once (kubectl's rules), builds the client, and turns whatever
escapes the block about the API server (unreachable, TLS, 401, 403, ...) into
:class:`~shimshift.core.errors.Unavailable` naming its URL (``errors.translate``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from shimshift.adapters.kube.client import make_client
from shimshift.adapters.kube.errors import translate
from shimshift.adapters.kube.kubeconfig import Kubeconfig, load_kubeconfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from lightkube import AsyncClient


@contextlib.asynccontextmanager
async def open_client(
    kubeconfig: Path | None = None, *, context: str | None = None, resolved: Kubeconfig | None = None
) -> AsyncIterator[AsyncClient]:
    """The client for ``--kubeconfig``/``--context`` (or an already ``resolved`` kubeconfig), closed on exit."""
    config = resolved if resolved is not None else load_kubeconfig(kubeconfig, context=context)
    client = make_client(resolved=config)
    try:
        yield client
    except Exception as error:
        translated = translate(error, config.server)
        if translated is None:
            raise
        raise translated from error
    finally:
        await client.close()
