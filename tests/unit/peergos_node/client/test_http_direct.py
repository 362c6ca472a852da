"""`DirectPool`, the keep-alive connection pool `HttpStorage.get_block` downloads through: verified bodies,
connection reuse, typed errors, timeouts, cancellation without leaks, bounded concurrency, and its own
HTTP/1.1 reading (heads split anywhere, 1xx answers, chunked and close-delimited bodies, `Connection:
close`, HTTP/1.0, truncation, size limits).

The server is a small HTTP/1.1 responder on a trio listener in the test's own run (the pool's worker
threads talk to it over loopback), so each test can make it misbehave exactly as it needs.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import trio

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.client.http import (
    MAX_HEAD,
    DirectPool,
    HttpStorage,
    PeergosHttp,
    RemoteError,
    RemoteQuotaExceeded,
    RemoteRateLimited,
    _parse_head,
)
from peergos_node.crypto.public_key_hash import PublicKeyHash

OWNER = PublicKeyHash.parse("zdpuAu8M4dbJ4xgxh7Cy3uxXyYeNAqNHHzZkTqQmPmDqLchCu")
BLOCKS = [bytes([i]) * (300_000 + i) for i in range(8)]
CIDS = [Cid.for_block(CODEC_RAW, b) for b in BLOCKS]
BY_CID = {str(c): b for c, b in zip(CIDS, BLOCKS, strict=True)}


@dataclass
class Conn:
    """One server-side connection: its stream and unread bytes."""

    stream: trio.SocketStream
    number: int
    buf: bytes = b""

    async def request(self) -> str | None:
        """The next request's target (the client sends no bodies), or None at EOF."""
        while b"\r\n\r\n" not in self.buf:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head.split(b" ")[1].decode()

    async def reply(self, body: bytes, status: int = 200, headers: str = "") -> None:
        await self.stream.send_all(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body
        )


Handler = Callable[["Server", Conn], Awaitable[None]]


@dataclass
class Server:
    port: int
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    requests: int = 0
    closed: trio.Event = field(default_factory=trio.Event)  # set when any connection's client goes away


def block_for(target: str) -> bytes:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    return BY_CID.get(query["arg"][0], b"")


async def honest(server: Server, conn: Conn) -> None:
    while (target := await conn.request()) is not None:
        server.requests += 1
        await conn.reply(block_for(target))
    server.closed.set()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    server = Server(listeners[0].socket.getsockname()[1])

    async def on_connection(stream: trio.SocketStream) -> None:
        server.connections += 1
        server.open_now += 1
        server.max_open = max(server.max_open, server.open_now)
        try:
            await handler(server, Conn(stream, server.connections))
        except trio.BrokenResourceError:
            server.closed.set()
        finally:
            server.open_now -= 1
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, on_connection, listeners)
        yield server
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def storage_for(server: Server, **pool_options: float) -> AsyncIterator[HttpStorage]:
    async with httpx.AsyncClient() as client:
        http = PeergosHttp(f"http://127.0.0.1:{server.port}", client)
        assert http.pool is not None
        for k, v in pool_options.items():
            setattr(http.pool, k, v)
        try:
            yield HttpStorage(http)
        finally:
            http.pool.close()


async def test_blocks_are_verified_and_connections_reused() -> None:
    async with serving(honest) as server, storage_for(server) as storage:
        for cid, block in zip(CIDS, BLOCKS, strict=True):
            assert await storage.get_block(OWNER, cid) == block
        assert server.connections == 1 and server.requests == len(BLOCKS)
        absent = Cid.for_block(CODEC_RAW, b"not on the server")
        assert await storage.get_block(OWNER, absent) is None  # empty body = absent
        assert (
            await storage.get_block(OWNER, Cid.v1(CODEC_RAW, b"\x00\x06inline")) == b"inline"
        )  # no request at all
        assert server.requests == len(BLOCKS) + 1


async def test_concurrency_is_bounded_by_the_pool() -> None:
    async with serving(honest) as server, storage_for(server, max_connections=3) as storage:
        got: dict[int, bytes | None] = {}

        async def one(i: int) -> None:
            got[i] = await storage.get_block(OWNER, CIDS[i % len(CIDS)])

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(one, i)
        assert all(got[i] == BLOCKS[i % len(BLOCKS)] for i in range(40))
        assert server.max_open <= 3 and server.connections <= 3


async def test_a_tampered_block_is_refused() -> None:
    async def tampering(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            body = bytearray(block_for(target))
            body[-1] ^= 1
            await conn.reply(bytes(body))

    async with serving(tampering) as server, storage_for(server) as storage:
        with pytest.raises(DecodeError, match="does not hash to"):
            await storage.get_block(OWNER, CIDS[0])
        with pytest.raises(DecodeError):
            await storage.get_block(OWNER, CIDS[1])
        assert server.connections == 1  # the answer was complete: the connection is still good


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (400, "block zb2 needs a valid BAT", RemoteError),
        (400, "Storage quota reached! Used 5 out of 4 bytes.", RemoteQuotaExceeded),
        (429, "Too Many Requests", RemoteRateLimited),
    ],
)
async def test_refusals_become_typed_errors(status: int, message: str, error: type[RemoteError]) -> None:
    async def refusing(server: Server, conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.reply(b"", status, f"Trailer: {urllib.parse.quote_plus(message)}\r\n")

    async with serving(refusing) as server, storage_for(server) as storage:
        with pytest.raises(error) as info:
            await storage.get_block(OWNER, CIDS[0])
        assert type(info.value) is error and info.value.status == status and info.value.message == message


async def test_an_answer_too_large_is_refused() -> None:
    async def huge(server: Server, conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n" + bytes(1000))
            await trio.sleep(1)

    async with serving(huge) as server, storage_for(server) as storage:
        with pytest.raises(RemoteError, match="answer too large"):
            await storage.get_block(OWNER, CIDS[0])


async def test_a_connection_the_server_dropped_is_replaced() -> None:
    async def one_per_connection(server: Server, conn: Conn) -> None:
        target = await conn.request()
        if target is not None:
            await conn.reply(block_for(target))  # keep-alive promised, then closed while idle

    async with serving(one_per_connection) as server, storage_for(server) as storage:
        for i in range(3):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
            await trio.sleep(0.05)  # the close has arrived: seen on checkout
        assert server.connections == 3


async def test_a_request_racing_the_servers_close_is_retried_once() -> None:
    async def close_on_second_request(server: Server, conn: Conn) -> None:
        target = await conn.request()
        if target is not None:
            await conn.reply(block_for(target))
            await conn.request()  # closes without answering, as a server ending an idle connection

    async with serving(close_on_second_request) as server, storage_for(server) as storage:
        assert await storage.get_block(OWNER, CIDS[0]) == BLOCKS[0]
        assert await storage.get_block(OWNER, CIDS[1]) == BLOCKS[1]  # failed on the old one, retried
        assert server.connections == 2


async def test_a_failure_on_a_new_connection_is_a_remote_error() -> None:
    async def slam(server: Server, conn: Conn) -> None:
        await conn.request()

    async with serving(slam) as server, storage_for(server) as storage:
        with pytest.raises(RemoteError, match="cannot reach") as info:
            await storage.get_block(OWNER, CIDS[0])
        assert info.value.status == 0 and server.connections == 1  # no retry on a new connection


async def test_an_unreachable_server_is_a_remote_error() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()  # nothing listens there now
    async with httpx.AsyncClient() as client:
        http = PeergosHttp(f"http://127.0.0.1:{port}", client)
        with pytest.raises(RemoteError, match=r"cannot reach .*ConnectionRefusedError"):
            await HttpStorage(http).get_block(OWNER, CIDS[0])


async def test_a_stalled_answer_times_out() -> None:
    async def stall(server: Server, conn: Conn) -> None:
        await conn.request()
        await trio.sleep_forever()

    async with serving(stall) as server, storage_for(server, io_timeout=0.3) as storage:
        t0 = time.monotonic()
        with pytest.raises(RemoteError, match=r"cannot reach .*TimeoutError"):
            await storage.get_block(OWNER, CIDS[0])
        assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + bytes(5000)])
async def test_cancelling_a_download_closes_its_connection(sent: bytes) -> None:
    stalled = trio.Event()

    async def stall_first(server: Server, conn: Conn) -> None:
        if conn.number == 1:
            if await conn.request() is not None:
                await conn.stream.send_all(sent)  # nothing, or the head and part of the body
                stalled.set()
                while await conn.stream.receive_some(100):  # until the client closes its side
                    pass
            server.closed.set()
            return
        await honest(server, conn)

    async with serving(stall_first) as server, storage_for(server) as storage:
        t0 = time.monotonic()
        with trio.move_on_after(10) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(storage.get_block, OWNER, CIDS[0])
                await stalled.wait()
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught and time.monotonic() - t0 < 5  # gave up at once
        with trio.fail_after(5):
            await server.closed.wait()  # the worker closed the interrupted connection
        pool = storage.http.pool
        assert pool is not None and not pool._idle  # and did not pool it
        assert await storage.get_block(OWNER, CIDS[1]) == BLOCKS[1]  # a new connection works
        assert server.connections == 2


async def test_close_closes_idle_connections() -> None:
    async with serving(honest) as server, storage_for(server) as storage:
        assert await storage.get_block(OWNER, CIDS[0]) == BLOCKS[0]
        assert storage.http.pool is not None
        storage.http.pool.close()
        with trio.fail_after(5):
            await server.closed.wait()


class Passthrough(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BLOCKS[0])


async def test_only_plain_clients_of_http_servers_get_a_pool() -> None:
    async with httpx.AsyncClient() as plain:
        assert isinstance(PeergosHttp("http://[::1]:8000", plain).pool, DirectPool)
        assert PeergosHttp("http://127.0.0.1:8000", plain, direct=False).pool is None
        assert PeergosHttp("https://example.org", plain).pool is None
    async with httpx.AsyncClient(transport=Passthrough()) as spied:
        http = PeergosHttp("http://127.0.0.1:8000", spied)
        assert http.pool is None  # a transport in between sees every request
        assert await HttpStorage(http).get_block(OWNER, CIDS[0]) == BLOCKS[0]
        assert hashlib.sha256(BLOCKS[0]).digest() == CIDS[0].digest
    async with httpx.AsyncClient(mounts={"http://": httpx.AsyncHTTPTransport()}) as proxied:
        assert PeergosHttp("http://127.0.0.1:8000", proxied).pool is None
    async with httpx.AsyncClient(headers={"Authorization": "Bearer x"}) as authorised:
        assert PeergosHttp("http://127.0.0.1:8000", authorised).pool is None


# ---- the HTTP/1.1 exchange -------------------------------------------------------------------------------
def serve_each(answer: Callable[[str], Awaitable[bytes] | bytes]) -> Handler:
    """A server answering every request on a connection with the raw bytes `answer(target)` gives."""

    async def handler(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            server.requests += 1
            out = answer(target)
            await conn.stream.send_all(out if isinstance(out, bytes) else await out)
        server.closed.set()

    return handler


def chunked(body: bytes, size: int = 100_000) -> bytes:
    """`body` as a chunked message body, with a chunk extension and a trailer field."""
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks)
    return out + b"0\r\nX-Checksum: none\r\n\r\n"


async def test_a_head_split_anywhere_is_read_exactly() -> None:
    async def dribble(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            server.requests += 1
            body = block_for(target)
            head = b"HTTP/1.1 200 OK\r\nCONTENT-length:  %d \r\nX-Long: %s\r\n\r\n" % (len(body), b"a" * 9000)
            for i in range(0, len(head), 7):  # the end-of-head marker split over sends, once across 4 KiB
                await conn.stream.send_all(head[i : i + 7])
                if i % 1001 < 7:
                    await trio.sleep(0.002)
            await conn.stream.send_all(body)

    async with serving(dribble) as server, storage_for(server) as storage:
        for i in range(3):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
        assert server.connections == 1  # no body byte was taken as head: the connection stays usable


async def test_informational_answers_are_skipped() -> None:
    async def early_hints(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            server.requests += 1
            await conn.stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            await trio.sleep(0.01)
            await conn.stream.send_all(b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
            await conn.reply(block_for(target))

    async with serving(early_hints) as server, storage_for(server) as storage:
        for i in range(3):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
        assert server.connections == 1


async def test_chunked_answers_are_decoded_and_the_connection_reused() -> None:
    def answer(target: str) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(block_for(target))

    async with serving(serve_each(answer)) as server, storage_for(server) as storage:
        for i in range(3):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
        absent = Cid.for_block(CODEC_RAW, b"absent")
        assert await storage.get_block(OWNER, absent) is None  # a chunked empty body
        assert server.connections == 1 and server.requests == 4


async def test_a_body_delimited_by_close_is_read_and_not_reused() -> None:
    async def close_delimited(server: Server, conn: Conn) -> None:
        target = await conn.request()
        if target is not None:
            await conn.stream.send_all(b"HTTP/1.1 200 OK\r\n\r\n" + block_for(target))

    async with serving(close_delimited) as server, storage_for(server) as storage:
        for i in range(2):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
        assert server.connections == 2


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\nContent-Length: %d\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n",
    ],
)
async def test_a_connection_the_server_will_close_is_not_reused(head: bytes) -> None:
    # the server would answer a second request on it; the client must not send one
    handler = serve_each(lambda t: head % len(block_for(t)) + block_for(t))
    async with serving(handler) as server, storage_for(server) as storage:
        for i in range(3):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
        assert server.connections == 3 and server.requests == 3


async def test_an_error_answer_with_a_body_keeps_the_connection() -> None:
    async def refuse_first(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            server.requests += 1
            if server.requests > 1:
                await conn.reply(block_for(target))
                continue
            trailer = urllib.parse.quote_plus("block needs a valid BAT: 50% off")
            await conn.reply(b"Access denied", 400, f"trailer: {trailer}\r\nConnection: keep-alive\r\n")

    async with serving(refuse_first) as server, storage_for(server) as storage:
        with pytest.raises(RemoteError) as info:
            await storage.get_block(OWNER, CIDS[0])
        assert info.value.status == 400 and info.value.message == "block needs a valid BAT: 50% off"
        assert await storage.get_block(OWNER, CIDS[0]) == BLOCKS[0]
        assert server.connections == 1  # the refusal's body was read: the connection stayed usable


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n" + bytes(1000),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(bytes(2_200_000))[:2_500_000],
        b"HTTP/1.1 200 OK\r\n\r\n" + bytes(2_200_000),
    ],
    ids=["content-length", "chunked", "close-delimited"],
)
async def test_every_framing_of_an_oversize_answer_is_refused(answer: bytes) -> None:
    async def huge(server: Server, conn: Conn) -> None:
        while await conn.request() is not None:
            await conn.stream.send_all(answer)

    async with serving(huge) as server, storage_for(server) as storage:
        with pytest.raises(RemoteError, match="answer too large"):
            await storage.get_block(OWNER, CIDS[0])
        pool = storage.http.pool
        assert pool is not None and not pool._idle


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + bytes(1000), "closed after 1000 of 300000"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(bytes(300_000))[:-30], "chunked"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "middle of a response head"),
        (b"HTTP/1.1 200 OK\r\nX: " + bytes(MAX_HEAD), f"larger than {MAX_HEAD}"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, "line longer"),
        (b"ICY 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
        (b"HTTP/1.1 100 Continue\r\n\r\n", "middle of a response head"),
    ],
    ids=[
        "truncated-body",
        "truncated-chunked",
        "truncated-head",
        "head-too-large",
        "conflicting-lengths",
        "bad-chunk-size",
        "chunk-size-with-underscore",
        "chunk-overrun",
        "chunk-line-too-long",
        "not-http",
        "upgrade",
        "only-1xx",
    ],
)
async def test_a_broken_answer_is_a_remote_error(answer: bytes, error: str) -> None:
    async def broken(server: Server, conn: Conn) -> None:
        if await conn.request() is not None:
            server.requests += 1
            await conn.stream.send_all(answer)  # and closes the connection

    async with serving(broken) as server, storage_for(server) as storage:
        with pytest.raises(RemoteError, match="cannot reach") as info:
            await storage.get_block(OWNER, CIDS[0])
        assert error in info.value.message and info.value.status == 0
        assert server.requests == 1  # not retried: the server had answered something
        pool = storage.http.pool
        assert pool is not None and not pool._idle


async def test_a_body_stalled_midway_times_out() -> None:
    async def stall(server: Server, conn: Conn) -> None:
        if await conn.request() is not None:
            await conn.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + bytes(1000))
            await trio.sleep_forever()

    async with serving(stall) as server, storage_for(server, io_timeout=0.3) as storage:
        t0 = time.monotonic()
        with pytest.raises(RemoteError, match=r"cannot reach .*TimeoutError"):
            await storage.get_block(OWNER, CIDS[0])
        assert time.monotonic() - t0 < 5


async def test_a_slow_body_that_keeps_coming_does_not_time_out() -> None:
    async def slow(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            body = block_for(target)
            await conn.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), len(body) // 6 + 1):  # 0.6 s in all, 0.1 s between pieces
                await conn.stream.send_all(body[i : i + len(body) // 6 + 1])
                await trio.sleep(0.1)

    async with serving(slow) as server, storage_for(server, io_timeout=0.3) as storage:
        assert await storage.get_block(OWNER, CIDS[0]) == BLOCKS[0]
        assert await storage.get_block(OWNER, CIDS[1]) == BLOCKS[1]
        assert server.connections == 1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_bytes_after_an_answer_spoil_the_connection(framing: str) -> None:
    def answer(target: str) -> bytes:
        body = block_for(target)
        if framing == "chunked":  # the junk arrives with the last chunk: read ahead, not left in the socket
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%sJUNK" % chunked(body)
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%sJUNK" % (len(body), body)

    async with serving(serve_each(answer)) as server, storage_for(server) as storage:
        for i in range(2):
            assert await storage.get_block(OWNER, CIDS[i]) == BLOCKS[i]
            await trio.sleep(0.05)  # the junk has arrived: the idle connection is readable
        assert server.connections == 2


def test_response_heads_are_parsed_by_the_rules() -> None:
    ok = _parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTrailer: a\r\nTrailer: b")
    assert (ok.status, ok.length, ok.chunked, ok.keep_alive, ok.trailer) == (200, 5, False, True, "a, b")
    folded = _parse_head(b"HTTP/1.1 400 Bad\r\nTrailer: a\r\n  b\r\nContent-Length: 0, 0")
    assert folded.trailer == "a b" and folded.length == 0
    both = _parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked")
    assert both.chunked and both.length is None and not both.keep_alive  # TE wins; then close
    gzip_te = _parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip")
    assert not gzip_te.chunked and gzip_te.length is None and not gzip_te.keep_alive
    assert _parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9").length == 0
    assert _parse_head(b"HTTP/1.1 304 Not Modified").length == 0
    assert not _parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0").keep_alive
    assert _parse_head(b"HTTP/1.1 200 OK").length is None  # close-delimited
    for bad in [
        b"HTTP/1.1 2000 OK",
        b"HTTP/2 200 OK",
        b"HTTP/1.1 200 OK\r\nno colon",
        b"HTTP/1.1 200 OK\r\nName : value",
        b"HTTP/1.1 200 OK\r\n folded first",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2",
    ]:
        with pytest.raises(OSError, match=r"bad|continuation|Content-Length"):
            _parse_head(bad)


async def test_get_blocks_runs_batches_in_order_on_few_connections() -> None:
    async with serving(honest) as server, storage_for(server) as storage:
        absent = Cid.for_block(CODEC_RAW, b"not on the server")
        inline = Cid.v1(CODEC_RAW, b"\x00\x06inline")
        wanted = [(c, None) for c in CIDS] + [(absent, None), (inline, None), (CIDS[0], None)]
        got = await storage.get_blocks(OWNER, wanted, parallel=3)
        assert got == [*BLOCKS, None, b"inline", BLOCKS[0]]
        assert server.requests == len(BLOCKS) + 2  # the inline block needs no request
        assert server.max_open <= 3  # one connection per run of consecutive blocks
        assert await storage.get_blocks(OWNER, []) == []


async def test_get_blocks_without_a_pool_goes_through_httpx() -> None:
    async with serving(honest) as server, httpx.AsyncClient() as client:
        storage = HttpStorage(PeergosHttp(f"http://127.0.0.1:{server.port}", client, direct=False))
        assert storage.http.pool is None
        got = await storage.get_blocks(OWNER, [(c, None) for c in CIDS[:5]], parallel=2)
        assert got == BLOCKS[:5] and server.requests == 5


async def test_a_tampered_block_in_a_batch_fails_the_batch() -> None:
    async def tamper_third(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            server.requests += 1
            body = block_for(target)
            await conn.reply(body[:-1] + b"?" if body == BLOCKS[2] else body)

    async with serving(tamper_third) as server, storage_for(server) as storage:
        with pytest.raises(DecodeError, match="does not hash to"):
            await storage.get_blocks(OWNER, [(c, None) for c in CIDS[:4]], parallel=1)
        assert server.requests == 3  # the batch stopped at the bad block


async def test_cancelling_a_batch_closes_its_connection() -> None:
    stalled = trio.Event()

    async def stall_second(server: Server, conn: Conn) -> None:
        while (target := await conn.request()) is not None:
            server.requests += 1
            if server.requests == 2:
                stalled.set()
                while await conn.stream.receive_some(100):  # until the client closes its side
                    pass
                break
            await conn.reply(block_for(target))
        server.closed.set()

    async with serving(stall_second) as server, storage_for(server) as storage:
        with trio.move_on_after(10) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(storage.get_blocks, OWNER, [(c, None) for c in CIDS[:4]], 1)
                await stalled.wait()
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught
        with trio.fail_after(5):
            await server.closed.wait()
        assert storage.http.pool is not None and not storage.http.pool._idle
