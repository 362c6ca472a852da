"""Filesystem client test helpers: a home server with a signed-up user, and HTTP transports that count
requests or play a malicious server (altering responses on their way to the client)."""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from peergos_node.client.user_context import UserContext
from tests.helpers.home import RunningHome, home_server

PASSWORD = "correct horse battery"

Rewrite = Callable[[str, dict[str, list[str]], bytes], bytes | None]
"""(path, query, body) -> replacement body, or None to pass the real answer through."""


class SpyTransport(httpx.AsyncBaseTransport):
    """Forwards to the real network; counts requests per path and lets a test rewrite response bodies."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, dict[str, list[str]]]] = []
        self.rewrite: Rewrite | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        query = urllib.parse.parse_qs(request.url.query.decode())
        self.counts[path] += 1
        self.log.append((path, query))
        resp = await self.inner.handle_async_request(request)
        if self.rewrite is None:
            return resp
        body = await resp.aread()
        changed = self.rewrite(path, query, body)
        if changed is None:
            return httpx.Response(resp.status_code, headers=resp.headers, content=body)
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "etag")}
        return httpx.Response(resp.status_code, headers=headers, content=changed)

    def reset(self) -> None:
        """Forget the counts and the log."""
        self.counts.clear()
        self.log.clear()

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class FsUser:
    """A running home server and a user logged in to it."""

    home: RunningHome
    ctx: UserContext
    spy: SpyTransport

    async def login_again(self, spy: SpyTransport | None = None) -> UserContext:
        """A second, independent client session of the same user (another device)."""
        return await UserContext.login(
            self.home.url, self.ctx.username, PASSWORD, transport=spy or SpyTransport()
        )

    def usage(self) -> int:
        """The server's usage figure for the user."""
        return self.home.server.storage.usage_of(self.ctx.owner)


@asynccontextmanager
async def fs_user(tmp_path: Path, username: str = "alice", *args: str) -> AsyncIterator[FsUser]:
    """A home server in `tmp_path` and `username` signed up on it (through a SpyTransport)."""
    async with home_server(tmp_path / "home", *args) as home:
        spy = SpyTransport()
        ctx = await UserContext.signup(home.url, username, PASSWORD, home.token(), transport=spy)
        try:
            yield FsUser(home, ctx, spy)
        finally:
            await ctx.aclose()


def flip_byte(data: bytes, at: int = -1) -> bytes:
    """`data` with one byte changed."""
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)
