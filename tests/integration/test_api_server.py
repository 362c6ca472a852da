"""`ApiServer` (the API ports' threaded HTTP/1.1 server) on real loopback sockets: keep-alive and
pipelining, where handlers run, refusals that keep or close the connection, 100-continue, malformed
requests, timeouts, the connection bound and stopping with connections open."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from starlette.responses import Response

from peergos_node.server.http import ApiApp, ApiRequest, HttpError, bytes_response
from peergos_node.server.http_server import ApiServer

MAIN = threading.main_thread()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, bool]] = []  # (path, body, ran on the trio thread)
        self.release = threading.Event()


def make_app(rec: Recorder, *, public: bool = False) -> ApiApp:
    async def echo(req: ApiRequest) -> Response:
        rec.calls.append((req.path, req.body, threading.current_thread() is MAIN))
        if req.has("fail"):
            raise HttpError("no good: 100% & more")
        if req.has("boom"):
            raise RuntimeError("bug")
        return bytes_response(req.body + (req.opt("x") or "").encode())

    def sync_echo(req: ApiRequest) -> Response:
        rec.calls.append((req.path, req.body, threading.current_thread() is MAIN))
        if req.has("wait"):
            rec.release.wait(10)
        return bytes_response(b"sync:" + req.body)

    async def unused(req: ApiRequest) -> Response:
        raise AssertionError("the sync handler should have run")

    app = ApiApp({}, public_server=public, name="test")
    app.add("/echo", echo, max_body=100)
    app.add("/sync", unused, sync_handler=sync_echo)
    return app


OPEN: list[trio.SocketStream] = []


@asynccontextmanager
async def running(app: ApiApp, **kw: float) -> AsyncIterator[tuple[ApiServer, int]]:
    server = ApiServer(app, "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
    try:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(server.serve)
            yield server, int(url.rsplit(":", 1)[1])
            nursery.cancel_scope.cancel()
    finally:
        await close_clients()


async def close_clients() -> None:
    while OPEN:
        await OPEN.pop().aclose()


async def connect(port: int) -> trio.SocketStream:
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    OPEN.append(stream)
    return stream


async def read_reply(stream: trio.SocketStream, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response (content-length framed) from `stream`; `buf` keeps bytes read past it."""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in buf:
            data = await stream.receive_some(65536)
            assert data, f"connection closed; got {bytes(buf)!r}"
            buf += data
        end = buf.index(b"\r\n\r\n")
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if status < 200:
            return status, headers, b""
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            data = await stream.receive_some(65536)
            assert data
            buf += data
        body = bytes(buf[:n])
        del buf[:n]
        return status, headers, body


async def closed_by_server(stream: trio.SocketStream) -> bool:
    with trio.fail_after(5):
        try:
            return await stream.receive_some(65536) == b""
        except trio.BrokenResourceError:
            return True


def post(path: str, body: bytes = b"", extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_pipelining_and_where_handlers_run() -> None:
    rec = Recorder()
    async with running(make_app(rec)) as (_, port):
        stream = await connect(port)
        buf = bytearray()
        # three pipelined requests in one write, then a fourth on the same connection
        await stream.send_all(post("/echo?x=1", b"ab") + post("/sync", b"cd") + post("/echo%2Fno"))
        assert (await read_reply(stream, buf))[::2] == (200, b"ab1")
        assert (await read_reply(stream, buf))[::2] == (200, b"sync:cd")
        assert (await read_reply(stream, buf))[0] == 404
        await stream.send_all(post("/echo", b"again"))
        assert (await read_reply(stream, buf))[::2] == (200, b"again")
        await stream.aclose()
    # async handlers run in trio, sync handlers in the connection's thread
    assert [(p, on_main) for p, _, on_main in rec.calls] == [
        ("/echo", True),
        ("/sync", False),
        ("/echo", True),
    ]


async def test_errors_refusals_and_which_keep_the_connection() -> None:
    rec = Recorder()
    async with running(make_app(rec)) as (_, port):
        stream = await connect(port)
        buf = bytearray()
        await stream.send_all(post("/echo?fail", b"x"))
        status, headers, body = await read_reply(stream, buf)
        assert (status, body, headers["trailer"]) == (400, b"", "no+good%3A+100%25+%26+more")
        await stream.send_all(post("/echo?boom"))
        status, headers, _ = await read_reply(stream, buf)
        assert status == 500 and "RuntimeError" in headers["trailer"]
        await stream.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_reply(stream, buf))[0] == 405
        await stream.send_all(post("/missing", b"small body is read and dropped"))
        assert (await read_reply(stream, buf))[0] == 404
        await stream.send_all(post("/echo", b"still open"))  # all of the above kept the connection
        assert (await read_reply(stream, buf))[::2] == (200, b"still open")
        # a declared body over the limit: 413 with Connection: close, sent before the body is read
        await stream.send_all(post("/echo", b"y" * 101)[:-101])
        status, headers, _ = await read_reply(stream, buf)
        assert status == 413 and headers["connection"] == "close" and "too+large" in headers["trailer"]
        assert await closed_by_server(stream)
        # an undeclared (chunked) body going past the limit
        stream = await connect(port)
        buf = bytearray()
        chunk = b"40\r\n" + b"z" * 64 + b"\r\n"
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        await stream.send_all(head + chunk + chunk)
        assert (await read_reply(stream, buf))[0] == 413
        assert await closed_by_server(stream)
    assert [c[0] for c in rec.calls] == ["/echo"] * 3  # ?fail, ?boom and "still open" reached the handler


async def test_chunked_bodies_and_100_continue() -> None:
    rec = Recorder()
    async with running(make_app(rec)) as (_, port):
        stream = await connect(port)
        buf = bytearray()
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        await stream.send_all(head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        assert (await read_reply(stream, buf))[::2] == (200, b"abcde")
        await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n")
        await stream.send_all(b"Expect: 100-continue\r\n\r\n")
        # the client waits for 100 before it sends its body
        assert (await read_reply(stream, buf))[0] == 100
        await stream.send_all(b"body")
        assert (await read_reply(stream, buf))[::2] == (200, b"body")


async def test_malformed_requests_and_oversized_heads() -> None:
    rec = Recorder()
    async with running(make_app(rec)) as (_, port):
        stream = await connect(port)
        await stream.send_all(b"this is not http\r\n\r\n")
        status, _, _ = await read_reply(stream, bytearray())
        assert status == 400 and await closed_by_server(stream)
        big = b"POST /echo?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        for pieces in ([big], [big[:30_000], big[30_000:]]):  # at once, or arriving in two reads
            stream = await connect(port)
            for piece in pieces:
                await stream.send_all(piece)
                await trio.sleep(0.05)
            status, headers, _ = await read_reply(stream, bytearray())
            assert status == 431 and "too+large" in headers["trailer"]
            assert await closed_by_server(stream)
        # the server is fine afterwards
        stream = await connect(port)
        await stream.send_all(post("/echo", b"ok"))
        assert (await read_reply(stream, bytearray()))[::2] == (200, b"ok")
    assert len(rec.calls) == 1


async def test_idle_and_stalled_connections_are_closed() -> None:
    rec = Recorder()
    async with running(make_app(rec), keep_alive_s=0.3, io_timeout_s=0.3) as (_, port):
        idle = await connect(port)
        buf = bytearray()
        await idle.send_all(post("/echo", b"1"))
        assert (await read_reply(idle, buf))[0] == 200
        stalled = await connect(port)
        await stalled.send_all(post("/echo", b"12345")[:-3])  # body never completes
        with trio.fail_after(5):
            assert await closed_by_server(idle)
            assert await closed_by_server(stalled)
    assert [c[1] for c in rec.calls] == [b"1"]


async def test_a_client_leaving_mid_body_reaches_no_handler() -> None:
    rec = Recorder()
    async with running(make_app(rec)) as (_, port):
        stream = await connect(port)
        await stream.send_all(post("/echo", b"0123456789")[:-6])
        await stream.aclose()
        other = await connect(port)
        await other.send_all(post("/sync", b"next"))
        assert (await read_reply(other, bytearray()))[::2] == (200, b"sync:next")
    assert [c[1] for c in rec.calls] == [b"next"]


async def test_connection_bound_and_stopping_with_connections_open() -> None:
    rec = Recorder()
    async with trio.open_nursery() as nursery:
        server = ApiServer(make_app(rec), "127.0.0.1", 0, max_connections=2)
        scope = trio.CancelScope()

        async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await server.serve(task_status=task_status)

        url = await nursery.start(run)
        port = int(url.rsplit(":", 1)[1])
        first, second, third = await connect(port), await connect(port), await connect(port)
        await first.send_all(post("/sync?wait", b"a"))  # blocks in its handler until released
        await second.send_all(post("/echo", b"b"))
        assert (await read_reply(second, bytearray()))[::2] == (200, b"b")
        await third.send_all(post("/echo", b"c"))
        with trio.move_on_after(0.5) as waited:  # third waits for a free slot: no answer yet
            await read_reply(third, bytearray())
        assert waited.cancelled_caught and server.connections == 2
        await second.aclose()  # frees a slot: third is now served
        assert (await read_reply(third, bytearray()))[::2] == (200, b"c")
        # stopping: serve returns promptly and every open connection is closed, busy or idle
        with trio.fail_after(5):
            scope.cancel()
            assert await closed_by_server(third)
            assert await closed_by_server(first)
        rec.release.set()
    await close_clients()
    assert server.connections == 0


async def test_head_on_a_public_server_sends_headers_only() -> None:
    rec = Recorder()
    async with running(make_app(rec, public=True)) as (_, port):
        stream = await connect(port)
        buf = bytearray()
        await stream.send_all(b"HEAD /sync HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(5):
            while b"\r\n\r\n" not in buf:
                buf += await stream.receive_some(65536)
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5" in head.lower() and rest == b""
        await stream.send_all(post("/echo", b"after"))  # and the connection goes on
        buf = bytearray()
        assert (await read_reply(stream, buf))[::2] == (200, b"after")
