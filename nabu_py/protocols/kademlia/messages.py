"""Wire messages of `/ipfs/kad/1.0.0` (libp2p specs, kad-dht/README.md "RPC messages"; spec/nabu.md §3.1).

`proto/dht.proto` is the source of truth; a test parses it and checks the field numbers and types used
here. Messages are proto3: default values (zero, empty, absent) are not written, and fields are written
in field-number order, so the bytes match go-libp2p-kad-dht's encoder.

Framing: every message on a stream is preceded by its length as an unsigned varint (multiformats
unsigned-varint, minimal). A message is at most `MAX_MESSAGE_SIZE` (1 MiB) in both directions;
`FrameDecoder` refuses a longer declared length before buffering it.

Decoding is bounded beyond the 1 MiB: keys, peer ids, addresses, peers per list and addresses per peer
each have a limit below, chosen far above what honest peers send (go sends 20 peers with a handful of
addresses each). Anything malformed or over a limit raises `nabu_py.errors.DecodeError`, and nothing
else. Unknown fields are skipped; unknown enum values are kept as plain ints (proto3 open enums), and
the engine decides what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from nabu_py.codec.protobuf import (
    LEN,
    VARINT,
    Writer,
    encode_varint,
    expect_bytes,
    expect_int,
    expect_string,
    iter_fields,
    to_int32,
)
from nabu_py.errors import DecodeError
from nabu_py.multiformats import varint

PROTOCOL_ID = "/ipfs/kad/1.0.0"
MAX_MESSAGE_SIZE = 1 << 20
MAX_KEY_SIZE = 2048
"""Keys in use are peer ids (<= 42 bytes), multihashes (<= 130) and `/ipns/`/`/pk/` routing keys."""
MAX_PEER_ID_SIZE = 128
MAX_ADDR_SIZE = 1024
MAX_ADDRS_PER_PEER = 128
MAX_PEERS_PER_LIST = 256
MAX_TIME_RECEIVED_SIZE = 64


class MessageType(IntEnum):
    """`Message.MessageType`."""

    PUT_VALUE = 0
    GET_VALUE = 1
    ADD_PROVIDER = 2
    GET_PROVIDERS = 3
    FIND_NODE = 4
    PING = 5


class ConnectionType(IntEnum):
    """`Message.ConnectionType`: the sender's connection state to a listed peer (advisory only)."""

    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3


# Field numbers (checked against proto/dht.proto by tests/unit/nabu_py/kademlia/test_proto_schema.py).
RECORD_KEY = 1
RECORD_VALUE = 2
RECORD_TIME_RECEIVED = 5
PEER_ID = 1
PEER_ADDRS = 2
PEER_CONNECTION = 3
MSG_TYPE = 1
MSG_KEY = 2
MSG_RECORD = 3
MSG_CLOSER_PEERS = 8
MSG_PROVIDER_PEERS = 9
MSG_CLUSTER_LEVEL_RAW = 10


@dataclass(frozen=True, slots=True)
class Peer:
    """`Message.Peer`: a peer id (multihash bytes) with its binary multiaddrs."""

    id: bytes
    addrs: tuple[bytes, ...] = ()
    connection: int = ConnectionType.NOT_CONNECTED

    def encode(self) -> bytes:
        """Protobuf encoding of this peer."""
        w = Writer()
        if self.id:
            w.write_bytes(PEER_ID, self.id)
        for a in self.addrs:
            w.write_bytes(PEER_ADDRS, a)
        if self.connection:
            w.write_int(PEER_CONNECTION, self.connection)
        return w.finish()

    @classmethod
    def decode(cls, data: bytes) -> Peer:
        """Parse an encoded `Peer`; DecodeError if malformed or over a limit."""
        pid = b""
        addrs: list[bytes] = []
        connection = 0
        for num, wt, val in iter_fields(data):
            if num == PEER_ID:
                pid = expect_bytes(num, wt, val, MAX_PEER_ID_SIZE)
            elif num == PEER_ADDRS:
                if len(addrs) >= MAX_ADDRS_PER_PEER:
                    raise DecodeError(f"peer has more than {MAX_ADDRS_PER_PEER} addresses")
                addrs.append(expect_bytes(num, wt, val, MAX_ADDR_SIZE))
            elif num == PEER_CONNECTION:
                connection = to_int32(expect_int(num, wt, val))
        return cls(pid, tuple(addrs), connection)


@dataclass(frozen=True, slots=True)
class Record:
    """`Record`: a key/value pair. `time_received` is informational and never trusted."""

    key: bytes
    value: bytes
    time_received: str = ""

    def encode(self) -> bytes:
        """Protobuf encoding of this record; ValueError for a field over the limits `decode` enforces,
        so we never send what we would refuse to read."""
        if len(self.key) > MAX_KEY_SIZE:
            raise ValueError(f"record key of {len(self.key)} bytes exceeds {MAX_KEY_SIZE}")
        if len(self.time_received.encode()) > MAX_TIME_RECEIVED_SIZE:
            raise ValueError(f"record timeReceived exceeds {MAX_TIME_RECEIVED_SIZE} UTF-8 bytes")
        w = Writer()
        if self.key:
            w.write_bytes(RECORD_KEY, self.key)
        if self.value:
            w.write_bytes(RECORD_VALUE, self.value)
        if self.time_received:
            w.write_string(RECORD_TIME_RECEIVED, self.time_received)
        return w.finish()

    @classmethod
    def decode(cls, data: bytes) -> Record:
        """Parse an encoded `Record`; DecodeError if malformed or over a limit."""
        key = b""
        value = b""
        time_received = ""
        for num, wt, val in iter_fields(data):
            if num == RECORD_KEY:
                key = expect_bytes(num, wt, val, MAX_KEY_SIZE)
            elif num == RECORD_VALUE:
                value = expect_bytes(num, wt, val)
            elif num == RECORD_TIME_RECEIVED:
                time_received = expect_string(num, wt, val, MAX_TIME_RECEIVED_SIZE)
        return cls(key, value, time_received)


def _decode_peer_list(current: tuple[Peer, ...] | list[Peer], data: bytes) -> list[Peer]:
    peers = current if isinstance(current, list) else list(current)
    if len(peers) >= MAX_PEERS_PER_LIST:
        raise DecodeError(f"more than {MAX_PEERS_PER_LIST} peers in one list")
    peers.append(Peer.decode(data))
    return peers


@dataclass(frozen=True, slots=True)
class Message:
    """`Message`: one Kademlia request or reply. `type` is a `MessageType` value (unknown ones kept)."""

    type: int
    key: bytes = b""
    record: Record | None = None
    closer_peers: tuple[Peer, ...] = ()
    provider_peers: tuple[Peer, ...] = ()
    cluster_level_raw: int = 0

    def encode(self) -> bytes:
        """Protobuf encoding (without the length prefix). ValueError if it would exceed 1 MiB."""
        w = Writer()
        if self.type:
            w.write_int(MSG_TYPE, self.type)
        if self.key:
            w.write_bytes(MSG_KEY, self.key)
        if self.record is not None:
            w.write_bytes(MSG_RECORD, self.record.encode())
        for p in self.closer_peers:
            w.write_bytes(MSG_CLOSER_PEERS, p.encode())
        for p in self.provider_peers:
            w.write_bytes(MSG_PROVIDER_PEERS, p.encode())
        if self.cluster_level_raw:
            w.write_int(MSG_CLUSTER_LEVEL_RAW, self.cluster_level_raw)
        if len(w) > MAX_MESSAGE_SIZE:
            raise ValueError(f"kademlia message of {len(w)} bytes exceeds {MAX_MESSAGE_SIZE}")
        return w.finish()

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Parse an encoded `Message` (without length prefix); DecodeError if malformed or too big."""
        if len(data) > MAX_MESSAGE_SIZE:
            raise DecodeError(f"kademlia message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
        mtype = 0
        key = b""
        record: Record | None = None
        closer: list[Peer] = []
        providers: list[Peer] = []
        cluster = 0
        for num, wt, val in iter_fields(data):
            if num == MSG_TYPE:
                mtype = to_int32(expect_int(num, wt, val))
            elif num == MSG_KEY:
                key = expect_bytes(num, wt, val, MAX_KEY_SIZE)
            elif num == MSG_RECORD:
                record = Record.decode(expect_bytes(num, wt, val))
            elif num == MSG_CLOSER_PEERS:
                if wt != LEN or not isinstance(val, bytes):
                    raise DecodeError("closerPeers must be length-delimited")
                closer = _decode_peer_list(closer, val)
            elif num == MSG_PROVIDER_PEERS:
                if wt != LEN or not isinstance(val, bytes):
                    raise DecodeError("providerPeers must be length-delimited")
                providers = _decode_peer_list(providers, val)
            elif num == MSG_CLUSTER_LEVEL_RAW:
                cluster = to_int32(expect_int(num, wt, val, VARINT))
        return cls(mtype, key, record, tuple(closer), tuple(providers), cluster)


def frame(payload: bytes) -> bytes:
    """Prefix an encoded message with its varint length."""
    if len(payload) > MAX_MESSAGE_SIZE:
        raise ValueError(f"kademlia message of {len(payload)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return encode_varint(len(payload)) + payload


def encode_framed(message: Message) -> bytes:
    """`frame(message.encode())`."""
    return frame(message.encode())


class FrameDecoder:
    """Sans-IO reader of varint-length-prefixed messages from a byte stream.

    `feed()` bytes as they arrive and get every complete payload back. The buffer never holds more
    than one maximal message plus its prefix: a declared length above `max_size` is a DecodeError
    (the driver resets the stream), as is a malformed prefix.
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads completed by them (possibly none)."""
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            try:
                length, start = varint.decode_from(self._buf, 0)
            except DecodeError:
                if len(self._buf) < varint.MAX_VARINT_BYTES and self._buf[-1] & 0x80:
                    break  # prefix still arriving
                raise
            if length > self._max:
                raise DecodeError(f"declared message length {length} exceeds {self._max}")
            end = start + length
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[start:end]))
            del self._buf[:end]
        return out

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a payload."""
        return len(self._buf)


def decode_framed(data: bytes) -> Message:
    """Decode exactly one length-prefixed message occupying all of `data`."""
    length, start = varint.decode_from(data, 0)
    if length > MAX_MESSAGE_SIZE:
        raise DecodeError(f"declared message length {length} exceeds {MAX_MESSAGE_SIZE}")
    if start + length != len(data):
        raise DecodeError("framed message length does not match the data")
    return Message.decode(data[start:])
