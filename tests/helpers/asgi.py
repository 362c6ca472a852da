"""Serve an ASGI app with hypercorn on a real loopback socket inside a trio test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


@asynccontextmanager
async def serving(app: Any, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) of `app` served on a free port; stop on exit."""
    config = Config()
    config.bind = [f"{host}:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    async with trio.open_nursery() as nursery:
        shutdown = trio.Event()
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0]
        finally:
            shutdown.set()
