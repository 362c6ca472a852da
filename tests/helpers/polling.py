"""Waiting for state that changes on a timer elsewhere (another process's periodic sync), where there is
no event to wait on."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within_s: float = 60, period: float = 0.3
) -> T:
    """Call `probe` until `ok(result)` holds; AssertionError after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        result = await probe()
        if ok(result):
            return result
        assert time.monotonic() < deadline, "condition not reached in time"
        await trio.sleep(period)
