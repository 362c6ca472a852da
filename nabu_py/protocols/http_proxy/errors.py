"""Errors of the `/http` proxy (spec/nabu.md §4).

    ProxyError (NabuError)        a proxied request failed; the local gateway answers 502 Bad Gateway
    ├── PeerNotFound              no address is known for the target peer (address book and peer router
    │                             came back empty); the gateway answers 400 "Target not found: <peer>",
    │                             like Nabu's ConnectionException
    ├── BodyTooLarge              a request or response body exceeds `HttpProxyConfig.max_body` (413)
    ├── ProxyTimeout              a connect, response or idle timeout expired (the gateway: 504)
    └── Overloaded                `max_concurrent_requests` are in flight and no slot freed up (503)

Malformed local requests (a bad peer id, a path without `/http/`) are not ProxyErrors: the gateway
reports them as 400 with the message in the `Trailer` header before any peer is contacted.
"""

from __future__ import annotations

from nabu_py.errors import NabuError


class ProxyError(NabuError):
    """The proxied request failed (peer unreachable, stream broken, timeout, bad response)."""


class PeerNotFound(ProxyError):
    """Neither the address book nor the peer router knows an address of the target peer."""


class BodyTooLarge(ProxyError):
    """A request or response body is larger than the configured limit."""


class ProxyTimeout(ProxyError):
    """Waiting for the peer (connect, response head or the next body chunk) took too long."""


class Overloaded(ProxyError):
    """Too many proxied requests are in flight on this node."""
