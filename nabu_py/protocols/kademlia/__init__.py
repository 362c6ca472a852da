"""Kademlia DHT (`/ipfs/kad/1.0.0`) as pure parts, rust-libp2p style (design.md §4 practice 5).

- `messages`: wire format (proto/dht.proto), 1 MiB limit, varint framing.
- `keys`: 256-bit keyspace, sha256 positions, XOR distance.
- `routing_table`: k-bucket table with replacement caches and ping-to-evict.
- `query`: lookup state machines (closest peers, values, providers, put, provide).
- `records`, `sqlite_stores`: record/provider stores with expiry and bounds; validators.
- `engine`: the sans-IO node tying them together.
- `service`: the trio driver on a `nabu_py.p2p.P2PHost` (`KademliaService.start(host, DhtConfig(...))`);
  import it from `nabu_py.protocols.kademlia.service` (this package stays free of I/O imports, so the
  simulations can use the core without loading libp2p).
"""

from nabu_py.protocols.kademlia.engine import (
    Action,
    KademliaConfig,
    KademliaEngine,
    Penalise,
    PutResult,
    QueryFinished,
    QueryKind,
    Reply,
    SendRequest,
)
from nabu_py.protocols.kademlia.errors import InvalidRecord, QueryLimitReached
from nabu_py.protocols.kademlia.messages import PROTOCOL_ID, Message, MessageType, Peer, Record
from nabu_py.protocols.kademlia.query import ValueResult
from nabu_py.protocols.kademlia.records import Validator

__all__ = [
    "PROTOCOL_ID",
    "Action",
    "InvalidRecord",
    "KademliaConfig",
    "KademliaEngine",
    "Message",
    "MessageType",
    "Peer",
    "Penalise",
    "PutResult",
    "QueryFinished",
    "QueryKind",
    "QueryLimitReached",
    "Record",
    "Reply",
    "SendRequest",
    "Validator",
    "ValueResult",
]
