"""HTTP conventions of a Peergos server (spec/peergos.md §12 "General conventions", Java `HttpUtil`).

- Only POST is accepted unless the server is public (`-public-server true`): any other method gets 405,
  so a web page cannot trigger requests against a localhost server with GETs.
- Errors are HTTP 400 with the URL-encoded message in the `Trailer` header and an empty body (429 for
  rate limits); clients read the message from that header.
- Query strings are split on `&`/`=` and each part is percent-decoded (Java's `URI.getQuery()`, which
  Peergos parses, has already decoded them; `+` stays a plus).
- Request bodies are read incrementally and refused past a per-endpoint limit before being buffered.

`ApiApp` maps exact paths to async handlers that get an `ApiRequest` and return a starlette Response.
Handlers raise `HttpError` (or any PeergosError/DecodeError, reported as 400) for bad requests.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from nabu_py.errors import NabuError
from nabu_py.httputil import handle_lifespan
from peergos_node.errors import PeergosError

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024


class HttpError(Exception):
    """A request failure with an HTTP status and a message for the `Trailer` header."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RateLimited(HttpError):
    """Too many requests (429)."""

    def __init__(self, message: str = "Too Many Requests") -> None:
        super().__init__(message, 429)


def parse_query(query: str) -> dict[str, list[str]]:
    """Split a query string like Peergos' `HttpUtil.parseQuery` over `URI.getQuery()` (percent-decoded)."""
    out: dict[str, list[str]] = {}
    if not query:
        return out
    for part in query.lstrip("?").split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        out.setdefault(urllib.parse.unquote(key), []).append(urllib.parse.unquote(value))
    return out


@dataclass
class ApiRequest:
    """One API call: path, raw query parameters, headers and the (size-limited) body."""

    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def has(self, key: str) -> bool:
        """Whether the query has `key`."""
        return key in self.params

    def arg(self, key: str) -> str:
        """The last value of a required parameter (HttpError 400 if absent)."""
        values = self.params.get(key)
        if not values:
            raise HttpError(f"missing parameter {key}")
        return values[-1]

    def opt(self, key: str) -> str | None:
        """The last value of an optional parameter."""
        values = self.params.get(key)
        return values[-1] if values else None

    def args(self, key: str) -> list[str]:
        """All values of a repeated parameter (`arg=..&arg=..`)."""
        return list(self.params.get(key, []))

    def int_arg(self, key: str) -> int:
        """A required integer parameter."""
        v = self.arg(key)
        try:
            return int(v)
        except ValueError:
            raise HttpError(f"parameter {key} must be an integer") from None

    def bool_arg(self, key: str, default: bool = False) -> bool:
        """An optional boolean parameter (`true`/`false`, Java `Boolean.parseBoolean`)."""
        v = self.opt(key)
        return default if v is None else v.lower() == "true"

    @property
    def source(self) -> str | None:
        """The `Source` header (peer id of the p2p caller, set by the /http proxy)."""
        return self.headers.get("source")


Handler = Callable[[ApiRequest], Awaitable[Response]]
SyncHandler = Callable[[ApiRequest], Response]


@dataclass(frozen=True)
class Endpoint:
    """An API endpoint: its handler and body-size limit.

    `sync_handler`, if given, does the same as `handler` without the event loop (it may block on the
    database or block store): a threaded transport (`http_server.ApiServer`) runs it in the connection's
    own thread instead of handing the request to trio and back. Used for the hot read paths.
    """

    handler: Handler
    max_body: int = DEFAULT_MAX_BODY
    sync_handler: SyncHandler | None = None


def bytes_response(body: bytes, etag: str | None = None) -> Response:
    """Binary reply; immutable content gets Peergos' cache headers."""
    headers = {}
    if etag is not None:
        headers = {"Cache-Control": "public, max-age=31622400 immutable", "ETag": f'"{etag}"'}
    return Response(body, media_type="application/octet-stream", headers=headers)


def json_text_response(text: str) -> Response:
    """A reply whose body is already JSON text (or a bare string, as Peergos' `replyJson`)."""
    return Response(text.encode(), media_type="application/json")


def json_response(value: Any) -> Response:
    """A JSON reply."""
    return json_text_response(json.dumps(value, separators=(",", ":")))


def bool_response(value: bool) -> Response:
    """Java `DataOutputStream.writeBoolean`: one byte, 1 or 0."""
    return bytes_response(b"\x01" if value else b"\x00")


def error_response(message: str, status: int = 400) -> Response:
    """Peergos error: status with the URL-encoded message in the `Trailer` header, empty body."""
    trailer = urllib.parse.quote_plus(message[:2000])
    return Response(b"", status_code=status, media_type="text/plain", headers={"Trailer": trailer})


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """Read the request body from ASGI `receive`, refusing it as soon as it exceeds `limit` bytes
    (ClientDisconnect if the client goes away first)."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HttpError(f"request body too large (limit {limit} bytes)", 413)
        except ValueError:
            raise HttpError("bad Content-Length") from None
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise HttpError(f"request body too large (limit {limit} bytes)", 413)
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ApiApp:
    """An ASGI app dispatching exact paths to Peergos-convention endpoints."""

    def __init__(
        self, endpoints: dict[str, Endpoint], *, public_server: bool = False, name: str = "api"
    ) -> None:
        self.endpoints = dict(endpoints)
        self.prefixes: dict[str, Endpoint] = {}
        self.public_server = public_server
        self.name = name

    def add(
        self,
        path: str,
        handler: Handler,
        max_body: int = DEFAULT_MAX_BODY,
        *,
        sync_handler: SyncHandler | None = None,
    ) -> None:
        """Register an endpoint (`sync_handler`: a blocking twin of `handler`, see `Endpoint`)."""
        self.endpoints[path] = Endpoint(handler, max_body, sync_handler)

    def add_prefix(self, prefix: str, handler: Handler, max_body: int = DEFAULT_MAX_BODY) -> None:
        """Register an endpoint for every path starting with `prefix` (e.g. `getUsernamesGzip/<prefix>`)."""
        self.prefixes[prefix] = Endpoint(handler, max_body)

    def mount(self, other: ApiApp) -> None:
        """Serve another ApiApp's endpoints too."""
        self.endpoints.update(other.endpoints)
        self.prefixes.update(other.prefixes)

    def _find(self, path: str) -> Endpoint | None:
        found = self.endpoints.get(path)
        if found is not None:
            return found
        for prefix, endpoint in self.prefixes.items():
            if path.startswith(prefix):
                return endpoint
        return None

    def route(self, method: str, path: str) -> tuple[str, Endpoint] | Response:
        """The endpoint for a request's (percent-decoded) path, with the path as handlers see it; or the
        404 / 405 reply (the POST-only rule)."""
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")  # starlette's url.path
        endpoint = self._find(path)
        if endpoint is None:
            return Response(b"", status_code=404)
        if method != "POST" and not self.public_server:
            return Response(b"", status_code=405)
        return path, endpoint

    async def respond(self, endpoint: Endpoint, request: ApiRequest) -> Response:
        """Run an endpoint's handler, turning errors into Peergos error replies."""
        try:
            return await endpoint.handler(request)
        except Exception as e:
            return self.error_reply(e, request.path)

    def respond_sync(self, endpoint: Endpoint, request: ApiRequest) -> Response:
        """Run an endpoint's `sync_handler` (the caller checked it has one) in the calling thread."""
        assert endpoint.sync_handler is not None
        try:
            return endpoint.sync_handler(request)
        except Exception as e:
            return self.error_reply(e, request.path)

    def error_reply(self, error: Exception, path: str) -> Response:
        """The reply for a failed request: its status and message (`Trailer`), 500 if unexpected."""
        if isinstance(error, HttpError):
            return error_response(error.message, error.status)
        if isinstance(error, (PeergosError, NabuError, ValueError)):
            return error_response(str(error) or type(error).__name__)
        log.error("%s: unexpected error handling %s", self.name, path, exc_info=error)
        return error_response(f"internal error: {type(error).__name__}", 500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handle_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self.dispatch(scope, receive)
        await response(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive) -> Response:
        """Route one ASGI request, applying the method rule, body limit and error conventions.

        Reads the ASGI scope directly (a starlette `Request` costs more than the rest of a small call);
        headers are latin-1 with lower-case names.
        """
        routed = self.route(scope["method"], scope["path"])
        if isinstance(routed, Response):
            return routed
        path, endpoint = routed
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await read_body(receive, headers, endpoint.max_body)
        except HttpError as e:
            return error_response(e.message, e.status)
        except ClientDisconnect:
            # the client went away mid-body (it cancelled the request); nothing was stored, nobody to answer
            log.debug("%s: client disconnected during %s", self.name, path)
            return Response(b"", status_code=400)
        return await self.respond(endpoint, ApiRequest(path, parse_query(raw_query), headers, body))
