"""`/http` protocol logic: both sides over an in-memory stream pair, with a real TCP proxy target."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import h11
import pytest
import trio
import trio.testing

from nabu_py.protocols.http_proxy import (
    BodyTooLarge,
    HttpProxyConfig,
    ProxyError,
    ProxyTimeout,
    refuse_stream,
    send_request,
    serve_stream,
)

Target = Callable[[trio.SocketStream], Awaitable[None]]


async def echo_target(stream: trio.SocketStream) -> None:
    """A tiny HTTP server: replies with the sha256 of the body and the Source/Host headers it saw."""
    conn = h11.Connection(h11.SERVER)
    h = hashlib.sha256()
    req: h11.Request | None = None
    n = 0
    while True:
        try:
            ev = conn.next_event()
        except h11.RemoteProtocolError:
            await stream.aclose()  # the proxy gave up on a request (e.g. an oversize body)
            return
        if ev is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        if isinstance(ev, h11.Request):
            req = ev
        elif isinstance(ev, h11.Data):
            h.update(ev.data)
            n += len(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            break
    assert req is not None
    hdrs = dict(req.headers)
    body = f"{h.hexdigest()} {n} {hdrs.get(b'source', b'').decode()} {req.target.decode()}".encode() * 1000
    await stream.send_all(
        conn.send(
            h11.Response(
                status_code=200, headers=[(b"content-length", str(len(body)).encode()), (b"x-t", b"1")]
            )
        )
    )
    await stream.send_all(conn.send(h11.Data(data=body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    await stream.aclose()


async def silent_target(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


async def start_target(nursery: trio.Nursery, handler: Target) -> tuple[str, int]:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return "127.0.0.1", listeners[0].socket.getsockname()[1]


async def collect(body: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in body])


async def chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def roundtrip(
    target: tuple[str, int],
    cfg: HttpProxyConfig,
    body: bytes,
    method: str = "POST",
    headers: list[tuple[bytes, bytes]] | None = None,
    caller_cfg: HttpProxyConfig | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    client_side, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(serve_stream, server_side, "12D3KooWCaller", target, cfg)
        resp = await send_request(
            client_side,
            "12D3KooWServer",
            method,
            "/api/v0/x?arg=1",
            headers or [],
            chunks(body),
            len(body),
            caller_cfg or cfg,
        )
        data = await collect(resp.body)
    return resp.status, dict(resp.headers), data


async def test_streams_body_and_sets_source() -> None:
    body = bytes(range(256)) * 20_000  # ~5 MiB
    async with trio.open_nursery() as n:
        target = await start_target(n, echo_target)
        status, headers, data = await roundtrip(
            target, HttpProxyConfig(), body, headers=[(b"source", b"forged")]
        )
        n.cancel_scope.cancel()
    assert status == 200 and headers[b"x-t"] == b"1"
    digest, size, source, path = data[: len(data) // 1000].decode().split(" ")
    assert digest == hashlib.sha256(body).hexdigest() and int(size) == len(body)
    assert source == "12D3KooWCaller", "the serving side overwrites any client-supplied Source"
    assert path == "/api/v0/x?arg=1"


async def test_unreachable_target_is_502() -> None:
    s = trio.socket.socket()
    await s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    status, headers, data = await roundtrip(("127.0.0.1", port), HttpProxyConfig(), b"x")
    assert status == 502 and b"cannot reach proxy target" in data and b"Bad+Gateway" in headers[b"trailer"]


async def test_silent_target_times_out_with_502() -> None:
    cfg = HttpProxyConfig(response_timeout=0.5, idle_timeout=5)
    async with trio.open_nursery() as n:
        target = await start_target(n, silent_target)
        with trio.fail_after(10):
            status, _h, data = await roundtrip(target, cfg, b"hello", caller_cfg=HttpProxyConfig())
        n.cancel_scope.cancel()
    assert status == 502 and b"TooSlowError" in data


async def test_calling_side_times_out_cleanly() -> None:
    client_side, _server_side = trio.testing.memory_stream_pair()
    cfg = HttpProxyConfig(response_timeout=0.3, idle_timeout=0.3)
    with trio.fail_after(5), pytest.raises(ProxyError):
        await send_request(client_side, "peer", "POST", "/", [], b"x", None, cfg)


async def test_oversize_body_is_refused() -> None:
    cfg = HttpProxyConfig(max_body=1000)
    async with trio.open_nursery() as n:
        target = await start_target(n, echo_target)
        # the calling side refuses before sending anything
        client_side, _ = trio.testing.memory_stream_pair()
        with pytest.raises(ProxyError):
            await send_request(client_side, "p", "POST", "/", [], b"x" * 2000, None, cfg)
        # a peer that lies about nothing but sends too much gets 413 from the serving side
        big = HttpProxyConfig(max_body=10_000)
        client_side, server_side = trio.testing.memory_stream_pair()
        n.start_soon(serve_stream, server_side, "caller", target, cfg)
        resp = await send_request(client_side, "p", "POST", "/", [], chunks(b"y" * 5000, 500), None, big)
        assert resp.status == 413
        await collect(resp.body)
        n.cancel_scope.cancel()


async def test_method_not_allowed() -> None:
    async with trio.open_nursery() as n:
        target = await start_target(n, echo_target)
        status, _h, _d = await roundtrip(target, HttpProxyConfig(), b"", method="GET")
        n.cancel_scope.cancel()
    assert status == 405


async def test_garbage_gets_400_and_close() -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(serve_stream, server_side, "caller", ("127.0.0.1", 9), HttpProxyConfig())
        await client_side.send_all(b"\x00\x01garbage that is not http\r\n\r\n")
        with trio.fail_after(5):
            reply = b""
            while chunk := await client_side.receive_some(65536):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")


async def chunked_target(stream: trio.SocketStream) -> None:
    """Replies with a chunked body of 3 x 100 kB (no Content-Length), after reading the request."""
    conn = h11.Connection(h11.SERVER)
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(ev, h11.EndOfMessage):
            break
    await stream.send_all(
        conn.send(h11.Response(status_code=201, headers=[(b"transfer-encoding", b"chunked")]))
    )
    for i in range(3):
        await stream.send_all(conn.send(h11.Data(data=bytes([i]) * 100_000)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    await stream.aclose()


async def test_chunked_response_streams_through() -> None:
    async with trio.open_nursery() as n:
        target = await start_target(n, chunked_target)
        client_side, server_side = trio.testing.memory_stream_pair()
        n.start_soon(serve_stream, server_side, "caller", target, HttpProxyConfig())
        resp = await send_request(client_side, "p", "POST", "/", [], b"q", None)
        assert resp.status == 201 and resp.content_length is None
        data = await collect(resp.body)
        n.cancel_scope.cancel()
    assert data == bytes([0]) * 100_000 + bytes([1]) * 100_000 + bytes([2]) * 100_000


async def test_oversize_response_is_refused_on_both_sides() -> None:
    async with trio.open_nursery() as n:
        target = await start_target(n, echo_target)  # answers ~100 kB with a Content-Length
        # the serving side refuses to relay a declared response larger than its limit
        client_side, server_side = trio.testing.memory_stream_pair()
        n.start_soon(serve_stream, server_side, "caller", target, HttpProxyConfig(max_body=50_000))
        resp = await send_request(client_side, "p", "POST", "/", [], b"q", None)
        assert resp.status == 502 and b"too large" in await collect(resp.body)
        # the calling side refuses a declared response larger than its own limit
        client_side, server_side = trio.testing.memory_stream_pair()
        n.start_soon(serve_stream, server_side, "caller", target, HttpProxyConfig())
        with pytest.raises(BodyTooLarge):
            await send_request(
                client_side, "p", "POST", "/", [], b"q", None, HttpProxyConfig(max_body=50_000)
            )
        n.cancel_scope.cancel()


async def test_refused_stream_gets_a_readable_error() -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(refuse_stream, server_side, 503, "Service Unavailable: too many", 5.0)
        resp = await send_request(client_side, "p", "POST", "/", [], b"x" * 1000, None)
        assert resp.status == 503 and dict(resp.headers)[b"trailer"] == b"Service+Unavailable%3A+too+many"
        assert await collect(resp.body) == b"Service Unavailable: too many"


async def test_stalled_request_body_times_out() -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield b"first"
        await trio.sleep_forever()
        yield b"never"  # pragma: no cover

    client_side, _server_side = trio.testing.memory_stream_pair()
    cfg = HttpProxyConfig(idle_timeout=0.3)
    with trio.fail_after(5), pytest.raises(ProxyTimeout, match="stalled"):
        await send_request(client_side, "p", "POST", "/", [], stalls(), None, cfg)


async def test_body_shorter_than_declared_is_a_502() -> None:
    async with trio.open_nursery() as n:
        target = await start_target(n, echo_target)
        client_side, server_side = trio.testing.memory_stream_pair()
        n.start_soon(serve_stream, server_side, "caller", target, HttpProxyConfig())
        await client_side.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly this")
        await client_side.send_eof()
        with trio.fail_after(5):
            reply = b""
            while chunk := await client_side.receive_some(65536):
                reply += chunk
        n.cancel_scope.cancel()
    assert reply.startswith(b"HTTP/1.1 502") and b"before the end of the message body" in reply


async def test_stalled_body_of_known_length_times_out_on_the_serving_side() -> None:
    cfg = HttpProxyConfig(idle_timeout=0.3)
    async with trio.open_nursery() as n:
        target = await start_target(n, echo_target)
        client_side, server_side = trio.testing.memory_stream_pair()
        n.start_soon(serve_stream, server_side, "caller", target, cfg)
        await client_side.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nten bytes.")
        t0 = trio.current_time()
        with trio.fail_after(5):
            reply = b""
            while chunk := await client_side.receive_some(65536):
                reply += chunk
        waited = trio.current_time() - t0
        n.cancel_scope.cancel()
    assert reply.startswith(b"HTTP/1.1 502") and b"TooSlowError" in reply
    assert 0.3 <= waited < 2.0, "noticed after one to two idle timeouts"
