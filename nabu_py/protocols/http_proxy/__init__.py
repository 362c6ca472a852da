"""HTTP/1.1 over a libp2p stream, protocol id `/http` (spec/nabu.md §4)."""

from nabu_py.protocols.http_proxy.service import (
    PROTOCOL_ID,
    ByteStream,
    HttpProxyConfig,
    ProxyError,
    ProxyResponse,
    send_request,
    serve_stream,
)

__all__ = [
    "PROTOCOL_ID",
    "ByteStream",
    "HttpProxyConfig",
    "ProxyError",
    "ProxyResponse",
    "send_request",
    "serve_stream",
]
