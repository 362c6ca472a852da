"""`/http` on a `P2PHost`: the serving registration and the calling side by peer id (spec/nabu.md §4.2, §4.3).

`HttpProxy(host, config)` is the one object a node (or an embedding application such as the Peergos
server) holds:

* `serve(target)` registers the `/http` stream handler: each inbound stream is one HTTP/1.1 request
  that `service.serve_stream` forwards to `target` (the node's ProxyTarget, `(host, port)`) with
  `Source: <caller's base58 peer id>`. At most `config.max_inbound_streams` are served at once; a stream
  beyond that gets an immediate `503` (written before its request is read, then the stream closes), so
  a flood of streams costs a peer nothing but its own bandwidth. `stop_serving()` unregisters.
* `request(peer, method, path, headers, body, content_length)` is the calling side: it finds the peer
  (connected already, else the host's address book, else the peer router: the DHT), opens one `/http`
  stream on the (reused) connection, retrying once if a stale connection breaks while the stream opens
  (Nabu does the same), and hands back a `ProxyResponse` whose body streams. Finding, dialing and
  negotiating are bounded by `open_timeout`; waiting for the head by `response_timeout`; every body chunk
  by `idle_timeout`. At most `max_concurrent_requests` run at once; a request waits for a slot up to
  `open_timeout`, then fails with `Overloaded`.

`P2PByteStream` adapts a `P2PStream` to the `ByteStream` the protocol logic in `service` speaks: stream
errors become `trio.BrokenResourceError`, and `aclose()` is a graceful close after `send_eof()` but a reset
otherwise (an abandoned exchange stops at once instead of draining for the linger period).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

import trio

from nabu_py.errors import DecodeError
from nabu_py.p2p import (
    DialError,
    NoAddressesError,
    P2PError,
    P2PHost,
    P2PStream,
    PeerId,
    ProtocolNegotiationError,
    StreamError,
)
from nabu_py.protocols.http_proxy.errors import Overloaded, PeerNotFound, ProxyError, ProxyTimeout
from nabu_py.protocols.http_proxy.service import (
    PROTOCOL_ID,
    HttpProxyConfig,
    ProxyResponse,
    refuse_stream,
    send_request,
    serve_stream,
)

log = logging.getLogger(__name__)

__all__ = ["HttpProxy", "P2PByteStream"]

READ_SIZE: Final = 1 << 20
"""Largest read from a libp2p stream (the yamux reader hands over up to 1 MiB at a time)."""


class P2PByteStream:
    """`service.ByteStream` over a `P2PStream`."""

    __slots__ = ("_eof_sent", "stream")

    def __init__(self, stream: P2PStream) -> None:
        self.stream = stream
        """The wrapped libp2p stream."""
        self._eof_sent = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to `max_bytes` (b"" at the peer's EOF); BrokenResourceError if the stream broke."""
        try:
            return await self.stream.read(max_bytes or READ_SIZE)
        except StreamError as e:
            raise trio.BrokenResourceError(f"/http stream broke: {e}") from e

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`; BrokenResourceError if the stream broke."""
        try:
            await self.stream.write(data)
        except StreamError as e:
            raise trio.BrokenResourceError(f"/http stream broke: {e}") from e

    async def send_eof(self) -> None:
        """Half-close: our message is complete."""
        try:
            await self.stream.close_write()
        except StreamError as e:
            raise trio.BrokenResourceError(f"/http stream broke: {e}") from e
        self._eof_sent = True

    async def aclose(self) -> None:
        """Graceful close after `send_eof`, reset otherwise."""
        if self._eof_sent:
            await self.stream.close()
        else:
            await self.stream.reset()


class HttpProxy:
    """HTTP over libp2p on one host: serve inbound `/http` streams, send requests to peers by id."""

    def __init__(self, host: P2PHost, config: HttpProxyConfig | None = None) -> None:
        self.host = host
        """The host streams are opened on and served from."""
        self.config = config if config is not None else HttpProxyConfig()
        """Limits and timeouts, both sides."""
        self.target: tuple[str, int] | None = None
        """Where inbound requests are forwarded (None: not serving)."""
        self._inbound = trio.CapacityLimiter(self.config.max_inbound_streams)
        self._outbound = trio.CapacityLimiter(self.config.max_concurrent_requests)

    # ---- serving side -----------------------------------------------------------------------------------
    def serve(self, target: tuple[str, int]) -> None:
        """Forward inbound `/http` requests to `target` = (host, port) of a local HTTP server."""
        host, port = target
        if not host or not 0 < port < 65536:
            raise ValueError(f"invalid proxy target {target!r}")
        self.target = (host, port)
        self.host.set_stream_handler(PROTOCOL_ID, self._handle)

    def stop_serving(self) -> None:
        """Stop accepting `/http` streams (requests in progress finish)."""
        self.target = None
        self.host.remove_stream_handler(PROTOCOL_ID)

    async def _handle(self, stream: P2PStream) -> None:
        target = self.target
        io = P2PByteStream(stream)
        if target is None:
            await refuse_stream(
                io, 502, "Bad Gateway: this node has no proxy target", self.config.idle_timeout
            )
            return
        try:
            self._inbound.acquire_on_behalf_of_nowait(stream)
        except trio.WouldBlock:
            log.info(
                "/http: refusing a stream from %s: %d requests in progress",
                stream.peer,
                self._inbound.total_tokens,
            )
            await refuse_stream(
                io, 503, "Service Unavailable: too many concurrent /http requests", self.config.idle_timeout
            )
            return
        try:
            await serve_stream(io, stream.peer.to_base58(), target, self.config)
        finally:
            self._inbound.release_on_behalf_of(stream)

    @property
    def inbound_in_progress(self) -> int:
        """Inbound `/http` requests being served now."""
        return int(self._inbound.borrowed_tokens)

    # ---- calling side -----------------------------------------------------------------------------------
    async def request(
        self,
        peer: PeerId | str,
        method: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: AsyncIterator[bytes] | bytes = b"",
        content_length: int | None = None,
    ) -> ProxyResponse:
        """Send one HTTP request to `peer`'s proxy target over a new `/http` stream.

        `path` is the target's path with its query (`/api/v0/id?x=1`); `headers` are passed on except
        hop-by-hop ones and `Host`, which becomes the peer id. `body` is bytes or an async iterator of
        chunks (then give `content_length` if known, else the body goes out chunked). The response body
        streams: iterate `ProxyResponse.body` exactly once (or `aclose()` it) to release the stream.

        Raises `PeerNotFound` (no addresses), `ProxyTimeout`, `BodyTooLarge`, `Overloaded` or
        `ProxyError`; a malformed textual peer id raises `DecodeError`. Methods outside
        `config.allowed_methods` are the caller's business (the gateway refuses them with 403).
        """
        target = peer if isinstance(peer, PeerId) else PeerId.parse(peer)
        if target == self.host.peer_id:
            raise ProxyError("refusing to proxy a request to ourselves")
        if not path.startswith("/"):
            raise ValueError("the request path must start with '/'")
        with trio.move_on_after(self.config.open_timeout) as wait:
            await self._outbound.acquire()
        if wait.cancelled_caught:
            raise Overloaded(
                f"too many concurrent proxied requests ({self._outbound.total_tokens} in progress)"
            )
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._outbound.release()

        try:
            stream = await self.open_stream(target)
            response = await send_request(
                P2PByteStream(stream),
                target.to_base58(),
                method,
                path,
                headers,
                body,
                content_length,
                self.config,
            )
        except BaseException:
            release()
            raise
        response.body = _releasing(response.body, release)
        return response

    async def open_stream(self, peer: PeerId) -> P2PStream:
        """A negotiated `/http` stream to `peer` (dialing it if needed), within `open_timeout`."""
        try:
            with trio.fail_after(self.config.open_timeout):
                was_connected = self.host.is_connected(peer)
                try:
                    return await self.host.new_stream(peer, [PROTOCOL_ID])
                except (DialError, ProtocolNegotiationError, StreamError) as e:
                    if isinstance(e, NoAddressesError) or not was_connected or self.host.is_connected(peer):
                        raise
                    # The pooled connection died under us: dial afresh, once (Nabu retries once on
                    # "connection closed" too).
                    log.debug("/http stream to %s failed with its connection (%s); redialing", peer, e)
                    return await self.host.new_stream(peer, [PROTOCOL_ID])
        except trio.TooSlowError:
            raise ProxyTimeout(f"timed out after {self.config.open_timeout:g} s reaching {peer}") from None
        except NoAddressesError as e:
            raise PeerNotFound(f"Target not found: {peer} ({e})") from None
        except ProtocolNegotiationError as e:
            raise ProxyError(f"{peer} does not serve {PROTOCOL_ID}: {e}") from None
        except (P2PError, DecodeError) as e:
            raise ProxyError(f"cannot reach {peer}: {e}") from None


async def _releasing(body: AsyncIterator[bytes], release: Callable[[], None]) -> AsyncIterator[bytes]:
    """`body`, calling `release()` once it ends in any way."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        release()
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
