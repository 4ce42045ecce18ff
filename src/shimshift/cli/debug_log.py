"""`shimshift -v`: debug logs of every library (httpx, asyncssh, ...) and of shimshift, to a file.

A file, not the terminal: the progress display owns stderr, and a log worth keeping is one the operator
can attach to a bug report. That is also why every line passes through :func:`redact` first: a
kubeconfig's bearer token, a client key or a password must never reach it, whatever a library prints.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REDACTED = "<redacted>"
_SECRETS = (
    # HTTP authorization, whatever the scheme: `Authorization: Bearer abc`, `{'authorization': 'Basic ...'}`.
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,}]+"),
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',}]+"),
    # kubeconfig and command-line shapes: `token: abc`, `--token=abc`, `"password": "abc"`, `client-key-data: ...`.
    re.compile(
        r"(?i)(\b(?:token|id-token|refresh-token|password|passphrase|secret|client-key-data|client_key_data)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    ),
    re.compile(r"(?i)(\B--(?:token|password|passphrase)\s+)[^\s\"',}]+"),
)
# Noisy below INFO, and never useful for a migration: the event loop's selector chatter.
_QUIET = {"asyncio": logging.INFO}
_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s"


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``<redacted>``."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record: message, arguments, exception and stack text alike."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # UTC, like the journal and the reports, so a log line and a journal record line up.
        return time.strftime(datefmt or "%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@dataclass
class DebugLog:
    path: Path
    handler: logging.Handler

    def stop(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        self.handler.close()


def start_debug_log(
    directory: Path, argv: Sequence[str], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> DebugLog:
    """Send every logger's DEBUG records to a new file in ``directory`` until ``stop()``.

    One file per invocation (``shimshift-<UTC time>-<pid>.log``), readable by its owner only.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"shimshift-{clock():%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    # Created 0600 before any line is written: logs name hosts, users and files of the cluster.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(RedactingFormatter(_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("shimshift").debug("shimshift started: %s", " ".join(argv))
    return DebugLog(path, handler)
