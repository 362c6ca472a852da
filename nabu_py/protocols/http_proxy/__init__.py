"""HTTP/1.1 over a libp2p stream, protocol id `/http` (spec/nabu.md §4).

Modules: `service` (the protocol over any byte stream, both sides), `p2p` (`HttpProxy`: serving on a
`P2PHost` and calling peers by id), `gateway` (`P2PGateway`: the local `/p2p/<peer>/http/...` ASGI
route), `errors` (the error tree).
"""

from nabu_py.protocols.http_proxy.errors import (
    BodyTooLarge,
    Overloaded,
    PeerNotFound,
    ProxyError,
    ProxyTimeout,
)
from nabu_py.protocols.http_proxy.gateway import P2PGateway, parse_gateway_path
from nabu_py.protocols.http_proxy.p2p import HttpProxy, P2PByteStream
from nabu_py.protocols.http_proxy.service import (
    PROTOCOL_ID,
    ByteStream,
    HttpProxyConfig,
    ProxyResponse,
    refuse_stream,
    send_request,
    serve_stream,
)

__all__ = [
    "PROTOCOL_ID",
    "BodyTooLarge",
    "ByteStream",
    "HttpProxy",
    "HttpProxyConfig",
    "Overloaded",
    "P2PByteStream",
    "P2PGateway",
    "PeerNotFound",
    "ProxyError",
    "ProxyResponse",
    "ProxyTimeout",
    "parse_gateway_path",
    "refuse_stream",
    "send_request",
    "serve_stream",
]
