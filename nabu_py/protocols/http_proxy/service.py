"""HTTP over p2p (`/http`, spec/nabu.md §4): how Peergos reaches a user's home server without DNS or CAs.

Wire format (kept from Nabu): plain HTTP/1.1 text framing on a libp2p stream, one request per stream.
The initiator writes one request (the `Host` header is the *remote* peer id) and reads one response; the
responder forwards the request to its configured proxy target over TCP, after setting
`Source: <initiator peer id>` (overwriting any value the caller sent, so a target that listens only on
localhost can trust it), and writes the target's response back.

Unlike Nabu (8 MiB aggregated bodies, no response timeout), bodies are streamed both ways in chunks
without buffering whole bodies, bounded by `max_body`, and every wait has a timeout: connecting to the
target, the response head, and the idle gap between body chunks. Failures on the serving side become a
`502 Bad Gateway` whose body and `Trailer` header carry a clear message; failures on the calling side
raise `ProxyError` (tree in `errors`). HTTP parsing is h11 (sans-IO); this module only moves bytes.

Bodies of known length (Content-Length, the normal case) are not parsed: after h11 has read the head,
the body is read raw and forwarded chunk by chunk through h11's data passthrough (`_pump_length`), which
saves h11's receive-buffer copies; chunked bodies go through h11 (`_pump_body`). Timeouts on hot paths
use bare cancel scopes or one re-armed scope per body (`_Watchdog`) rather than a `trio.fail_after` per
chunk, which showed in profiles at hundreds of chunks per second.

Stream endings: a side that finished its exchange half-closes (`send_eof`) before `aclose`; a side that
gives up calls `aclose` without `send_eof`, which on a libp2p stream is a reset (`p2p.P2PByteStream`), so
an abandoned transfer stops at once instead of draining. Error replies are complete responses followed
by `send_eof`, so the peer reads them before the stream ends.

The host wiring (stream adapter, serving registration, dialing by peer id) is in `p2p`, the local
`/p2p/<peer>/http/...` route in `gateway`.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import h11
import trio

from nabu_py.protocols.http_proxy.errors import BodyTooLarge, ProxyError, ProxyTimeout

log = logging.getLogger(__name__)

PROTOCOL_ID = "/http"
CHUNK = 1024 * 1024
"""Largest read from either side (libp2p stream or TCP); writes go out as received."""
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"content-length",
    }
)
Headers = list[tuple[bytes, bytes]]


class ByteStream(Protocol):
    """What this module needs from a libp2p stream or a TCP stream."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Some bytes, or b"" at end of stream."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`."""
        ...

    async def send_eof(self) -> None:
        """Half-close the writing side (the exchange finished from our side)."""
        ...

    async def aclose(self) -> None:
        """Close: gracefully after `send_eof`, otherwise abort (a libp2p stream is reset)."""
        ...


@dataclass(frozen=True)
class HttpProxyConfig:
    """Limits and timeouts of the `/http` protocol, both sides."""

    max_body: int = 256 * 1024 * 1024
    """Largest request or response body, each way (Nabu aggregated at most 8 MiB; we stream)."""
    max_head: int = 64 * 1024
    """Largest request or response head (request line/status line plus headers)."""
    connect_timeout: float = 10.0
    """Serving side: connecting to the proxy target (Nabu: 10 s)."""
    open_timeout: float = 30.0
    """Calling side: finding the peer (address book, peer router), dialing it and negotiating `/http`."""
    response_timeout: float = 60.0
    """Waiting for a response head after the request was sent (Nabu: 60 s on the serving side only)."""
    idle_timeout: float = 60.0
    """Longest pause between two chunks of a body, or while a write is blocked, either way (while a
    body of known length is relayed, a stall is noticed after between one and two idle timeouts)."""
    allowed_methods: frozenset[str] = field(default_factory=lambda: frozenset({"POST"}))
    """Methods accepted (calling side: else 403 like Nabu; serving side: else 405 like Peergos)."""
    max_concurrent_requests: int = 256
    """Calling side: proxied requests in flight at once (more wait up to `open_timeout`, then 503)."""
    max_inbound_streams: int = 256
    """Serving side: inbound `/http` streams served at once (more get an immediate 503)."""

    def __post_init__(self) -> None:
        for name in ("max_body", "max_head", "max_concurrent_requests", "max_inbound_streams"):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpProxyConfig.{name} must be positive")
        for name in ("connect_timeout", "open_timeout", "response_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpProxyConfig.{name} must be a positive number of seconds")


@dataclass
class ProxyResponse:
    """A response from the remote side: status, headers and a streamed body (iterate it exactly once)."""

    status: int
    headers: Headers
    """Response headers without hop-by-hop ones (and without Content-Length: see `content_length`)."""
    body: AsyncIterator[bytes]
    content_length: int | None = None
    """The declared body length (None: the body was sent chunked)."""


def _strip_hop_by_hop(
    headers: Sequence[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()
) -> Headers:
    return [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() not in drop]


def _framing(content_length: int | None) -> Headers:
    if content_length is None:
        return [(b"transfer-encoding", b"chunked")]
    return [(b"content-length", str(content_length).encode())]


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for k, v in headers:
        if k.lower() == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


# Per-chunk timeouts use a bare CancelScope: `trio.fail_after` is two generator-based context managers
# deep, which showed up in profiles at a few hundred chunks per second.
async def _receive(stream: ByteStream, max_bytes: int, seconds: float) -> bytes:
    """`stream.receive_some(max_bytes)` or TooSlowError after `seconds`."""
    with trio.CancelScope(deadline=trio.current_time() + seconds):
        return await stream.receive_some(max_bytes)
    raise trio.TooSlowError


async def _send_all(stream: ByteStream, data: bytes, seconds: float) -> None:
    """`stream.send_all(data)` or TooSlowError after `seconds`."""
    with trio.CancelScope(deadline=trio.current_time() + seconds) as scope:
        await stream.send_all(data)
    if scope.cancelled_caught:
        raise trio.TooSlowError


async def _next_event(conn: h11.Connection, stream: ByteStream, per_read_s: float) -> object:
    """Next h11 event, reading from `stream` as needed, each read bounded by `per_read_s`."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await _receive(stream, CHUNK, per_read_s))
            continue
        return event


async def _send(conn: h11.Connection, stream: ByteStream, event: h11.Event, per_write_s: float) -> None:
    # Passthrough: a Content-Length body chunk goes out as the very object we were given (no join copy).
    parts = conn.send_with_data_passthrough(event)
    if not parts:
        return
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    if data:
        await _send_all(stream, data, per_write_s)


async def _pump_body(
    src_conn: h11.Connection,
    src: ByteStream,
    dst_conn: h11.Connection,
    dst: ByteStream,
    limit: int,
    per_io_s: float,
) -> int:
    """Copy message body events from src to dst until EndOfMessage; return bytes copied."""
    total = 0
    while True:
        event = await _next_event(src_conn, src, per_io_s)
        if isinstance(event, h11.Data):
            total += len(event.data)
            if total > limit:
                raise BodyTooLarge(f"body larger than the {limit}-byte limit")
            await _send(dst_conn, dst, h11.Data(data=event.data), per_io_s)
        elif isinstance(event, h11.EndOfMessage):
            await _send(dst_conn, dst, h11.EndOfMessage(), per_io_s)
            return total
        elif isinstance(event, h11.ConnectionClosed):
            raise ProxyError("stream closed before the end of the message body")
        else:
            raise ProxyError(f"unexpected HTTP event {type(event).__name__}")


def _has_body(method: bytes, status: int) -> bool:
    """Whether a response carries a body at all (RFC 9110: not for HEAD, 1xx, 204, 304)."""
    return method != b"HEAD" and status >= 200 and status not in (204, 304)


class _Watchdog:
    """One cancel scope over a whole body transfer, re-armed cheaply on progress.

    `progress()` after every read and write moves the deadline only once it is less than one `period`
    away, to two periods ahead: a stall is noticed after between one and two periods of no progress,
    and the per-chunk cost is a clock read and a comparison (a `fail_after` per chunk costs two context
    managers and two deadline-heap updates, a visible share of a 1 GB/s transfer).
    """

    __slots__ = ("period", "scope")

    def __init__(self, period: float) -> None:
        self.period = period
        self.scope = trio.CancelScope(deadline=trio.current_time() + 2 * period)

    def progress(self) -> None:
        """Record progress (call after each successful read or write)."""
        now = trio.current_time()
        if self.scope.deadline - now < self.period:
            self.scope.deadline = now + 2 * self.period


async def _pump_length(
    src_conn: h11.Connection,
    src: ByteStream,
    dst_conn: h11.Connection,
    dst: ByteStream,
    length: int,
    per_io_s: float,
) -> None:
    """Copy a body of known `length` from src to dst without parsing it.

    h11 has already read the message head, and perhaps the start of the body (`trailing_data`); the
    rest is read raw, `CHUNK` at a time, and forwarded through h11's data passthrough (Content-Length
    framing adds no bytes), so each chunk costs one read and one write: no receive-buffer copies.
    The source's h11 connection is not used for reading afterwards (one message per stream). A stall
    of `per_io_s` (up to twice that, see `_Watchdog`) raises TooSlowError.
    """
    buffered, _closed = src_conn.trailing_data
    first = buffered[:length]
    if first:
        await _send(dst_conn, dst, h11.Data(data=first), per_io_s)
    left = length - len(first)
    dog = _Watchdog(per_io_s)
    with dog.scope:
        while left > 0:
            data = await src.receive_some(min(CHUNK, left))
            if not data:
                raise ProxyError(f"stream closed {left} bytes before the end of the message body")
            dog.progress()
            left -= len(data)
            # Content-Length framing: the passthrough hands back the chunk itself (h11 only counts it).
            for part in dst_conn.send_with_data_passthrough(h11.Data(data=data)) or ():
                await dst.send_all(part)
            dog.progress()
    if dog.scope.cancelled_caught:
        raise trio.TooSlowError
    await _send(dst_conn, dst, h11.EndOfMessage(), per_io_s)


async def _reply_error(
    conn: h11.Connection, stream: ByteStream, status: int, message: str, per_write_s: float
) -> None:
    body = message.encode()
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(body)).encode()),
        (b"trailer", urllib.parse.quote_plus(message).encode()),
    ]
    try:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await _send(conn, stream, h11.Response(status_code=status, headers=headers), per_write_s)
            await _send(conn, stream, h11.Data(data=body), per_write_s)
            await _send(conn, stream, h11.EndOfMessage(), per_write_s)
            with trio.fail_after(per_write_s):
                await stream.send_eof()
    except (
        h11.LocalProtocolError,
        trio.TooSlowError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        OSError,
    ):
        pass


async def refuse_stream(stream: ByteStream, status: int, message: str, per_write_s: float) -> None:
    """Answer a stream with an error response without reading its request (overload, no target), then
    close it. The response is complete and followed by EOF, so the caller reads it; any request bytes
    the caller still sends are drained briefly by the graceful close."""
    body = message.encode()
    reason = {502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
        f"trailer: {urllib.parse.quote_plus(message)}\r\nconnection: close\r\n\r\n"
    ).encode()
    try:
        with trio.fail_after(per_write_s):
            await stream.send_all(head + body)
            await stream.send_eof()
    except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await _abort(stream)


async def serve_stream(
    stream: ByteStream,
    remote_peer: str,
    target: tuple[str, int],
    config: HttpProxyConfig = HttpProxyConfig(),
) -> None:
    """Handle one inbound `/http` stream: forward its request to `target`, stream the reply back.

    Never raises for remote misbehaviour: malformed requests get 400, target failures 502, oversize
    bodies 413; the stream is always closed at the end.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head)
    try:
        try:
            event = await _next_event(conn, stream, config.idle_timeout)
        except (h11.RemoteProtocolError, trio.TooSlowError) as e:
            await _reply_error(conn, stream, 400, f"bad request: {e}", config.idle_timeout)
            return
        if not isinstance(event, h11.Request):
            return
        method = event.method.decode("ascii", "replace")
        if method not in config.allowed_methods:
            await _reply_error(conn, stream, 405, f"method {method} not allowed", config.idle_timeout)
            return
        declared = _content_length(event.headers)
        if declared is not None and declared > config.max_body:
            await _reply_error(conn, stream, 413, "request body too large", config.idle_timeout)
            return
        headers = _strip_hop_by_hop(event.headers, drop=frozenset({b"source", b"host"}))
        headers.append((b"host", f"{target[0]}:{target[1]}".encode()))
        headers.append((b"source", remote_peer.encode()))
        headers.extend(_framing(declared))
        try:
            with trio.fail_after(config.connect_timeout):
                upstream = await trio.open_tcp_stream(*target)
        except (OSError, trio.TooSlowError) as e:
            await _reply_error(
                conn, stream, 502, f"Bad Gateway: cannot reach proxy target: {e}", config.idle_timeout
            )
            return
        async with upstream:
            client = h11.Connection(h11.CLIENT, max_incomplete_event_size=config.max_head)
            try:
                await _send(
                    client,
                    upstream,
                    h11.Request(method=event.method, target=event.target, headers=headers),
                    config.idle_timeout,
                )
                if declared is None:
                    await _pump_body(conn, stream, client, upstream, config.max_body, config.idle_timeout)
                else:
                    await _pump_length(conn, stream, client, upstream, declared, config.idle_timeout)
                resp = await _next_event(client, upstream, config.response_timeout)
                while isinstance(resp, h11.InformationalResponse):
                    resp = await _next_event(client, upstream, config.response_timeout)
                if not isinstance(resp, h11.Response):
                    raise ProxyError("proxy target closed without a response")
            except BodyTooLarge as e:
                await _reply_error(conn, stream, 413, f"Payload Too Large: {e}", config.idle_timeout)
                return
            except ProxyError as e:
                await _reply_error(conn, stream, 502, f"Bad Gateway: {e}", config.idle_timeout)
                return
            except (h11.ProtocolError, trio.TooSlowError, trio.BrokenResourceError, OSError) as e:
                await _reply_error(
                    conn, stream, 502, f"Bad Gateway: {type(e).__name__}: {e}", config.idle_timeout
                )
                return
            resp_length = _content_length(resp.headers)
            if resp_length is not None and resp_length > config.max_body:
                await _reply_error(
                    conn, stream, 502, "Bad Gateway: response body too large", config.idle_timeout
                )
                return
            out_headers = _strip_hop_by_hop(resp.headers) + _framing(resp_length)
            await _send(
                conn,
                stream,
                h11.Response(status_code=resp.status_code, headers=out_headers, reason=resp.reason),
                config.idle_timeout,
            )
            try:
                if resp_length is not None and _has_body(event.method, resp.status_code):
                    await _pump_length(client, upstream, conn, stream, resp_length, config.idle_timeout)
                else:
                    await _pump_body(client, upstream, conn, stream, config.max_body, config.idle_timeout)
            except (ProxyError, h11.ProtocolError, trio.TooSlowError, trio.BrokenResourceError, OSError) as e:
                log.info("/http: response body from proxy target failed: %s", e)
                return
        try:
            with trio.fail_after(config.idle_timeout):
                await stream.send_eof()
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    except (
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        trio.TooSlowError,
        h11.ProtocolError,
        OSError,
    ) as e:
        log.info("/http stream from %s failed: %s", remote_peer, e)
    finally:
        with trio.CancelScope(shield=True):
            try:
                await stream.aclose()
            except Exception:  # closing a broken libp2p stream may raise anything; it is gone either way
                log.debug("closing /http stream failed", exc_info=True)


async def send_request(
    stream: ByteStream,
    remote_peer: str,
    method: str,
    target: str,
    headers: Sequence[tuple[bytes, bytes]],
    body: AsyncIterator[bytes] | bytes,
    content_length: int | None,
    config: HttpProxyConfig = HttpProxyConfig(),
) -> ProxyResponse:
    """Send one request over an open `/http` stream and return the response head with a streamed body.

    The caller must consume (or close) the body iterator; the stream is closed when it ends. Raises
    ProxyError on any failure or timeout.
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=config.max_head)
    if isinstance(body, bytes):
        content_length = len(body)
    if content_length is not None and content_length > config.max_body:
        raise BodyTooLarge(f"request body larger than the {config.max_body}-byte limit")
    out = _strip_hop_by_hop(headers, drop=frozenset({b"host", b"expect"}))
    out.append((b"host", remote_peer.encode()))
    out.extend(_framing(content_length))
    try:
        await _send(conn, stream, h11.Request(method=method, target=target, headers=out), config.idle_timeout)
        try:
            await _send_body(conn, stream, body, config)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The remote side stopped reading (e.g. it refused the body); its error reply may be waiting.
            pass
        event = await _next_event(conn, stream, config.response_timeout)
        while isinstance(event, h11.InformationalResponse):
            event = await _next_event(conn, stream, config.response_timeout)
        if not isinstance(event, h11.Response):
            raise ProxyError("remote peer closed the stream without a response")
    except ProxyError:
        await _abort(stream)
        raise
    except trio.TooSlowError:
        await _abort(stream)
        raise ProxyTimeout("timed out waiting for the remote peer") from None
    except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
        await _abort(stream)
        raise ProxyError(f"stream to remote peer failed: {type(e).__name__}: {e}") from None
    except BaseException:  # the caller's body iterator failed, or we were cancelled
        await _abort(stream)
        raise

    length = _content_length(event.headers)
    if length is not None and length > config.max_body:
        await _abort(stream)
        raise BodyTooLarge(f"response body of {length} bytes exceeds the {config.max_body}-byte limit")
    raw = length is not None and _has_body(method.encode("ascii", "replace"), event.status_code)

    async def body_iter() -> AsyncIterator[bytes]:
        received = 0
        try:
            if raw:
                # Known length: read the body raw (no h11 receive-buffer copies), see `_pump_length`.
                assert length is not None
                buffered, _closed = conn.trailing_data
                first = buffered[:length]
                if first:
                    yield first
                left = length - len(first)
                while left > 0:
                    data = await _receive(stream, min(CHUNK, left), config.idle_timeout)
                    if not data:
                        raise ProxyError("remote peer closed the stream mid-response")
                    left -= len(data)
                    yield data
            else:
                while True:
                    ev = await _next_event(conn, stream, config.idle_timeout)
                    if isinstance(ev, h11.Data):
                        received += len(ev.data)
                        if received > config.max_body:
                            raise BodyTooLarge(f"response body larger than the {config.max_body}-byte limit")
                        yield bytes(ev.data)
                    elif isinstance(ev, h11.EndOfMessage):
                        break
                    else:
                        raise ProxyError("remote peer closed the stream mid-response")
        except trio.TooSlowError:
            await _abort(stream)
            raise ProxyTimeout("timed out waiting for the response body") from None
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            await _abort(stream)
            raise ProxyError(f"response stream failed: {type(e).__name__}: {e}") from None
        except BaseException:  # our own ProxyErrors, the consumer closing us early, cancellation
            await _abort(stream)
            raise
        await _finish(stream, config.idle_timeout)

    return ProxyResponse(
        event.status_code, _strip_hop_by_hop(event.headers), body_iter(), _content_length(event.headers)
    )


async def _send_body(
    conn: h11.Connection, stream: ByteStream, body: AsyncIterator[bytes] | bytes, config: HttpProxyConfig
) -> None:
    if isinstance(body, bytes):
        if body:
            await _send(conn, stream, h11.Data(data=body), config.idle_timeout)
    else:
        total = 0
        chunks = body.__aiter__()
        try:
            while True:
                # The wait for the caller's next chunk is bounded too: a stalled local caller must not
                # hold the stream (and the peer's resources) forever.
                with trio.CancelScope(deadline=trio.current_time() + config.idle_timeout) as scope:
                    chunk = await chunks.__anext__()
                if scope.cancelled_caught:
                    raise ProxyTimeout("the request body stalled")
                total += len(chunk)
                if total > config.max_body:
                    raise BodyTooLarge(f"request body larger than the {config.max_body}-byte limit")
                if chunk:
                    await _send(conn, stream, h11.Data(data=chunk), config.idle_timeout)
        except StopAsyncIteration:
            pass
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()
    await _send(conn, stream, h11.EndOfMessage(), config.idle_timeout)


async def _finish(stream: ByteStream, per_write_s: float) -> None:
    """The exchange completed: half-close, then close (graceful on a libp2p stream)."""
    with trio.CancelScope(shield=True):
        try:
            with trio.fail_after(per_write_s):
                await stream.send_eof()
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        await _abort(stream)


async def _abort(stream: ByteStream) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except Exception:  # a broken stream may fail to close in any way; it is gone either way
            log.debug("closing /http stream failed", exc_info=True)
