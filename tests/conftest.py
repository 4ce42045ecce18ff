"""Hooks for every test run: the tier check of tests/tiers.py."""

from __future__ import annotations

from tests.tiers import pytest_collection_modifyitems

__all__ = ["pytest_collection_modifyitems"]
