"""Refusal: how it reads, and that it survives being raised through context managers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from shimshift.core.errors import Refusal


def test_names_node_file_and_line_then_the_hint() -> None:
    error = Refusal("two KUBELET_KUBEADM_ARGS lines", hint="keep one", file="/f.env", line=3, node="w1")
    assert str(error) == "node w1, /f.env:3: two KUBELET_KUBEADM_ARGS lines (keep one)"


def test_raised_inside_a_context_manager() -> None:
    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        yield

    with pytest.raises(Refusal, match="inside"), scope():
        raise Refusal("inside")
