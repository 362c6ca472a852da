"""Nabu-compatible local HTTP API (spec/nabu.md §6) and its server (starlette request parsing, hypercorn
on trio).

`NabuApi(node)` is one ASGI app for the node's API address (default 127.0.0.1:5001):

* `/api/v0/<endpoint>` — the subset of Nabu's `APIHandler` this node implements, with Nabu's shapes:

  - `id` -> `{"ID":"<base58 peer id>"}`
  - `version` -> `{"Version":"0.9.0"}` (the Nabu API level served)
  - `block/get?arg=<cid>` -> the block's bytes; 400 if absent
  - `block/put?format=<IPLD codec name>` with a multipart body of exactly one part ->
    `{"Hash":"<cidv1 base32>"}`; 400 "Block too large" over the store's max block size
  - `block/rm?arg=<cid>` -> `{"Error":"","Hash":"<cid>"}`; 400 if absent
  - `block/stat?arg=<cid>` -> `{"Size":n}`; 400 if absent
  - `block/has?arg=<cid>` -> text `true` / `false`
  - `refs/local` -> `{"Ref":"<cid>","Err":""}` objects concatenated without separators (streamed)

  The block endpoints exist only when the node has a block store (an embedded node without one serves
  `id` and `version`, like Nabu's `PeerAPIHandler`). `block/get` and `block/stat` answer from the local
  store only (no bitswap in this node yet); `auth`, `peers` and `persist` are accepted and ignored.
* `/p2p/<peer>/http/<path>` — the `/http` gateway (`nabu_py.protocols.http_proxy.gateway`).

Conventions (`nabu_py.httputil`): POST only (403 otherwise), errors 400 with the message in `Trailer`,
unknown paths 404. Request bodies are read with a limit per endpoint and refused beyond it. Block store
calls run in worker threads (the store is thread-safe), so disk I/O never stalls the event loop.

`serving(app, host, port)` runs any such ASGI app with hypercorn on trio and yields the bound base URL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from hypercorn.trio import tcp_server as _hypercorn_tcp
from starlette.requests import ClientDisconnect, Request

from nabu_py.blockstore import Blockstore
from nabu_py.errors import BlockNotFound, BlockTooLarge, DecodeError, NabuError
from nabu_py.httputil import (
    DRAIN_LIMIT,
    METHOD_NOT_ALLOWED,
    Receive,
    Scope,
    Send,
    drain_body,
    handle_lifespan,
    parse_query,
    send_bytes,
    send_error,
    send_json,
    send_response,
)
from nabu_py.multiformats.cid import Cid
from nabu_py.protocols.http_proxy.gateway import PREFIX as P2P_PREFIX

if TYPE_CHECKING:
    from nabu_py.node import NabuNode

log = logging.getLogger(__name__)

__all__ = ["API_PREFIX", "API_VERSION", "CODECS", "ApiError", "NabuApi", "parse_multipart", "serving"]

API_PREFIX: Final = "/api/v0/"
API_VERSION: Final = "0.9.0"
"""The Nabu API version whose endpoints and shapes this API reproduces (Nabu's `CURRENT_VERSION`)."""
MULTIPART_OVERHEAD: Final = 64 * 1024
"""Bytes of multipart framing allowed on top of the largest block in a `block/put` body."""
SMALL_BODY: Final = 64 * 1024
REFS_BATCH: Final = 1000
BODY_TIMEOUT: Final = 60.0
"""A request body must arrive within this many seconds (hypercorn itself has no read timeout)."""
SOCKET_READ_SIZE: Final = 1 << 20
"""Bytes hypercorn asks from a client socket per read (its own constant is 64 KiB).

Measured with benchmarks/p2p_stream.py (`proxy` section): a 64 MiB upload through `/p2p/<peer>/http/`
cost the calling node ~0.25 s of CPU with 64 KiB reads and ~0.18 s with 1 MiB reads, and moved ~25 %
faster, because every read becomes an h11 event, an ASGI message and a yamux frame of its own.
hypercorn has no setting for it, so `serving` raises the module's constant (process-wide, harmless:
it only bounds a single `recv`)."""

CODECS: Final = {
    "raw": 0x55,
    "dag-pb": 0x70,
    "dag-cbor": 0x71,
    "libp2p-key": 0x72,
    "cbor": 0x51,
    "json": 0x0200,
    "dag-json": 0x0129,
}
"""IPLD codec names `block/put?format=` accepts (lower-cased, as Nabu's `Cid.Codec.lookupIPLDName`)."""


class ApiError(Exception):
    """A request the API refuses: the message goes into the `Trailer` header of a 400 (or `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ApiCall:
    """One API request: decoded query parameters and the (size-limited) body."""

    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str = "arg", what: str = "ipfs-path") -> str:
        """Exactly one value of `name` (Nabu: `argument "<what>" is required`)."""
        values = self.params.get(name)
        if not values or len(values) != 1:
            raise ApiError(f'argument "{what}" is required')
        return values[0]

    def cid(self, what: str = "ipfs-path") -> Cid:
        """The `arg` parameter as a CID."""
        text = self.arg("arg", what)
        try:
            return Cid.parse(text)
        except DecodeError as e:
            raise ApiError(f"invalid CID {text[:100]!r}: {e}") from None


Handler = Callable[[ApiCall, Send], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """An API endpoint: its handler, its request body limit and the error for a body over it."""

    handler: Handler
    max_body: int = SMALL_BODY
    too_large: str = f"request body too large (limit {SMALL_BODY} bytes)"


def parse_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The contents of the parts of a multipart/form-data body (DecodeError if malformed)."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not content_type.lower().startswith("multipart/") or not boundary or len(boundary) > 200:
        raise DecodeError("expected a multipart/form-data body with a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    pieces = body.split(delimiter)
    if len(pieces) < 3:
        raise DecodeError("multipart body without parts")
    parts: list[bytes] = []
    for piece in pieces[1:-1]:
        if not piece.startswith(b"\r\n"):
            raise DecodeError("malformed multipart part")
        _head, sep, content = piece[2:].partition(b"\r\n\r\n")
        if not sep or not content.endswith(b"\r\n"):
            raise DecodeError("malformed multipart part")
        parts.append(content[:-2])
    if not pieces[-1].startswith(b"--"):
        raise DecodeError("multipart body without the closing delimiter")
    return parts


class NabuApi:
    """ASGI app serving `/api/v0/...` and `/p2p/...` for a `NabuNode`."""

    def __init__(self, node: NabuNode) -> None:
        self.node = node
        """The node whose host, block store and `/http` gateway are served."""
        self.max_block_size: int = node.blockstore.max_block_size if node.blockstore is not None else 0
        """Largest block `block/put` accepts (the store's limit; Nabu: 2 MiB)."""
        self.endpoints: dict[str, Endpoint] = {"id": Endpoint(self._id), "version": Endpoint(self._version)}
        """Endpoint name (after `/api/v0/`) -> endpoint."""
        if node.blockstore is not None:
            self.endpoints.update(
                {
                    "block/get": Endpoint(self._block_get),
                    "block/put": Endpoint(
                        self._block_put, self.max_block_size + MULTIPART_OVERHEAD, "Block too large"
                    ),
                    "block/rm": Endpoint(self._block_rm),
                    "block/stat": Endpoint(self._block_stat),
                    "block/has": Endpoint(self._block_has),
                    "refs/local": Endpoint(self._refs_local),
                }
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(P2P_PREFIX):
            await self.node.gateway.handle(scope, receive, send)
            return
        if not path.startswith(API_PREFIX):
            await drain_body(receive)
            await send_response(send, 404)
            return
        if scope["method"] != "POST":
            await drain_body(receive)
            await send_response(send, METHOD_NOT_ALLOWED)
            return
        endpoint = self.endpoints.get(path[len(API_PREFIX) :])
        if endpoint is None:
            await drain_body(receive)
            await send_response(send, 404)
            return
        request = Request(scope, receive)
        try:
            call = ApiCall(
                parse_query(scope.get("query_string", b"")),
                {k.lower(): v for k, v in request.headers.items()},
                await _read_body(request, endpoint),
            )
            await endpoint.handler(call, send)
        except ClientDisconnect:
            return
        except ApiError as e:
            await send_error(send, e.message, e.status)
        except (NabuError, ValueError) as e:
            await send_error(send, str(e) or type(e).__name__)
        except Exception as e:
            log.exception("API %s failed", path)
            await send_error(send, f"internal error: {type(e).__name__}", 500)

    # ---- endpoints ------------------------------------------------------------------------------------
    def _store(self) -> Blockstore:
        store = self.node.blockstore
        if store is None:  # endpoints are only registered with a store
            raise ApiError("this node has no block store", 404)
        return store

    async def _id(self, call: ApiCall, send: Send) -> None:
        await send_json(send, {"ID": self.node.peer_id.to_base58()})

    async def _version(self, call: ApiCall, send: Send) -> None:
        await send_json(send, {"Version": API_VERSION})

    async def _block_get(self, call: ApiCall, send: Send) -> None:
        cid = call.cid()
        try:
            data = await trio.to_thread.run_sync(self._store().get, cid)
        except BlockNotFound:
            raise ApiError(f"block not found: {cid.to_base32()}") from None
        await send_bytes(send, data)

    async def _block_put(self, call: ApiCall, send: Send) -> None:
        formats = call.params.get("format")
        if not formats or len(formats) != 1:
            raise ApiError('argument "format" is required')
        codec = CODECS.get(formats[0].lower())
        if codec is None:
            raise ApiError(f"unsupported format {formats[0][:40]!r}; one of {', '.join(CODECS)}")
        try:
            parts = parse_multipart(call.body, call.headers.get("content-type", ""))
        except DecodeError as e:
            raise ApiError(str(e)) from None
        if len(parts) != 1:
            raise ApiError("Multiple input not supported")
        block = parts[0]
        if len(block) > self.max_block_size:
            raise ApiError("Block too large")
        try:
            cid = await trio.to_thread.run_sync(self._store().put_block, codec, block)
        except BlockTooLarge:
            raise ApiError("Block too large") from None
        await send_json(send, {"Hash": cid.to_base32()})

    async def _block_rm(self, call: ApiCall, send: Send) -> None:
        cid = call.cid("cid")
        if not await trio.to_thread.run_sync(self._store().rm, cid):
            raise ApiError(f"block not found: {cid.to_base32()}")
        await send_json(send, {"Error": "", "Hash": cid.to_base32()})

    async def _block_stat(self, call: ApiCall, send: Send) -> None:
        cid = call.cid("cid")
        size = await trio.to_thread.run_sync(self._store().size, cid)
        if size is None:
            raise ApiError(f"block not found: {cid.to_base32()}")
        await send_json(send, {"Size": size})

    async def _block_has(self, call: ApiCall, send: Send) -> None:
        cid = call.cid()
        has = await trio.to_thread.run_sync(self._store().has, cid)
        await send_bytes(send, b"true" if has else b"false", b"text/plain")

    async def _refs_local(self, call: ApiCall, send: Send) -> None:
        store = self._store()
        refs = store.list()
        first = await trio.to_thread.run_sync(lambda: list(islice(refs, REFS_BATCH)))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        batch = first
        while batch:
            text = "".join(
                json.dumps({"Ref": c.to_base32(), "Err": ""}, separators=(",", ":")) for c in batch
            )
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
            try:
                batch = await trio.to_thread.run_sync(lambda: list(islice(refs, REFS_BATCH)))
            except NabuError as e:
                # The status is out already: end the connection early (a truncated listing), never
                # a listing that looks complete.
                log.warning("refs/local stopped: %s", e)
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read_body(request: Request, endpoint: Endpoint) -> bytes:
    """The request body; 400 if it exceeds the endpoint's limit.

    An oversize body is read and discarded up to `DRAIN_LIMIT` before the error goes out, so ordinary
    clients (which send the whole body before reading) see the 400 instead of a reset connection;
    beyond that the error goes out at once and the connection closes.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ApiError("malformed Content-Length") from None
        if n > DRAIN_LIMIT:
            raise ApiError(endpoint.too_large)
    chunks: list[bytes] = []
    total = 0
    with trio.move_on_after(BODY_TIMEOUT) as scope:
        async for chunk in request.stream():
            total += len(chunk)
            if total > DRAIN_LIMIT:
                break
            if total <= endpoint.max_body:
                chunks.append(chunk)
    if scope.cancelled_caught:
        raise ApiError(f"the request body did not arrive within {BODY_TIMEOUT:g} s")
    if total > endpoint.max_body:
        raise ApiError(endpoint.too_large)
    return b"".join(chunks)


@asynccontextmanager
async def serving(app: Any, host: str, port: int, *, graceful_timeout: float = 2.0) -> AsyncIterator[str]:
    """Serve `app` with hypercorn on (host, port) in the background; yield the base URL
    (`http://host:port`, the real port when 0 was asked). OSError if the address cannot be bound."""
    if getattr(_hypercorn_tcp, "MAX_RECV", SOCKET_READ_SIZE) < SOCKET_READ_SIZE:
        _hypercorn_tcp.MAX_RECV = SOCKET_READ_SIZE
    hc = HypercornConfig()
    hc.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = graceful_timeout
    hc.keep_alive_timeout = 60
    hc.h11_max_incomplete_size = 64 * 1024
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(serve, app, hc, shutdown_trigger=shutdown.wait))
        try:
            yield binds[0]
        finally:
            shutdown.set()
            nursery.cancel_scope.deadline = trio.current_time() + graceful_timeout + 1
