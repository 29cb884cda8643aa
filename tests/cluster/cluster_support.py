"""Helpers of the cluster tests (a module of its own: several conftest.py exist)."""

from __future__ import annotations

from collections.abc import Callable

import support


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, step: float = 0.1) -> bool:
    """``support.wait_until`` with the cluster's longer patience (workers are subprocesses)."""
    return support.wait_until(predicate, timeout, step)
