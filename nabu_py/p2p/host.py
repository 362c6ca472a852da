"""The nabu_py p2p host: a hardened py-libp2p 0.8.1 host behind a small typed API (design.md §1, §3;
spec/nabu.md §1.4-§1.9).

Stack, bottom up: TCP over IPv4/IPv6 (`libp2p_fixes.ScopedTCP`: no SO_REUSEPORT, listener owned by the
host) -> `/tls/1.0.0` (preferred, `tls.py`) or `/noise` (py-libp2p's Noise XX) -> `/yamux/1.0.0`
(`yamux.py`) -> py-libp2p's swarm (`libp2p_fixes.HardenedSwarm`, one connection per peer) and BasicHost
(peer store, connection notifications), with streams negotiated by our pipelined multistream-select.
Plaintext and secio are never offered nor accepted.

`P2PHost.open(config)` is the only way to run a host: an async context manager that starts the swarm,
binds every listen address (or fails), connects to bootstrap peers in the background, and on exit closes
listeners, connections and tasks, whatever happened inside. Inside it:

* `connect(peer)` dials by peer id through the address book (and, when it has nothing, the peer router:
  the DHT hook), or a `/.../p2p/<id>` multiaddr; a connected peer's connection is reused.
* `new_stream(peer, protocols)` returns a `P2PStream` speaking the first protocol the peer accepts;
  `set_stream_handler(protocol, handler)` serves inbound streams (the stream is closed when the handler
  returns and reset if it raises: a misbehaving peer costs a stream, never the node).
* `/ipfs/id/1.0.0` (identify, libp2p specs identify/README.md) is served and run against every new
  connection (the answer feeds the address book and the peer store's protocol list); `identify(peer)`
  returns it parsed. `/ipfs/ping/1.0.0` (ping/ping.md) is served; `ping(peer)` measures round trips.

Bounds: `max_connections` (one per peer), yamux `max_streams` per connection, multistream messages 1 KiB,
identify messages 64 KiB (at most 64 addresses and 256 protocols kept), concurrent identify exchanges 32,
address book LRU of 1000 peers, a closed stream lingers at most 5 s for the peer's FIN.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

import trio
from libp2p.abc import INetStream
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.rsa import RSAPrivateKey
from libp2p.crypto.x25519 import create_new_key_pair as _x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.stream.exceptions import StreamClosed, StreamEOF, StreamReset
from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStore
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.exceptions import MuxedStreamClosed, MuxedStreamEOF, MuxedStreamError
from libp2p.tools.anyio_service import background_trio_service
from libp2p.transport.manager import TransportManager
from libp2p.utils.address_validation import expand_wildcard_address
from multiaddr import Multiaddr

import nabu_py
from nabu_py.errors import DecodeError
from nabu_py.multiformats import varint
from nabu_py.p2p import multistream
from nabu_py.p2p.address_book import AddressBook, MemoryAddressBook
from nabu_py.p2p.addrs import parse_multiaddr, split_peer, with_peer
from nabu_py.p2p.errors import (
    DialError,
    HostClosedError,
    NoAddressesError,
    P2PError,
    ProtocolNegotiationError,
    StreamClosedError,
    StreamError,
    StreamResetError,
)
from nabu_py.p2p.identity import HostIdentity, KeyType, canonical_public_key
from nabu_py.p2p.libp2p_fixes import HardenedSwarm, ScopedTCP, configure_logging, logging_configured
from nabu_py.p2p.peer_id import PeerId
from nabu_py.p2p.tls import PROTOCOL_ID as TLS_ID
from nabu_py.p2p.tls import TlsTransport
from nabu_py.p2p.upgrader import Upgrader
from nabu_py.p2p.yamux import YamuxConfig

__all__ = [
    "IDENTIFY_PROTOCOL",
    "PING_PROTOCOL",
    "HostConfig",
    "IdentifyInfo",
    "P2PHost",
    "P2PStream",
    "PeerRouter",
    "StreamHandler",
]

IDENTIFY_PROTOCOL: Final = "/ipfs/id/1.0.0"
IDENTIFY_PUSH_PROTOCOL: Final = "/ipfs/id/push/1.0.0"
PING_PROTOCOL: Final = "/ipfs/ping/1.0.0"
IDENTIFY_PROTOCOL_VERSION: Final = "ipfs/0.1.0"
MAX_IDENTIFY_MESSAGE: Final = 64 * 1024
MAX_IDENTIFY_ADDRS: Final = 64
MAX_IDENTIFY_PROTOCOLS: Final = 256
MAX_PROTOCOL_ID: Final = 256
PING_SIZE: Final = 32
PING_IDLE_TIMEOUT: Final = 60.0
IDENTIFY_CONCURRENCY: Final = 32
CLOSE_GRACE: Final = 5.0
"""How long a closed stream waits for the peer's FIN before it is reset (frees the slot)."""
MAX_DIAL_ADDRS: Final = 8

SECURITY_NAMES: Final = {"tls": TLS_ID, "noise": str(NOISE_ID)}

logger = logging.getLogger(__name__)

StreamHandler = Callable[["P2PStream"], Awaitable[None]]
"""Serves one inbound stream; the host closes the stream when it returns (resets it if it raises)."""
PeerRouter = Callable[[PeerId], Awaitable[Sequence[Multiaddr]]]
"""Finds addresses for a peer the address book does not know (the DHT's FIND_NODE, added later)."""


@dataclass(frozen=True)
class HostConfig:
    """Everything a host needs; only `identity` is required."""

    identity: HostIdentity
    listen_addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    """Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/4001`, `/ip6/::/tcp/4001` (port 0: any)."""
    security: tuple[str, ...] = ("tls", "noise")
    """Security protocols in preference order: "tls" (`/tls/1.0.0`) and/or "noise" (`/noise`)."""
    bootstrap: tuple[str, ...] = ()
    """`/ip4/.../tcp/.../p2p/<id>` peers to connect to at start (`/ipfs/` spelling accepted)."""
    address_book: AddressBook | None = None
    """Where dialable addresses are remembered (default: in-memory LRU of 1000 peers)."""
    peer_router: PeerRouter | None = None
    """Fallback lookup for peers the address book does not know (see `P2PHost.set_peer_router`)."""
    agent_version: str = f"nabu-py/{nabu_py.__version__}"
    max_connections: int = 512
    dial_timeout: float = 10.0
    negotiate_timeout: float = 10.0
    identify_timeout: float = 10.0
    yamux: YamuxConfig = field(default_factory=YamuxConfig)

    def security_protocol_ids(self) -> tuple[str, ...]:
        """The configured security protocol ids (ValueError for anything but tls/noise)."""
        out: list[str] = []
        for name in self.security:
            proto = SECURITY_NAMES.get(name, name)
            if proto not in SECURITY_NAMES.values():
                raise ValueError(f"unsupported security protocol {name!r}: use 'tls' and/or 'noise'")
            if proto not in out:
                out.append(proto)
        if not out:
            raise ValueError("at least one security protocol is required")
        return tuple(out)


@dataclass(frozen=True)
class IdentifyInfo:
    """What a peer said about itself over `/ipfs/id/1.0.0` (public key checked against its peer id)."""

    peer_id: PeerId
    protocol_version: str
    agent_version: str
    public_key: bytes
    listen_addrs: tuple[Multiaddr, ...]
    observed_addr: Multiaddr | None
    protocols: tuple[str, ...]


_IO_ERRORS: Final = (StreamReset, StreamClosed, MuxedStreamError, StreamEOF)


def _stream_error(e: BaseException) -> P2PError:
    if isinstance(e, (StreamClosed, MuxedStreamClosed)):
        return StreamClosedError(str(e) or "stream closed for writing")
    return StreamResetError(str(e) or type(e).__name__)


class P2PStream:
    """A negotiated stream to a peer. Reads return `b""` at EOF; failures raise `StreamError`s."""

    def __init__(self, net_stream: INetStream, peer: PeerId, protocol: str, host: P2PHost) -> None:
        self._net = net_stream
        muxed = getattr(net_stream, "muxed_stream", None)
        self._io: Any = muxed if muxed is not None else net_stream
        self.peer = peer
        """The remote peer."""
        self.protocol = protocol
        """The negotiated protocol id ("" while negotiating)."""
        self._host = host
        self._eof = False
        self._closed = False
        self._was_reset = False

    # ---- reading ------------------------------------------------------------------------------------
    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes` (waiting for at least one); `b""` once the peer closed its side."""
        if self._was_reset:
            raise StreamResetError("stream was reset")
        if self._eof:
            return b""
        try:
            data: bytes = await self._io.read(max_bytes)
        except (StreamEOF, MuxedStreamEOF):
            self._eof = True
            return b""
        except _IO_ERRORS as e:
            raise _stream_error(e) from e
        if not data:
            self._eof = True
        return data

    async def read_exactly(self, n: int) -> bytes:
        """Exactly `n` bytes; `StreamResetError` if the stream ends first."""
        buf = bytearray()
        while len(buf) < n:
            chunk = await self.read(n - len(buf))
            if not chunk:
                raise StreamResetError(f"stream ended after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    async def read_to_eof(self, max_size: int) -> bytes:
        """Everything until the peer's EOF; DecodeError if it exceeds `max_size`."""
        buf = bytearray()
        while True:
            chunk = await self.read(max(1, min(65536, max_size + 1 - len(buf))))
            if not chunk:
                return bytes(buf)
            buf += chunk
            if len(buf) > max_size:
                raise DecodeError(f"peer sent more than {max_size} bytes")

    async def read_message(self, max_size: int) -> bytes | None:
        """One uvarint-length-prefixed message; None at a clean EOF before it; DecodeError if too big."""
        length = 0
        for i, shift in enumerate(range(0, 64, 7)):
            b = await self.read(1)
            if not b:
                if i == 0:
                    return None
                raise DecodeError("stream ended inside a message length")
            length |= (b[0] & 0x7F) << shift
            if length > max_size:
                raise DecodeError(f"message of {length} bytes exceeds the {max_size}-byte limit")
            if not b[0] & 0x80:
                break
        else:
            raise DecodeError("message length varint too long")
        try:
            return await self.read_exactly(length)
        except StreamResetError as e:
            raise DecodeError(f"truncated message: {e}") from None

    # ---- writing ------------------------------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Send all of `data` (waits while the peer's window is full; never times out by itself)."""
        if self._closed:
            if self._was_reset:
                raise StreamResetError("stream was reset")
            raise StreamClosedError("stream is closed")
        try:
            await self._io.write(data)
        except _IO_ERRORS as e:
            raise _stream_error(e) from e

    async def write_message(self, data: bytes) -> None:
        """Send `data` prefixed with its uvarint length."""
        await self.write(varint.encode(len(data)) + data)

    async def close_write(self) -> None:
        """Half-close: the peer reads EOF; we can still read. Idempotent."""
        try:
            closer = getattr(self._io, "close_write", None) or self._io.close
            await closer()
        except _IO_ERRORS as e:
            raise _stream_error(e) from e

    # ---- ending -------------------------------------------------------------------------------------
    async def close(self) -> None:
        """Done with the stream: half-close and stop reading. If the peer has not ended its side yet,
        its data is discarded for up to 5 s, then the stream is reset (an unresponsive peer cannot hold
        the slot). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.close_write()
        except StreamError:
            await self._reset_quietly()
            return
        if self._eof or getattr(self._io, "remote_closed", False):
            await self._release()
        else:
            self._host._spawn(self._linger)

    async def _linger(self) -> None:
        with trio.move_on_after(CLOSE_GRACE):
            try:
                while await self.read(65536):
                    pass
                await self._release()
                return
            except StreamError:
                pass
        await self._reset_quietly()

    async def _release(self) -> None:
        try:
            await self._net.close()
        except Exception as e:  # py-libp2p's stream bookkeeping; nothing the caller could act on
            logger.debug("releasing stream to %s: %s", self.peer, e)

    async def _reset_quietly(self) -> None:
        try:
            await self._net.reset()
        except Exception as e:
            logger.debug("resetting stream to %s: %s", self.peer, e)

    async def reset(self) -> None:
        """Abort both directions immediately; later reads and writes raise StreamResetError. Idempotent."""
        self._closed = True
        self._was_reset = True
        await self._reset_quietly()

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's (ip, port) of the underlying connection."""
        addr = self._net.get_remote_address()
        return (str(addr[0]), int(addr[1])) if addr else None

    async def __aenter__(self) -> P2PStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            with trio.CancelScope(shield=True):
                await self.reset()


class _StreamIO:
    """multistream ByteStream over a P2PStream."""

    __slots__ = ("_s",)

    def __init__(self, s: P2PStream) -> None:
        self._s = s

    async def read(self, n: int) -> bytes:
        return await self._s.read(n)

    async def write(self, data: bytes) -> None:
        await self._s.write(data)

    def buffered(self) -> int:
        """Bytes received and not yet read (0 if the muxer cannot tell)."""
        return int(getattr(self._s._io, "buffered", 0))


class _Libp2pHost(BasicHost):
    """py-libp2p's BasicHost routed through P2PHost (stream dispatch, identify scheduling, handlers)."""

    def __init__(self, network: HardenedSwarm, owner: P2PHost) -> None:
        self._owner = owner
        super().__init__(network=network)

    async def _swarm_stream_handler(self, net_stream: INetStream) -> None:
        await self._owner._dispatch(net_stream)

    def _schedule_identify(self, peer_id: ID, *, reason: str) -> None:
        self._owner._schedule_identify(peer_id)

    async def _push_identify_to_all_peers(self) -> None:
        return None

    def _on_notifee_disconnected(self, conn: Any) -> None:
        super()._on_notifee_disconnected(conn)
        self._owner._on_disconnected(conn.muxed_conn.peer_id)

    def set_stream_handler(self, protocol_id: TProtocol, stream_handler: Any) -> None:
        """Escape hatch for py-libp2p-style handlers (they receive the raw INetStream)."""
        if not hasattr(self, "_owner"):  # BasicHost.__init__ registers nothing through here
            return

        async def adapter(stream: P2PStream) -> None:
            await stream_handler(stream._net)

        self._owner.set_stream_handler(str(protocol_id), adapter)

    def remove_stream_handler(self, protocol_id: TProtocol) -> None:
        self._owner.remove_stream_handler(str(protocol_id))

    async def new_stream(self, peer_id: ID, protocol_ids: Sequence[TProtocol]) -> INetStream:
        peer = PeerId.from_bytes(peer_id.to_bytes())
        stream = await self._owner.new_stream(peer, [str(p) for p in protocol_ids])
        stream._net.set_protocol(TProtocol(stream.protocol))
        return stream._net


def _libp2p_key_pair(identity: HostIdentity) -> KeyPair:
    key_type, material = identity.libp2p_key_material()
    private: Ed25519PrivateKey | RSAPrivateKey
    if key_type == KeyType.ED25519:
        private = Ed25519PrivateKey.from_bytes(material)
    else:
        private = RSAPrivateKey.from_bytes(material)
    return KeyPair(private, private.get_public_key())


class P2PHost:
    """A running libp2p node; create it with `async with P2PHost.open(config) as host:`."""

    def __init__(self, config: HostConfig, nursery: trio.Nursery) -> None:
        """Internal: use `P2PHost.open`."""
        self.config = config
        self.identity = config.identity
        self.peer_id: PeerId = config.identity.peer_id
        """Our peer id."""
        self.address_book: AddressBook = (
            config.address_book if config.address_book is not None else MemoryAddressBook()
        )
        self._own_address_book = config.address_book is None
        self._peer_router = config.peer_router
        self._nursery = nursery
        self._handlers: dict[str, StreamHandler] = {}
        self._closed = False
        self._dials: dict[PeerId, trio.Event] = {}
        self._identified: OrderedDict[PeerId, IdentifyInfo] = OrderedDict()
        self._identify_inflight: set[PeerId] = set()
        self._identify_limiter = trio.CapacityLimiter(IDENTIFY_CONCURRENCY)
        self._identify_done: dict[PeerId, trio.Event] = {}
        self._identify_listeners: list[Callable[[IdentifyInfo], None]] = []
        self._disconnect_listeners: list[Callable[[PeerId], None]] = []

        key_pair = _libp2p_key_pair(config.identity)
        self._local_id = ID(self.peer_id.to_bytes())
        security: dict[str, Any] = {}
        for proto in config.security_protocol_ids():
            if proto == TLS_ID:
                security[proto] = TlsTransport(config.identity, key_pair, config.negotiate_timeout)
            else:
                security[proto] = NoiseTransport(key_pair, noise_privkey=_x25519_key_pair().private_key)
        peerstore = PeerStore()
        peerstore.add_key_pair(self._local_id, key_pair)
        n = config.max_connections
        self._swarm = HardenedSwarm(
            self._local_id,
            peerstore,
            Upgrader(security, yamux_config=config.yamux, negotiate_timeout=config.negotiate_timeout),
            transports=[ScopedTCP()],
            retry_config=RetryConfig(max_retries=0),
            connection_config=ConnectionConfig(
                max_connections=n,
                min_connections=0,
                low_watermark=n,
                high_watermark=n,
                max_connections_per_peer=1,
                dial_timeout=config.dial_timeout,
                inbound_upgrade_timeout=config.dial_timeout,
                outbound_upgrade_timeout=config.dial_timeout,
            ),
            transport_manager=TransportManager(),
        )
        self._libp2p = _Libp2pHost(self._swarm, self)
        self._handlers[IDENTIFY_PROTOCOL] = self._serve_identify
        self._handlers[IDENTIFY_PUSH_PROTOCOL] = self._serve_identify_push
        self._handlers[PING_PROTOCOL] = _serve_ping

    # ---- lifecycle --------------------------------------------------------------------------------
    @classmethod
    @asynccontextmanager
    async def open(cls, config: HostConfig) -> AsyncIterator[P2PHost]:
        """Start a host, listen on `config.listen_addrs` (ListenError if any fails), bootstrap in the
        background; on exit close listeners, connections and tasks, even on error or cancellation."""
        if not logging_configured():
            configure_logging()
        listen = [parse_multiaddr(a) for a in config.listen_addrs]
        try:
            async with trio.open_nursery() as outer:
                tasks: trio.Nursery = await outer.start(_task_nursery)
                host = cls(config, tasks)
                try:
                    async with background_trio_service(host._swarm):
                        try:
                            await host._swarm.listen(*listen)
                            if config.bootstrap:
                                tasks.start_soon(host.bootstrap)
                            yield host
                        finally:
                            with trio.CancelScope(shield=True):
                                await host._shutdown()
                finally:
                    host._closed = True
                    tasks.cancel_scope.cancel()
                    if host._own_address_book:
                        host.address_book.close()
        except BaseExceptionGroup as group:
            # The caller's code runs inside our nurseries; give its exception (ListenError, DialError,
            # Cancelled...) back unwrapped when it is the only one, so `except DialError:` works.
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0] from None
            raise

    async def close(self) -> None:
        """Close the host now (leaving `open`'s block does this too). Idempotent."""
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._nursery.cancel_scope.cancel()
        with trio.move_on_after(10.0) as scope:
            scope.shield = True
            try:
                await self._libp2p.close()
            except Exception as e:
                logger.warning("error while closing the p2p host: %s", e)

    def _check_open(self) -> None:
        if self._closed:
            raise HostClosedError("the p2p host is closed")

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if not self._closed:
            self._nursery.start_soon(fn)

    @property
    def closed(self) -> bool:
        """True once the host is closing or closed."""
        return self._closed

    @property
    def libp2p_host(self) -> BasicHost:
        """The underlying py-libp2p host (escape hatch for py-libp2p components; prefer this API)."""
        return self._libp2p

    # ---- addresses --------------------------------------------------------------------------------
    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """Bound listen addresses (ports resolved, no `/p2p/` suffix)."""
        out: list[Multiaddr] = []
        for listener in self._swarm.listeners.values():
            out.extend(listener.get_addrs())
        return out

    def advertised_addrs(self) -> list[Multiaddr]:
        """Listen addresses with wildcards (0.0.0.0, ::) expanded to this machine's interface addresses."""
        out: list[Multiaddr] = []
        for addr in self.listen_addrs:
            text = str(addr)
            expanded = expand_wildcard_address(addr) if "/0.0.0.0/" in text or "/::/" in text else [addr]
            for a in expanded:
                if a not in out:
                    out.append(a)
        return out

    def addrs_with_peer_id(self) -> list[Multiaddr]:
        """`advertised_addrs()` with `/p2p/<our id>` appended (what to hand to other nodes)."""
        return [with_peer(a, self.peer_id) for a in self.advertised_addrs()]

    def set_peer_router(self, router: PeerRouter | None) -> None:
        """Install the fallback address lookup used when the address book knows nothing (the DHT)."""
        self._peer_router = router

    # ---- connections ------------------------------------------------------------------------------
    def is_connected(self, peer: PeerId) -> bool:
        """Whether a live connection to `peer` exists."""
        return any(not c.is_closed for c in self._swarm.get_connections(ID(peer.to_bytes())))

    def connected_peers(self) -> list[PeerId]:
        """Peers with a live connection."""
        return [
            PeerId.from_bytes(p.to_bytes())
            for p, cs in self._swarm.connections.items()
            if any(not c.is_closed for c in cs)
        ]

    def connection_count(self) -> int:
        """Live connections (one per peer; briefly two while a simultaneous dial is resolved)."""
        return sum(1 for cs in self._swarm.connections.values() for c in cs if not c.is_closed)

    async def connect(self, peer: PeerId | Multiaddr | str, addrs: Sequence[Multiaddr | str] = ()) -> PeerId:
        """Ensure a connection to `peer` and return its id.

        `peer` is a PeerId, or a multiaddr ending in `/p2p/<id>` (its transport part is tried first).
        Addresses come from `addrs`, then the address book, then the peer router. Concurrent calls for
        one peer share a single dial. DialError (NoAddressesError) if it cannot be reached.
        """
        self._check_open()
        explicit: list[Multiaddr] = [parse_multiaddr(a) for a in addrs]
        if isinstance(peer, PeerId):
            target = peer
        else:
            transport, named = split_peer(peer)
            if named is None:
                raise ValueError(f"{peer} does not name a peer (/p2p/<id> missing)")
            target = named
            if transport is not None:
                explicit.insert(0, transport)
        if target == self.peer_id:
            raise DialError("refusing to dial ourselves")
        if explicit:
            self.address_book.add(target, explicit)
        while True:
            if self.is_connected(target):
                return target
            pending = self._dials.get(target)
            if pending is None:
                break
            await pending.wait()
        done = trio.Event()
        self._dials[target] = done
        try:
            await self._dial(target)
        finally:
            del self._dials[target]
            done.set()
        return target

    async def _dial(self, peer: PeerId) -> None:
        candidates = self.address_book.get(peer)
        if not candidates and self._peer_router is not None:
            try:
                found = await self._peer_router(peer)
            except Exception as e:
                raise NoAddressesError(f"peer routing for {peer} failed: {e}") from e
            self.address_book.add(peer, found)
            candidates = self.address_book.get(peer)
        if not candidates:
            raise NoAddressesError(f"no known addresses for {peer}")
        lid = ID(peer.to_bytes())
        self._swarm.unblock_peer(lid)
        errors: list[str] = []
        for addr in candidates[:MAX_DIAL_ADDRS]:
            if self._swarm.transport_manager.transport_for_dialing(addr) is None:
                errors.append(f"{addr}: no transport")
                continue
            try:
                with trio.fail_after(self.config.dial_timeout):
                    await self._swarm.dial_addr(addr, lid)
            except trio.TooSlowError:
                errors.append(f"{addr}: timed out")
                continue
            except Exception as e:
                errors.append(f"{addr}: {e.__cause__ or e}")
                continue
            self.address_book.add(peer, [addr])
            return
        raise DialError(f"could not connect to {peer}: " + "; ".join(errors))

    async def disconnect(self, peer: PeerId) -> None:
        """Close every connection to `peer` (its streams are reset)."""
        await self._swarm.close_peer(ID(peer.to_bytes()))

    async def bootstrap(self) -> int:
        """Connect to the configured bootstrap peers concurrently; return how many succeeded."""
        ok = 0

        async def one(addr: str) -> None:
            nonlocal ok
            try:
                with trio.move_on_after(self.config.dial_timeout):
                    await self.connect(addr)
                    ok += 1
            except (P2PError, DecodeError, ValueError) as e:
                logger.info("bootstrap peer %s unreachable: %s", addr, e)

        async with trio.open_nursery() as nursery:
            for addr in self.config.bootstrap:
                nursery.start_soon(one, addr)
        if self.config.bootstrap and not ok:
            logger.warning("no bootstrap peer reachable (%d configured)", len(self.config.bootstrap))
        return ok

    # ---- streams ----------------------------------------------------------------------------------
    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve inbound streams for `protocol` (replaces an existing handler)."""
        if not protocol or len(protocol) > MAX_PROTOCOL_ID or "\n" in protocol:
            raise ValueError(f"invalid protocol id {protocol!r}")
        self._handlers[protocol] = handler

    def remove_stream_handler(self, protocol: str) -> None:
        """Stop serving `protocol`."""
        self._handlers.pop(protocol, None)

    def protocols(self) -> list[str]:
        """Protocols we serve (as announced by identify)."""
        return list(self._handlers)

    async def new_stream(self, peer: PeerId | Multiaddr | str, protocols: Sequence[str]) -> P2PStream:
        """Open a stream speaking the first of `protocols` the peer supports (connecting if needed).

        ProtocolNegotiationError if it supports none; DialError if it cannot be reached.
        """
        self._check_open()
        if not protocols:
            raise ValueError("no protocols given")
        target = await self.connect(peer)
        try:
            net_stream = await self._swarm.new_stream(ID(target.to_bytes()))
        except Exception as e:
            raise DialError(f"cannot open a stream to {target}: {e}") from e
        stream = P2PStream(net_stream, target, "", self)
        try:
            with trio.fail_after(self.config.negotiate_timeout):
                stream.protocol = await multistream.select(_StreamIO(stream), protocols)
        except BaseException as e:
            with trio.CancelScope(shield=True):
                await stream.reset()
            if isinstance(e, trio.TooSlowError):
                raise ProtocolNegotiationError(f"protocol negotiation with {target} timed out") from e
            if isinstance(e, (DecodeError, StreamError)):
                raise ProtocolNegotiationError(f"protocol negotiation with {target} failed: {e}") from e
            raise
        return stream

    async def _dispatch(self, net_stream: INetStream) -> None:
        try:
            peer = PeerId.from_bytes(net_stream.muxed_conn.peer_id.to_bytes())
        except (DecodeError, AttributeError):
            await net_stream.reset()
            return
        stream = P2PStream(net_stream, peer, "", self)
        if self._closed:
            await stream.reset()
            return
        try:
            with trio.fail_after(self.config.negotiate_timeout):
                protocol = await multistream.handle(_StreamIO(stream), self._handlers)
        except (trio.TooSlowError, ProtocolNegotiationError, DecodeError, StreamError) as e:
            logger.debug("inbound stream from %s not negotiated: %s", peer, e)
            await stream.reset()
            return
        handler = self._handlers.get(protocol)
        if handler is None:  # removed while negotiating
            await stream.reset()
            return
        stream.protocol = protocol
        try:
            await handler(stream)
        except Exception as e:
            level = (
                logging.DEBUG
                if isinstance(e, (P2PError, DecodeError, trio.TooSlowError))
                else logging.WARNING
            )
            logger.log(level, "%s handler failed for %s: %s: %s", protocol, peer, type(e).__name__, e)
            await stream.reset()
            return
        await stream.close()

    # ---- ping ---------------------------------------------------------------------------------------
    async def ping(self, peer: PeerId | Multiaddr | str, count: int = 1) -> list[float]:
        """Round-trip times in seconds of `count` pings over one `/ipfs/ping/1.0.0` stream.

        Each round trip may take `negotiate_timeout` at most (TooSlowError beyond).
        """
        if count < 1:
            raise ValueError("count must be positive")
        rtts: list[float] = []
        stream = await self.new_stream(peer, [PING_PROTOCOL])
        async with stream:
            for _ in range(count):
                payload = os.urandom(PING_SIZE)
                with trio.fail_after(self.config.negotiate_timeout):
                    t0 = time.perf_counter()
                    await stream.write(payload)
                    echo = await stream.read_exactly(PING_SIZE)
                    rtts.append(time.perf_counter() - t0)
                if echo != payload:
                    raise DecodeError("ping answer differs from the request")
        return rtts

    # ---- identify -----------------------------------------------------------------------------------
    def _identify_message(self, stream: P2PStream) -> bytes:
        observed = b""
        remote = stream.remote_address
        if remote is not None:
            host, port = remote
            if host.startswith("::ffff:"):
                host = host[7:]
            proto = "ip6" if ":" in host else "ip4"
            observed = Multiaddr(f"/{proto}/{host}/tcp/{port}").to_bytes()
        msg = Identify(
            protocol_version=IDENTIFY_PROTOCOL_VERSION,
            agent_version=self.config.agent_version,
            public_key=self.identity.public_key_proto(),
            listen_addrs=[a.to_bytes() for a in self.advertised_addrs()],
            observed_addr=observed,
            protocols=self.protocols(),
        )
        return msg.SerializeToString()

    async def _serve_identify(self, stream: P2PStream) -> None:
        await stream.write_message(self._identify_message(stream))

    async def _serve_identify_push(self, stream: P2PStream) -> None:
        with trio.fail_after(self.config.identify_timeout):
            data = await stream.read_to_eof(MAX_IDENTIFY_MESSAGE + 8)
        self._record_identify(self._parse_identify(stream.peer, data, require_key=False))

    async def identify(self, peer: PeerId | Multiaddr | str) -> IdentifyInfo:
        """Ask `peer` who it is (`/ipfs/id/1.0.0`); DecodeError if the answer is malformed or its key
        does not match the peer id."""
        with trio.fail_after(self.config.identify_timeout):
            stream = await self.new_stream(peer, [IDENTIFY_PROTOCOL])
            async with stream:
                await stream.close_write()
                data = await stream.read_to_eof(MAX_IDENTIFY_MESSAGE + 8)
        info = self._parse_identify(stream.peer, data, require_key=True)
        self._record_identify(info)
        return info

    def identified(self, peer: PeerId) -> IdentifyInfo | None:
        """The latest identify answer of `peer`, if an exchange has completed."""
        return self._identified.get(peer)

    async def wait_identified(self, peer: PeerId) -> IdentifyInfo:
        """Wait for the automatic identify exchange with a connected peer (bound it with a timeout)."""
        try:
            while True:
                info = self._identified.get(peer)
                if info is not None:
                    return info
                event = self._identify_done.setdefault(peer, trio.Event())
                await event.wait()
        finally:
            waiting = self._identify_done.get(peer)
            if waiting is not None and not waiting.is_set():
                del self._identify_done[peer]

    @staticmethod
    def _parse_identify(peer: PeerId, data: bytes, *, require_key: bool) -> IdentifyInfo:
        body = data
        try:
            length, i = varint.decode_from(data, 0)
            if i + length == len(data):
                body = data[i:]
        except DecodeError:
            pass
        if len(body) > MAX_IDENTIFY_MESSAGE:
            raise DecodeError("identify message too large")
        msg = Identify()
        try:
            msg.ParseFromString(body)
        except Exception as e:  # protobuf's DecodeError and friends
            raise DecodeError(f"malformed identify message: {e}") from None
        key = b""
        if msg.public_key:
            key = canonical_public_key(msg.public_key)
            if PeerId.from_public_key(key) != peer:
                raise DecodeError("identify public key does not match the peer id")
        elif require_key:
            raise DecodeError("identify message without a public key")
        addrs: list[Multiaddr] = []
        for raw in list(msg.listen_addrs)[:MAX_IDENTIFY_ADDRS]:
            try:
                addrs.append(parse_multiaddr(bytes(raw)))
            except DecodeError:
                continue
        observed = None
        if msg.observed_addr:
            try:
                observed = parse_multiaddr(bytes(msg.observed_addr))
            except DecodeError:
                observed = None
        protocols = tuple(
            p for p in list(msg.protocols)[:MAX_IDENTIFY_PROTOCOLS] if len(p) <= MAX_PROTOCOL_ID
        )
        return IdentifyInfo(
            peer_id=peer,
            protocol_version=msg.protocol_version[:256],
            agent_version=msg.agent_version[:256],
            public_key=key,
            listen_addrs=tuple(addrs),
            observed_addr=observed,
            protocols=protocols,
        )

    def _record_identify(self, info: IdentifyInfo) -> None:
        self._identified[info.peer_id] = info
        self._identified.move_to_end(info.peer_id)
        while len(self._identified) > self.config.max_connections:
            self._identified.popitem(last=False)
        if info.listen_addrs:
            self.address_book.add(info.peer_id, info.listen_addrs)
        try:
            self._swarm.peerstore.set_protocols(ID(info.peer_id.to_bytes()), list(info.protocols))
        except Exception as e:
            logger.debug("peer store refused the protocols of %s: %s", info.peer_id, e)
        event = self._identify_done.pop(info.peer_id, None)
        if event is not None:
            event.set()
        self._fire(self._identify_listeners, info)

    def on_peer_identified(self, callback: Callable[[IdentifyInfo], None]) -> Callable[[], None]:
        """Call `callback(info)` after every identify exchange (e.g. the DHT adds peers speaking
        `/ipfs/kad/1.0.0` to its routing table). Returns a function that unsubscribes."""
        self._identify_listeners.append(callback)
        return lambda: (
            self._identify_listeners.remove(callback) if callback in self._identify_listeners else None
        )

    def on_peer_disconnected(self, callback: Callable[[PeerId], None]) -> Callable[[], None]:
        """Call `callback(peer)` when the last connection to a peer closes. Returns an unsubscriber."""
        self._disconnect_listeners.append(callback)
        return lambda: (
            self._disconnect_listeners.remove(callback) if callback in self._disconnect_listeners else None
        )

    @staticmethod
    def _fire(callbacks: Sequence[Callable[[Any], None]], arg: object) -> None:
        for callback in list(callbacks):
            try:
                callback(arg)
            except Exception as e:  # a listener's bug must not break the host
                logger.warning("peer event listener %r failed: %s: %s", callback, type(e).__name__, e)

    def _on_disconnected(self, lid: ID) -> None:
        try:
            peer = PeerId.from_bytes(lid.to_bytes())
        except DecodeError:
            return
        if not self.is_connected(peer):
            self._identified.pop(peer, None)
            self._fire(self._disconnect_listeners, peer)

    def _schedule_identify(self, lid: ID) -> None:
        try:
            peer = PeerId.from_bytes(lid.to_bytes())
        except DecodeError:
            return
        if self._closed or peer in self._identify_inflight:
            return
        self._identify_inflight.add(peer)
        self._nursery.start_soon(self._identify_in_background, peer)

    async def _identify_in_background(self, peer: PeerId) -> None:
        try:
            async with self._identify_limiter:
                if self.is_connected(peer):
                    await self.identify(peer)
        except (P2PError, DecodeError, trio.TooSlowError) as e:
            logger.debug("identify with %s failed: %s", peer, e)
        finally:
            self._identify_inflight.discard(peer)
            event = self._identify_done.pop(peer, None)
            if event is not None:
                event.set()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def _task_nursery(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Hold a nursery for the host's background tasks, cancellable without touching the caller's code."""
    async with trio.open_nursery() as nursery:
        task_status.started(nursery)
        await trio.sleep_forever()


async def _serve_ping(stream: P2PStream) -> None:
    while True:
        with trio.move_on_after(PING_IDLE_TIMEOUT):
            data = await stream.read(PING_SIZE)
            if not data:
                return
            if len(data) < PING_SIZE:
                data += await stream.read_exactly(PING_SIZE - len(data))
            await stream.write(data)
            continue
        return
