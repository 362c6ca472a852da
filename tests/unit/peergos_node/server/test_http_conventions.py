"""`ApiApp` over raw ASGI: routing, the POST-only rule, body limits, a client leaving mid-body, the request
fields handlers see, and the error convention (status + URL-encoded `Trailer`)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from peergos_node.server.http import ApiApp, ApiRequest, HttpError, bytes_response

Message = dict[str, Any]


async def call(
    app: ApiApp,
    path: str,
    *,
    method: str = "POST",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    messages: list[Message] | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through the app: (status, response headers, body)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers or [],
        "http_version": "1.1",
    }
    inbox = list(messages or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def echo_app() -> tuple[ApiApp, list[ApiRequest]]:
    seen: list[ApiRequest] = []

    async def echo(req: ApiRequest) -> Response:
        seen.append(req)
        if req.has("fail"):
            raise HttpError("no good: 100% & more")
        return bytes_response(req.body)

    app = ApiApp({}, name="test")
    app.add("/api/v0/echo", echo, max_body=10)
    app.add_prefix("/api/v0/pre/", echo)
    return app, seen


async def test_requests_reach_handlers_with_their_fields() -> None:
    app, seen = echo_app()
    status, _, body = await call(
        app,
        "/api/v0/echo",
        query=b"arg=a%2Fb&arg=c+d&flag",
        headers=[(b"Content-Length", b"5"), (b"source", b"QmPeer")],
        messages=[
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cde", "more_body": False},
        ],
    )
    assert (status, body) == (200, b"abcde")
    req = seen[0]
    assert req.path == "/api/v0/echo" and req.args("arg") == ["a/b", "c+d"] and req.has("flag")
    assert req.headers["content-length"] == "5" and req.source == "QmPeer"
    status, _, _ = await call(app, "/api/v0/pre/someprefix")
    assert status == 200 and seen[1].path == "/api/v0/pre/someprefix"


async def test_routing_and_method_rules() -> None:
    app, _ = echo_app()
    assert (await call(app, "/api/v0/nope"))[0] == 404
    assert (await call(app, "/api/v0/echo", method="GET"))[0] == 405
    app.public_server = True
    assert (await call(app, "/api/v0/echo", method="GET"))[0] == 200


async def test_bodies_past_the_limit_are_refused() -> None:
    app, seen = echo_app()
    status, headers, _ = await call(app, "/api/v0/echo", headers=[(b"content-length", b"11")])
    assert status == 413 and b"too+large" in headers[b"trailer"]
    chunks = [{"type": "http.request", "body": b"123456", "more_body": True}] * 2  # undeclared length
    status, _, _ = await call(app, "/api/v0/echo", messages=chunks)
    assert status == 413
    assert (await call(app, "/api/v0/echo", headers=[(b"content-length", b"x")]))[0] == 400
    assert not seen


async def test_a_client_leaving_mid_body_gets_no_handler_call() -> None:
    app, seen = echo_app()
    status, _, _ = await call(
        app, "/api/v0/echo", messages=[{"type": "http.request", "body": b"12", "more_body": True}]
    )
    assert status == 400 and not seen  # then http.disconnect


async def test_errors_carry_their_message_in_the_trailer_header() -> None:
    app, _ = echo_app()
    status, headers, body = await call(app, "/api/v0/echo", query=b"fail")
    assert (status, body) == (400, b"") and headers[b"trailer"] == b"no+good%3A+100%25+%26+more"
