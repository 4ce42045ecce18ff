"""Waits say what they wait for (orchestrator/waits.py).

Matrix: a block shorter than ``after`` says nothing; a longer one says what and since when, then again
every ``every``, and stops when it ends; the log has each line and the total; the executor's health wait
reaches the operator as a progress event of the running step.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from shimshift.orchestrator.waits import announced, waiting_text

T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def test_the_text_names_what_and_since_when() -> None:
    assert waiting_text("node w1 to be healthy", T0, T0 + timedelta(seconds=107)) == (
        "waiting for node w1 to be healthy (since 10:00:00 UTC, 107 s)"
    )


async def test_a_short_block_says_nothing() -> None:
    said: list[str] = []
    async with announced("x", said.append, after=0.2, every=0.2):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert said == []


async def test_a_long_block_says_what_it_waits_for_until_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    said: list[str] = []
    caplog.set_level(logging.INFO, logger="shimshift.orchestrator.waits")
    async with announced("the API server", said.append, after=0.1, every=0.1):
        await asyncio.sleep(0.35)
    count = len(said)
    await asyncio.sleep(0.3)
    assert 3 <= count <= 4 and len(said) == count  # at 0.1, 0.2, 0.3 s; nothing after the end
    assert all(text.startswith("waiting for the API server (since ") for text in said)
    logged = [record.getMessage() for record in caplog.records]
    assert logged[:count] == said and logged[-1].startswith("waited 0.") and logged[-1].endswith("for the API server")
