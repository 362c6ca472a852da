"""Nurseries whose failures read like plain exceptions (used by the client's concurrent fetches)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


@asynccontextmanager
async def task_group() -> AsyncIterator[trio.Nursery]:
    """A nursery whose failure surfaces as the first task's own exception (not an ExceptionGroup), so
    callers can catch `StorageQuotaExceeded`, `TamperedData`, ... directly; cancellations are preferred
    last."""
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        chosen = next((e for e in leaves if not isinstance(e, trio.Cancelled)), leaves[0])
        raise chosen from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
