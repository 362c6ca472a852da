"""The local entry point of HTTP over p2p: `/p2p/<peer>/http/<path>?<query>` (spec/nabu.md §4.2).

`P2PGateway(proxy)` is an ASGI app (served by the node's API server, or mounted by an embedding
application on its own gateway address, as Peergos does on 127.0.0.1:8080). For each request:

1. Method: anything outside `config.allowed_methods` (POST only by default) gets 403 with an empty
   body, Nabu's rule for every local endpoint (`httputil`).
2. URL: `<peer>` is a peer id in any form `PeerId.parse` accepts (`Qm...`, `12D3KooW...`, CIDv1
   libp2p-key `bafz...`/`z...`/`k51...`); what follows `/http` (leading `/` kept) plus the raw query
   string, byte for byte, is the target's request target. A malformed URL or peer id is a 400 with the
   reason in `Trailer`, before any peer is contacted.
3. Headers are passed on (except hop-by-hop ones; `Host` becomes the peer id); the body streams from
   the local caller into the `/http` stream as it arrives, never buffered whole, capped at `max_body`
   (a declared Content-Length over the cap is refused with 413 before dialing).
4. The response status and headers come back as the peer sent them, the body streams back chunk by
   chunk with the peer's Content-Length (or chunked).

Failures, and what the local caller sees (Nabu answered every failure with 400 + `Trailer`; we keep that
for the cases Nabu distinguishes and use gateway statuses for the rest, always with `Trailer`):
peer not found (no addresses) -> 400 "Target not found: <peer>"; unreachable peer, broken stream or a
malformed response -> 502; a timeout -> 504; body over the cap -> 413; too many concurrent requests ->
503. If the peer fails after the response head went out, the local connection is closed before the end
of the body (the caller sees a truncated response, never a silently short one). A caller that hangs up
cancels the transfer and resets the `/http` stream; note that hypercorn reads nothing from a connection
while its request is being answered, so a hang-up before the response head is only noticed when the
head (or the next body chunk) cannot be delivered; every wait on the peer is bounded by the timeouts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import trio

from nabu_py.errors import DecodeError
from nabu_py.httputil import (
    DRAIN_LIMIT,
    METHOD_NOT_ALLOWED,
    Receive,
    Scope,
    Send,
    drain_body,
    handle_lifespan,
    header,
    send_error,
    send_response,
)
from nabu_py.p2p import PeerId
from nabu_py.protocols.http_proxy.errors import (
    BodyTooLarge,
    Overloaded,
    PeerNotFound,
    ProxyError,
    ProxyTimeout,
)
from nabu_py.protocols.http_proxy.p2p import HttpProxy

log = logging.getLogger(__name__)

__all__ = ["PREFIX", "P2PGateway", "parse_gateway_path"]

PREFIX: Final = "/p2p/"
_HTTP: Final = b"/http"


class _CallerGone(ProxyError):
    """The local HTTP caller disconnected while we were forwarding its request."""


def parse_gateway_path(raw_path: bytes, query: bytes) -> tuple[PeerId, str]:
    """(peer, request target) from `/p2p/<peer>/http/<path>` and the raw query; DecodeError if malformed."""
    if not raw_path.startswith(PREFIX.encode()):
        raise DecodeError(f"expected a path starting with {PREFIX}")
    rest = raw_path[len(PREFIX) :]
    peer_text, slash, tail = rest.partition(b"/")
    if not slash:
        raise DecodeError("Expecting p2p request to include path in url: /p2p/<peer-id>/http/<path>")
    try:
        peer = PeerId.parse(peer_text.decode("ascii"))
    except (UnicodeDecodeError, DecodeError) as e:
        raise DecodeError(f"invalid peer id {peer_text[:100].decode('latin-1')!r}: {e}") from None
    tail = b"/" + tail
    if tail != _HTTP and not tail.startswith(_HTTP + b"/"):
        raise DecodeError("Expecting path to be a http request: /p2p/<peer-id>/http/<path>")
    path = tail[len(_HTTP) :] or b"/"
    target = path + (b"?" + query if query else b"")
    try:
        return peer, target.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("the request path must be ASCII (percent-encode anything else)") from None


class P2PGateway:
    """ASGI app proxying `/p2p/<peer>/http/...` to peers over `/http` streams."""

    def __init__(self, proxy: HttpProxy) -> None:
        self.proxy = proxy
        """The node's `/http` service (the calling side is used here)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not scope["path"].startswith(PREFIX):
            await send_response(send, 404)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one `/p2p/...` request (the path is known to start with `/p2p/`)."""
        config = self.proxy.config
        method = scope["method"]
        if method not in config.allowed_methods:
            await drain_body(receive)
            await send_response(send, METHOD_NOT_ALLOWED)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            peer, target = parse_gateway_path(bytes(raw_path), bytes(scope.get("query_string", b"")))
            content_length = _request_length(scope)
        except DecodeError as e:
            await drain_body(receive)
            await send_error(send, str(e))
            return
        if content_length is not None and content_length > config.max_body:
            if content_length <= DRAIN_LIMIT:
                await drain_body(receive)
            await send_error(send, f"request body larger than the {config.max_body}-byte limit", 413)
            return
        headers = [(bytes(k), bytes(v)) for k, v in scope.get("headers", ())]
        started = time.monotonic()
        body_read = trio.Event()
        outcome = _Outcome(body_read)
        async with trio.open_nursery() as nursery:
            # Once the request body has been read, the only thing left to receive from the caller is
            # its hang-up: watch for it and stop the transfer (the /http stream is then reset).
            nursery.start_soon(_cancel_on_disconnect, receive, body_read, nursery.cancel_scope)
            await self._exchange(
                send,
                peer,
                target,
                method,
                headers,
                _request_body(receive, body_read),
                content_length,
                outcome,
            )
            nursery.cancel_scope.cancel()
        if outcome.drain:
            # The request failed while its body was still arriving; read (and drop) the rest, within
            # bounds, so the caller gets to read the error response instead of a reset connection.
            await drain_body(receive, seconds=self.proxy.config.idle_timeout)
            await send_error(send, outcome.drain[1], outcome.drain[0])
        log.debug(
            "/p2p/%s/http%s: %s, %d response bytes in %.0f ms%s",
            peer,
            target,
            outcome.status,
            outcome.sent,
            (time.monotonic() - started) * 1000,
            "" if outcome.complete else " (incomplete)",
        )

    async def _exchange(
        self,
        send: Send,
        peer: PeerId,
        target: str,
        method: str,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes],
        content_length: int | None,
        outcome: _Outcome,
    ) -> None:
        try:
            response = await self.proxy.request(peer, method, target, headers, body, content_length)
        except _CallerGone:
            return
        except ProxyError as e:
            status, message = _error_status(e)
            if status != 400:
                log.info("/p2p/%s/http%s: %s", peer, target, e)
            outcome.status = status
            if outcome.body_read.is_set():
                await send_error(send, message, status)
            else:
                outcome.drain = (status, message)
            return
        outcome.status = response.status
        out = list(response.headers)
        if response.content_length is not None:
            out.append((b"content-length", str(response.content_length).encode()))
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            async for chunk in response.body:
                outcome.sent += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            outcome.complete = True
        except ProxyError as e:
            # Status and part of the body are out; end the local connection early so the caller sees
            # a truncated response rather than a complete-looking short one.
            log.info("/p2p/%s/http%s: failed after %d response bytes: %s", peer, target, outcome.sent, e)
        finally:
            aclose = getattr(response.body, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True):
                    await aclose()


@dataclass
class _Outcome:
    body_read: trio.Event
    status: int | None = None
    sent: int = 0
    complete: bool = False
    drain: tuple[int, str] | None = None
    """(status, message) of an error to send once the rest of the request body has been drained."""


def _error_status(e: ProxyError) -> tuple[int, str]:
    """The local status and `Trailer` message for a failed proxied request (see the module docstring)."""
    if isinstance(e, PeerNotFound):
        return 400, str(e)
    if isinstance(e, BodyTooLarge):
        return 413, str(e)
    if isinstance(e, Overloaded):
        return 503, f"Service Unavailable: {e}"
    if isinstance(e, ProxyTimeout):
        return 504, f"Gateway Timeout: {e}"
    return 502, f"Bad Gateway: {e}"


def _request_length(scope: Scope) -> int | None:
    """The request body length: Content-Length, None when chunked, 0 when there is no body."""
    value = header(scope, b"content-length")
    if value is not None:
        try:
            n = int(value)
        except ValueError:
            raise DecodeError("malformed Content-Length") from None
        if n < 0:
            raise DecodeError("malformed Content-Length")
        return n
    if header(scope, b"transfer-encoding") is not None:
        return None
    return 0


async def _request_body(receive: Receive, done: trio.Event) -> AsyncIterator[bytes]:
    """The caller's body as it arrives; `done` is set once it has been read to the end."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _CallerGone("the local caller disconnected")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            done.set()
            return


async def _cancel_on_disconnect(receive: Receive, body_read: trio.Event, scope: trio.CancelScope) -> None:
    """After the request body: wait for the caller to hang up, then stop the transfer."""
    await body_read.wait()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
