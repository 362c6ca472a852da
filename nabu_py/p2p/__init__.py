"""nabu_py.p2p: the libp2p host of nabu_py (TCP, TLS 1.3 / Noise, yamux, identify, ping) on py-libp2p 0.8.1.

Start here: `HostConfig`, `P2PHost.open`, `P2PStream`, `PeerId`, `HostIdentity`. The theory of operation
of each layer is in its module: `host` (API and lifecycle), `tls`, `yamux`, `multistream`, `upgrader`,
`identity` (keys, config encoding, certificates), `address_book`, `libp2p_fixes` (defects of 0.8.1 and
their fixes), `peer_id`, `addrs`.
"""

from nabu_py.p2p.address_book import AddressBook, MemoryAddressBook, SqliteAddressBook
from nabu_py.p2p.addrs import parse_multiaddr, split_peer, with_peer
from nabu_py.p2p.errors import (
    DialError,
    HostClosedError,
    ListenError,
    NoAddressesError,
    P2PError,
    ProtocolNegotiationError,
    SecurityError,
    StreamClosedError,
    StreamError,
    StreamResetError,
)
from nabu_py.p2p.host import (
    IDENTIFY_PROTOCOL,
    PING_PROTOCOL,
    HostConfig,
    IdentifyInfo,
    P2PHost,
    P2PStream,
    PeerRouter,
    StreamHandler,
)
from nabu_py.p2p.identity import HostIdentity, load_or_create_identity
from nabu_py.p2p.libp2p_fixes import configure_logging
from nabu_py.p2p.peer_id import PeerId
from nabu_py.p2p.yamux import YamuxConfig

__all__ = [
    "IDENTIFY_PROTOCOL",
    "PING_PROTOCOL",
    "AddressBook",
    "DialError",
    "HostClosedError",
    "HostConfig",
    "HostIdentity",
    "IdentifyInfo",
    "ListenError",
    "MemoryAddressBook",
    "NoAddressesError",
    "P2PError",
    "P2PHost",
    "P2PStream",
    "PeerId",
    "PeerRouter",
    "ProtocolNegotiationError",
    "SecurityError",
    "SqliteAddressBook",
    "StreamClosedError",
    "StreamError",
    "StreamHandler",
    "StreamResetError",
    "YamuxConfig",
    "configure_logging",
    "load_or_create_identity",
    "parse_multiaddr",
    "split_peer",
    "with_peer",
]
