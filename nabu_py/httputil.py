"""HTTP conventions of Nabu's local endpoints (spec/nabu.md §6.1, §10 items 22-23), as raw ASGI helpers.

- Every local endpoint (`/api/v0/...` and `/p2p/...`) accepts POST only; any other method gets **403**
  with an empty body (Nabu's `Handler`: browsers can GET localhost cross-site but cannot POST there).
  Peergos' own server answers 405 in that case; Nabu's 403 is kept here because this is Nabu's API.
- Errors are **400** with an empty body and the URL-encoded message in a `Trailer` response header,
  Content-Type text/plain (Peergos' and Nabu's clients read the message from that header). Gateway
  failures (5xx) carry the same header and the message as the body too.
- Unknown paths get 404 with an empty body.
- Query parameters are URL-decoded like Nabu's `URI.getQuery()` and may repeat (`arg=..&arg=..`).

These are helpers over the raw ASGI `send` callable, so streaming endpoints (the `/p2p/` gateway) and
ordinary ones share one error format without a web framework in between.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import trio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_TRAILER_MESSAGE: Final = 2000
"""Error messages are cut to this many characters before encoding (a header must stay small)."""

METHOD_NOT_ALLOWED: Final = 403
"""Nabu's answer to anything but POST."""


def trailer_value(message: str) -> bytes:
    """The `Trailer` header value carrying an error message (Java `URLEncoder.encode`, UTF-8)."""
    return urllib.parse.quote_plus(message[:MAX_TRAILER_MESSAGE]).encode("ascii")


async def send_response(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete response with a known body."""
    out = list(headers or [])
    if content_type is not None:
        out.append((b"content-type", content_type))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, message: str, status: int = 400) -> None:
    """A Nabu error: `status` with the message in `Trailer` (and as the body for 5xx gateway errors)."""
    body = message.encode("utf-8", "replace") if status >= 500 else b""
    await send_response(send, status, body, b"text/plain", [(b"trailer", trailer_value(message))])


async def send_json(send: Send, value: object) -> None:
    """200 with compact JSON (`{"ID":"..."}`, the way Nabu's JSON printer writes it)."""
    await send_response(send, 200, json.dumps(value, separators=(",", ":")).encode(), b"application/json")


async def send_bytes(send: Send, body: bytes, content_type: bytes = b"application/octet-stream") -> None:
    """200 with a binary (or plain text) body."""
    await send_response(send, 200, body, content_type)


def parse_query(raw: bytes | str) -> dict[str, list[str]]:
    """Decode a query string into repeated parameters; values are URL-decoded, blanks kept."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    out: dict[str, list[str]] = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=1000):
        out.setdefault(key, []).append(value)
    return out


DRAIN_LIMIT: Final = 16 * 1024 * 1024
"""A request refused before its body was used is still read (and discarded) up to this size first."""


DRAIN_TIMEOUT: Final = 30.0
"""...and for at most this many seconds."""


async def drain_body(receive: Receive, limit: int = DRAIN_LIMIT, seconds: float = DRAIN_TIMEOUT) -> None:
    """Read and discard the request body (up to `limit` bytes, for up to `seconds`) before an early
    error response, so ordinary clients, which send the whole body before reading, see the error
    instead of a reset connection."""
    seen = 0
    with trio.move_on_after(seconds):
        while seen <= limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (name in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


async def handle_lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI lifespan scope (nothing to start or stop)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
