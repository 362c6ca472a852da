"""Error tree of nabu_py.p2p (design.md §4.6: local misuse vs remote misbehaviour kept apart).

    NabuError
    ├── DecodeError (ValueError)        malformed peer id, key, certificate, multistream or yamux input
    └── P2PError                        a p2p operation failed
        ├── HostClosedError             the host is not running (closed or never opened)
        ├── ListenError                 a listen address could not be bound (e.g. port already in use)
        ├── DialError                   no connection to the peer could be established
        │   └── NoAddressesError        nothing known about where the peer is (address book, router empty)
        ├── SecurityError               a secure-channel handshake failed or the peer failed authentication
        ├── ProtocolNegotiationError    multistream-select failed (no common protocol, malformed reply)
        └── StreamError                 an operation on an open stream failed
            ├── StreamResetError        the stream was reset (by either side) or its connection died
            └── StreamClosedError       write after close_write()/close()

`DecodeError` always means the remote (or the file/user) sent garbage; callers reset the stream and may
penalise the peer. Everything in this tree can be caught with `except NabuError`.
"""

from __future__ import annotations

from nabu_py.errors import DecodeError, NabuError

__all__ = [
    "DecodeError",
    "DialError",
    "HostClosedError",
    "ListenError",
    "NoAddressesError",
    "P2PError",
    "ProtocolNegotiationError",
    "SecurityError",
    "StreamClosedError",
    "StreamError",
    "StreamResetError",
]


class P2PError(NabuError):
    """Base class of p2p failures."""


class HostClosedError(P2PError):
    """The host is closed (or was never opened)."""


class ListenError(P2PError, OSError):
    """A listen address could not be bound."""


class DialError(P2PError):
    """No connection to the peer could be established."""


class NoAddressesError(DialError):
    """Neither the caller, the address book nor the peer router know an address for the peer."""


class SecurityError(P2PError):
    """Secure channel handshake failed or the peer's identity could not be verified."""


class ProtocolNegotiationError(P2PError):
    """multistream-select found no common protocol or the remote broke the protocol."""


class StreamError(P2PError):
    """An operation on a stream failed."""


class StreamResetError(StreamError):
    """The stream was reset, or its connection closed before the stream ended cleanly."""


class StreamClosedError(StreamError):
    """The stream is closed for writing."""
