"""The Kademlia DHT service: the trio driver of `KademliaEngine` on a `P2PHost` (design.md §4 practice 3;
libp2p kad-dht spec "RPC messages", "Bootstrap process", "Content routing"; spec/nabu.md §3, §7, §10).

    async with KademliaService.start(host, DhtConfig(mode="server")) as dht:
        await dht.bootstrap()
        addrs = await dht.find_peer(peer_id)          # also behind host.connect(peer_id)
        await dht.provide(cid); providers = await dht.find_providers(cid)
        await dht.put_ipns(record_bytes); record = await dht.get_ipns(name)

The engine decides everything; this module only moves bytes, keeps time and bounds resources.

Modes. A **server** (publicly reachable node) serves `/ipfs/kad/1.0.0`, so identify announces it and
other peers put it in their tables. A **client** registers no handler: it never answers and never
enters anyone's table. `mode="auto"` is server iff one of the host's advertised addresses is a global
IP address. Either way, only peers whose identify lists `/ipfs/kad/1.0.0` (or that answered one of our
requests) enter our table; client-mode peers never do (py-libp2p inserts them: spec/py-libp2p.md §3).

Inbound streams (server mode): each carries one or more requests, each a varint-prefixed protobuf of at
most 1 MiB (the length is checked before anything is buffered), read under `request_timeout`; the
engine answers; the reply is written under the same timeout. A stream ends at EOF, after an idle
timeout, after `max_requests_per_stream` requests, or when a request gets no reply (ADD_PROVIDER
excepted, which is fire-and-forget): closing it then tells the requester at once instead of making it
wait. Concurrent inbound streams are bounded in total and per peer; extra ones are reset.

Outbound requests: every engine `SendRequest` runs as a task bounded by `max_outbound_requests`,
the request deadline the engine set, and the host's dial timeout. A stream that carried a complete
request and reply goes back to a small per-peer pool and carries the next request to that peer (the
spec allows several requests per stream); if a pooled stream turns out closed (Nabu closes after one
reply), the request is retried once on a new stream and the peer is remembered as one-request-per-
stream. Fire-and-forget requests (ADD_PROVIDER, entry corrections) use a fresh stream that is closed
after the write: a reply the remote may still send can never be mistaken for the next answer.
Peers without a known address are not dialled by the DHT itself (the host's peer router is the DHT:
that would recurse).

Penalties: a `Penalise` action (garbage, broken rule, ADD_PROVIDER flood, invalid record) resets the
offending stream and every pooled stream to that peer, and is recorded; `ban_threshold` penalties
within `penalty_window` ban the peer from the DHT for `ban_duration` (dropped from the table, its
streams reset on arrival, no requests sent to it). Penalty and ban records are bounded LRUs. Nothing
a peer sends can raise out of a task: decode errors are penalties, stream errors are failures.

Dial by peer id: `host.set_peer_router(dht.find_peer)` is installed on start (and removed on exit), so
`host.connect(peer_id)` for a peer the address book does not know runs a lookup. `find_peer` answers
from the routing table when it can; a lookup ends early as soon as any reply carries the exact peer
with an address (Nabu's behaviour, spec/nabu.md §1.9), and the addresses go into the address book.

Stores: in memory, or SQLite files in `data_dir` (`dht-records.sqlite`, `dht-providers.sqlite`).
With SQLite, every engine call that can reach a store (value and provider requests, user queries
on values and providers, timers) runs in a worker thread; all engine calls are serialised by one
trio lock, so the engine never runs in two threads at once and the event loop never waits on disk.

Time: the engine runs on Unix time (`time.time`, injectable), because IPNS validity and persisted
expiry times are wall-clock times. A timer task sleeps until `engine.next_deadline()` (re-armed after
every engine call) and also closes pooled streams idle for longer than `idle_stream_timeout`.

Background work: bootstrap on `bootstrap()` (connect to the bootstrap peers, wait for their identify,
look up our own id and a random id, then refresh every bucket), the engine's periodic refresh
(`KademliaConfig.refresh_interval`, 5 min), and reproviding every key given to `provide` each
`reprovide_interval` (22 h, like Nabu; provider records expire after 24 h).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final, Literal, TypeVar

import trio
from multiaddr import Multiaddr

from nabu_py.errors import DecodeError
from nabu_py.multiformats import multihash
from nabu_py.multiformats.cid import Cid
from nabu_py.p2p.addrs import split_peer
from nabu_py.p2p.errors import NoAddressesError, P2PError, StreamError
from nabu_py.p2p.host import IdentifyInfo, P2PHost, P2PStream
from nabu_py.p2p.peer_id import PeerId
from nabu_py.protocols.ipns.record import IpnsRecord, IpnsValidator, routing_key, validate_record
from nabu_py.protocols.kademlia.engine import (
    Action,
    KademliaConfig,
    KademliaEngine,
    Penalise,
    PutResult,
    QueryFinished,
    Reply,
    SendRequest,
)
from nabu_py.protocols.kademlia.errors import QueryLimitReached, ServiceStopped
from nabu_py.protocols.kademlia.messages import MAX_MESSAGE_SIZE, PROTOCOL_ID, Message, MessageType, Peer
from nabu_py.protocols.kademlia.query import ValueResult
from nabu_py.protocols.kademlia.records import (
    MemoryProviderStore,
    MemoryRecordStore,
    ProviderStore,
    RecordStore,
    Validator,
)
from nabu_py.protocols.kademlia.sqlite_stores import SqliteProviderStore, SqliteRecordStore

__all__ = ["DhtConfig", "KademliaService", "ProviderInfo", "is_public_multiaddr"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STORE_TYPES: Final = frozenset(
    {MessageType.GET_VALUE, MessageType.PUT_VALUE, MessageType.GET_PROVIDERS, MessageType.ADD_PROVIDER}
)
_INPUT_QUEUE: Final = 1024
"""Pending host events (identify, bans) waiting for the engine; more are dropped (logged)."""
_MAX_TIMER_SLEEP: Final = 1.0
_MIN_TIMER_SLEEP: Final = 0.01
_QUERY_GRACE: Final = 5.0
"""Seconds past the engine's own query deadline after which the service cancels a query itself."""


def is_public_multiaddr(addr: Multiaddr) -> bool:
    """True for an `/ip4/` or `/ip6/` address that is globally routable (the `auto` mode test)."""
    try:
        proto, value = next(iter(addr.items()))
    except (StopIteration, ValueError):
        return False
    if proto.name not in ("ip4", "ip6"):
        return False
    try:
        return ipaddress.ip_address(str(value)).is_global
    except ValueError:
        return False


@dataclass(frozen=True)
class DhtConfig:
    """How a `KademliaService` runs; every field has a sensible default."""

    mode: Literal["server", "client", "auto"] = "auto"
    """Server: serve /ipfs/kad/1.0.0. Client: never answer. Auto: server iff a global address is
    advertised."""
    kademlia: KademliaConfig = field(default_factory=KademliaConfig)
    """The engine's tunables (k, alpha, timeouts, TTLs, rate limits, refresh period)."""
    bootstrap_peers: tuple[str, ...] | None = None
    """`/ip4/.../tcp/.../p2p/<id>` peers for `bootstrap()`; None = the host's `HostConfig.bootstrap`."""
    data_dir: Path | None = None
    """Directory of the SQLite record and provider stores; None keeps them in memory."""
    records: RecordStore | None = None
    """An explicit record store (overrides `data_dir` for records)."""
    providers: ProviderStore | None = None
    """An explicit provider store (overrides `data_dir` for providers)."""
    validators: Mapping[bytes, Validator] | None = None
    """Record validators by namespace; None = `{b"ipns": IpnsValidator()}`."""
    request_timeout: float = 10.0
    """Inbound: seconds to receive each request (after the previous one) and to write its reply."""
    max_inbound_streams: int = 512
    max_inbound_streams_per_peer: int = 16
    max_requests_per_stream: int = 1024
    max_outbound_requests: int = 256
    """Outbound requests (dial + stream + reply) in flight at once; more wait."""
    idle_streams_per_peer: int = 2
    max_pooled_peers: int = 256
    idle_stream_timeout: float = 30.0
    max_one_shot_peers: int = 4096
    """Peers remembered as closing a stream after one reply (bounded LRU)."""
    ban_threshold: int = 10
    """Penalties within `penalty_window` that ban a peer from the DHT."""
    penalty_window: float = 300.0
    ban_duration: float = 600.0
    max_tracked_peers: int = 4096
    """Bound on the peers whose penalties and bans are remembered (least recently penalised forgotten)."""
    reprovide_interval: float | None = 22 * 3600.0
    """Period of re-announcing the keys given to `provide` (None: never)."""
    max_provided_keys: int = 100_000
    """Keys remembered for reproviding (oldest forgotten first)."""
    reprovide_concurrency: int = 4
    peer_routing_timeout: float = 30.0
    """Bound on the lookup behind `host.connect(peer_id)`."""
    bootstrap_timeout: float = 30.0
    clock: Callable[[], float] = time.time
    """Unix time in seconds (IPNS validity and stored expiry times are wall-clock times)."""


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A provider found by `find_providers`: its peer id and the addresses it was announced with."""

    peer_id: PeerId
    addrs: tuple[Multiaddr, ...]


class _Waiter:
    __slots__ = ("done", "found_addrs", "result", "target")

    def __init__(self, target: bytes | None = None) -> None:
        self.done = trio.Event()
        self.result: QueryFinished | None = None
        self.target = target
        self.found_addrs: list[bytes] = []


def _dialable(peer: PeerId, addrs: Sequence[bytes]) -> list[Multiaddr]:
    """`peer`'s addresses as multiaddrs without a `/p2p/<peer>` suffix (js sends it); malformed ones and
    ones naming another peer are dropped, duplicates removed."""
    out: list[Multiaddr] = []
    for raw in addrs:
        try:
            transport, named = split_peer(raw)
        except (DecodeError, ValueError):
            continue
        if transport is not None and (named is None or named == peer) and transport not in out:
            out.append(transport)
    return out


def _key_of(key: bytes | Cid) -> bytes:
    """A provider key: the multihash of a CID (never the CID bytes: spec/nabu.md §10.2)."""
    if isinstance(key, Cid):
        return key.multihash
    multihash.decode(key)
    return bytes(key)


class KademliaService:
    """A running DHT node on a `P2PHost`. Create it with `async with KademliaService.start(host, cfg)`."""

    def __init__(
        self,
        host: P2PHost,
        config: DhtConfig,
        engine: KademliaEngine,
        server: bool,
        offload: bool,
        nursery: trio.Nursery,
    ) -> None:
        """Internal: use `KademliaService.start`."""
        self.host = host
        self.config = config
        self.engine = engine
        """The sans-IO engine (read-only use outside the service: calls into it are serialised)."""
        self.server = server
        """True when this node serves /ipfs/kad/1.0.0."""
        self._offload = offload
        self._nursery = nursery
        self._clock = config.clock
        self._lock = trio.Lock()
        self._wake = trio.Event()
        self._waiters: dict[int, _Waiter] = {}
        self._out_limiter = trio.CapacityLimiter(config.max_outbound_requests)
        self._idle: OrderedDict[PeerId, list[tuple[P2PStream, float]]] = OrderedDict()
        self._one_shot: OrderedDict[PeerId, None] = OrderedDict()
        self._inbound_total = 0
        self._inbound: dict[PeerId, int] = {}
        self._penalties: OrderedDict[PeerId, deque[float]] = OrderedDict()
        self._banned: OrderedDict[PeerId, float] = OrderedDict()
        self._provided: OrderedDict[bytes, None] = OrderedDict()
        self._inputs_send, self._inputs_recv = trio.open_memory_channel[Callable[[float], list[Action]]](
            _INPUT_QUEUE
        )
        self._closed = False
        self._last_reap = 0.0
        self.penalties_total = 0
        """Penalties applied since start (all peers)."""

    # ---- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    @asynccontextmanager
    async def start(cls, host: P2PHost, config: DhtConfig | None = None) -> AsyncIterator[KademliaService]:
        """Run the DHT on `host` until the block exits: serve (server mode), route `host.connect(peer_id)`
        through `find_peer`, follow identify, run timers and reprovides; on exit undo all of that,
        reset pooled streams and close the stores."""
        cfg = config or DhtConfig()
        if cfg.mode not in ("server", "client", "auto"):
            raise ValueError(f"mode must be 'server', 'client' or 'auto', not {cfg.mode!r}")
        records, providers, own = await trio.to_thread.run_sync(cls._open_stores, cfg)
        addrs = host.advertised_addrs()
        server = cfg.mode == "server" or (cfg.mode == "auto" and any(is_public_multiaddr(a) for a in addrs))
        validators = dict(cfg.validators) if cfg.validators is not None else {b"ipns": IpnsValidator()}
        engine = KademliaEngine(
            host.peer_id.to_bytes(),
            [a.to_bytes() for a in addrs],
            config=cfg.kademlia,
            records=records,
            providers=providers,
            validators=validators,
            rng=None,
            now=cfg.clock(),
        )
        offload = not (isinstance(records, MemoryRecordStore) and isinstance(providers, MemoryProviderStore))
        unsubscribe: list[Callable[[], object]] = []
        try:
            async with trio.open_nursery() as nursery:
                svc = cls(host, cfg, engine, server, offload, nursery)
                if server:
                    host.set_stream_handler(PROTOCOL_ID, svc._serve)
                unsubscribe.append(host.on_peer_identified(svc._on_identified))
                unsubscribe.append(host.on_peer_disconnected(svc._on_disconnected))
                host.set_peer_router(svc._route)
                nursery.start_soon(svc._input_loop)
                nursery.start_soon(svc._timer_loop)
                if cfg.reprovide_interval is not None:
                    nursery.start_soon(svc._reprovide_loop, cfg.reprovide_interval)
                for peer in host.connected_peers():  # already identified before we started
                    info = host.identified(peer)
                    if info is not None:
                        svc._on_identified(info)
                try:
                    yield svc
                finally:
                    if server:
                        host.remove_stream_handler(PROTOCOL_ID)
                    host.set_peer_router(None)
                    for unsub in unsubscribe:
                        unsub()
                    nursery.cancel_scope.cancel()
                    with trio.CancelScope(shield=True):
                        async with svc._lock:  # no engine call is running (nor will run) after this
                            svc._closed = True
                        await svc._drop_all_pooled()
        except BaseExceptionGroup as group:
            # The caller's block runs inside our nursery: give its exception back unwrapped when it is
            # the only one, so `except InvalidRecord:` around the block works (as P2PHost.open does).
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0] from None
            raise
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(cls._close_stores, own)

    @staticmethod
    def _open_stores(cfg: DhtConfig) -> tuple[RecordStore, ProviderStore, list[object]]:
        own: list[object] = []
        records = cfg.records
        providers = cfg.providers
        if cfg.data_dir is not None:
            os.makedirs(cfg.data_dir, exist_ok=True)
            if records is None:
                records = SqliteRecordStore(Path(cfg.data_dir) / "dht-records.sqlite")
                own.append(records)
            if providers is None:
                providers = SqliteProviderStore(Path(cfg.data_dir) / "dht-providers.sqlite")
                own.append(providers)
        return (
            records if records is not None else MemoryRecordStore(),
            providers if providers is not None else MemoryProviderStore(),
            own,
        )

    @staticmethod
    def _close_stores(own: list[object]) -> None:
        for store in own:
            if isinstance(store, SqliteRecordStore | SqliteProviderStore):
                store.close()

    # ---- engine access --------------------------------------------------------------------------------
    async def _call(self, fn: Callable[[float], T], *, offload: bool = False, wake: bool = True) -> T:
        """Run `fn(now)` against the engine, serialised; in a worker thread if it may touch SQLite.
        Then wake the timer task (the call may have moved the next deadline) unless `wake` is False."""
        async with self._lock:
            if self._closed:
                raise ServiceStopped("the DHT service has stopped")
            now = self._clock()
            if offload and self._offload:
                result = await trio.to_thread.run_sync(fn, now)
            else:
                result = fn(now)
        if wake:
            self._wake.set()
        return result

    def _post(self, fn: Callable[[float], list[Action]]) -> None:
        """Queue an engine input from synchronous code (host callbacks); dropped when the queue is full."""
        try:
            self._inputs_send.send_nowait(fn)
        except trio.WouldBlock:
            logger.warning("DHT input queue full: dropping a host event")
        except trio.ClosedResourceError:
            pass

    async def _input_loop(self) -> None:
        async for fn in self._inputs_recv:
            self._dispatch(await self._call(fn))

    def _dispatch(self, actions: Sequence[Action], *, wake: bool = True) -> None:
        for a in actions:
            if isinstance(a, SendRequest):
                self._nursery.start_soon(self._send, a)
            elif isinstance(a, Penalise):
                self._penalise(a.peer_id, a.reason)
            elif isinstance(a, QueryFinished):
                w = self._waiters.get(a.query_id)
                if w is not None:
                    w.result = a
                    w.done.set()
            # Reply only comes from handle_request, whose caller writes it.
        if wake:
            self._wake.set()

    async def _timer_loop(self) -> None:
        fired: float | None = None
        while True:
            self._wake = trio.Event()  # any engine input from here on re-arms the wait below
            deadline = await self._call(lambda _now: self.engine.next_deadline(), wake=False)
            if deadline is not None and deadline == fired:
                await trio.sleep(_MIN_TIMER_SLEEP)  # on_timer left that deadline in place: never spin
            delay = _MAX_TIMER_SLEEP if deadline is None else deadline - self._clock()
            if delay > 0:
                with trio.move_on_after(min(delay, _MAX_TIMER_SLEEP)):
                    await self._wake.wait()
            if deadline is not None and self._clock() >= deadline:
                fired = deadline
                self._dispatch(await self._call(self.engine.on_timer, offload=True, wake=False), wake=False)
            await self._reap_idle()

    # ---- host events ---------------------------------------------------------------------------------
    def _on_identified(self, info: IdentifyInfo) -> None:
        peer = info.peer_id
        if self._is_banned(peer):
            return
        pid = peer.to_bytes()
        addrs = [a.to_bytes() for a in info.listen_addrs]
        serves = PROTOCOL_ID in info.protocols
        self._post(lambda now: self.engine.add_peer(pid, addrs, now, server=serves))

    def _on_disconnected(self, peer: PeerId) -> None:
        pooled = self._idle.pop(peer, None)
        for stream, _ in pooled or ():
            self._nursery.start_soon(stream.reset)

    # ---- penalties -----------------------------------------------------------------------------------
    def _is_banned(self, peer: PeerId) -> bool:
        until = self._banned.get(peer)
        if until is None:
            return False
        if until <= self._clock():
            del self._banned[peer]
            return False
        return True

    def _penalise(self, peer_bytes: bytes, reason: str) -> None:
        try:
            peer = PeerId.from_bytes(peer_bytes)
        except DecodeError:
            return
        self.penalties_total += 1
        now = self._clock()
        logger.debug("DHT peer %s penalised: %s", peer, reason)
        history = self._penalties.pop(peer, None) or deque(maxlen=self.config.ban_threshold)
        history.append(now)
        self._penalties[peer] = history
        while len(self._penalties) > self.config.max_tracked_peers:
            self._penalties.popitem(last=False)
        pooled = self._idle.pop(peer, None)
        for stream, _ in pooled or ():
            self._nursery.start_soon(stream.reset)
        recent = sum(1 for t in history if now - t <= self.config.penalty_window)
        if recent >= self.config.ban_threshold and not self._is_banned(peer):
            logger.info("DHT peer %s banned for %.0f s: %s", peer, self.config.ban_duration, reason)
            self._banned[peer] = now + self.config.ban_duration
            while len(self._banned) > self.config.max_tracked_peers:
                self._banned.popitem(last=False)
            self._post(lambda _now: self._forget(peer_bytes))

    def _forget(self, peer_bytes: bytes) -> list[Action]:
        self.engine.remove_peer(peer_bytes)
        return []

    def is_banned(self, peer: PeerId) -> bool:
        """Whether `peer` is currently banned from our DHT for misbehaving."""
        return self._is_banned(peer)

    # ---- inbound -------------------------------------------------------------------------------------
    async def _serve(self, stream: P2PStream) -> None:
        peer = stream.peer
        cfg = self.config
        count = self._inbound.get(peer, 0)
        if (
            self._is_banned(peer)
            or count >= cfg.max_inbound_streams_per_peer
            or self._inbound_total >= cfg.max_inbound_streams
        ):
            await stream.reset()
            return
        self._inbound[peer] = count + 1
        self._inbound_total += 1
        try:
            await self._serve_requests(stream, peer)
        except ServiceStopped:
            await stream.reset()
        finally:
            self._inbound_total -= 1
            left = self._inbound[peer] - 1
            if left:
                self._inbound[peer] = left
            else:
                del self._inbound[peer]

    async def _serve_requests(self, stream: P2PStream, peer: PeerId) -> None:
        cfg = self.config
        pid = peer.to_bytes()
        for _ in range(cfg.max_requests_per_stream):
            payload: bytes | None = None
            with trio.move_on_after(cfg.request_timeout):
                try:
                    payload = await stream.read_message(MAX_MESSAGE_SIZE)
                except DecodeError as e:  # oversized or truncated frame
                    self._penalise(pid, f"bad request frame: {e}")
                    await stream.reset()
                    return
                except StreamError:
                    return
                if payload is None:
                    return  # the requester is done
            if payload is None:
                return  # idle: the host closes the stream
            try:
                msg = Message.decode(payload)
            except DecodeError as e:
                self._penalise(pid, f"malformed request: {e}")
                await stream.reset()
                return
            info = self.host.identified(peer)
            serves = info is not None and PROTOCOL_ID in info.protocols
            sender_addrs = [a.to_bytes() for a in info.listen_addrs] if info is not None else []
            handle = partial(
                self.engine.handle_request, pid, msg, sender_addrs=sender_addrs, sender_is_server=serves
            )
            actions = await self._call(handle, offload=msg.type in _STORE_TYPES)
            reply = next((a for a in actions if isinstance(a, Reply)), None)
            punished = any(isinstance(a, Penalise) and a.peer_id == pid for a in actions)
            self._dispatch([a for a in actions if not isinstance(a, Reply)])
            if punished or self._is_banned(peer):
                await stream.reset()
                return
            if reply is None:
                if msg.type == MessageType.ADD_PROVIDER:
                    continue
                return  # unanswerable (e.g. a namespace we do not serve): close at once
            try:
                with trio.fail_after(cfg.request_timeout):
                    await stream.write_message(reply.message.encode())
            except (trio.TooSlowError, StreamError, ValueError):
                await stream.reset()
                return
        # max_requests_per_stream reached: the host closes the stream

    # ---- outbound ------------------------------------------------------------------------------------
    async def _send(self, a: SendRequest) -> None:
        pid = a.peer.id
        ok = False
        try:
            peer = PeerId.from_bytes(pid)
        except DecodeError:
            peer = None
        if peer is not None and peer != self.host.peer_id and not self._is_banned(peer):
            with trio.move_on_after(max(0.0, a.deadline - self._clock())):
                async with self._out_limiter:
                    ok = await self._exchange(a, peer)
        if not ok:
            failed = partial(self.engine.on_request_failed, a.query_id, pid)
            self._dispatch(await self._call(failed))

    async def _open(self, peer: PeerId, addrs: Sequence[bytes]) -> P2PStream:
        host = self.host
        if not host.is_connected(peer):
            known = _dialable(peer, addrs)
            if not known and not host.address_book.get(peer):
                raise NoAddressesError(f"no address for {peer}")  # never recurse into our peer router
            await host.connect(peer, known)
        return await host.new_stream(peer, [PROTOCOL_ID])

    def _take_pooled(self, peer: PeerId) -> P2PStream | None:
        pooled = self._idle.get(peer)
        if not pooled:
            return None
        stream, _ = pooled.pop()
        if not pooled:
            del self._idle[peer]
        return stream

    async def _give_back(self, peer: PeerId, stream: P2PStream) -> None:
        cfg = self.config
        pooled = self._idle.get(peer)
        if peer in self._one_shot or (pooled is not None and len(pooled) >= cfg.idle_streams_per_peer):
            await stream.close()
            return
        if pooled is None:
            pooled = self._idle[peer] = []
        pooled.append((stream, self._clock()))
        self._idle.move_to_end(peer)
        while len(self._idle) > cfg.max_pooled_peers:
            _, evicted = self._idle.popitem(last=False)
            for s, _ in evicted:
                await s.close()

    async def _reap_idle(self) -> None:
        now = self._clock()
        if now - self._last_reap < _MAX_TIMER_SLEEP:
            return
        self._last_reap = now
        limit = now - self.config.idle_stream_timeout
        for peer in [p for p, ss in self._idle.items() if ss[0][1] <= limit]:
            keep = [(s, t) for s, t in self._idle[peer] if t > limit]
            old = [s for s, t in self._idle[peer] if t <= limit]
            if keep:
                self._idle[peer] = keep
            else:
                del self._idle[peer]
            for s in old:
                await s.close()

    async def _drop_all_pooled(self) -> None:
        idle, self._idle = self._idle, OrderedDict()
        for streams in idle.values():
            for s, _ in streams:
                await s.reset()

    async def _exchange(self, a: SendRequest, peer: PeerId) -> bool:
        """One request (and its reply, if expected) to `peer`; True when the engine got the reply."""
        payload: bytes | None = None
        stream: P2PStream | None = None
        for attempt in range(2):
            pooled = self._take_pooled(peer) if a.expect_reply and attempt == 0 else None
            try:
                stream = pooled if pooled is not None else await self._open(peer, a.peer.addrs)
            except (P2PError, DecodeError, ValueError) as e:
                logger.debug("DHT request to %s not sent: %s", peer, e)
                return False
            try:
                await stream.write_message(a.message.encode())
                if not a.expect_reply:
                    await stream.close()
                    return True
                payload = await stream.read_message(MAX_MESSAGE_SIZE)
            except DecodeError as e:  # oversized or truncated reply
                await stream.reset()
                self._penalise(a.peer.id, f"bad reply frame: {e}")
                return False
            except StreamError as e:
                await stream.reset()
                if pooled is not None:
                    continue
                logger.debug("DHT request to %s failed: %s", peer, e)
                return False
            except BaseException:
                with trio.CancelScope(shield=True):
                    await stream.reset()  # timed out or cancelled mid-request: never reuse
                raise
            if payload is None:  # closed without a reply
                await stream.reset()
                if pooled is not None:
                    self._one_shot[peer] = None
                    self._one_shot.move_to_end(peer)
                    while len(self._one_shot) > self.config.max_one_shot_peers:
                        self._one_shot.popitem(last=False)
                    continue
                return False
            break
        if payload is None or stream is None:
            return False
        try:
            msg = Message.decode(payload)
        except DecodeError as e:
            await stream.reset()
            self._penalise(a.peer.id, f"malformed reply: {e}")
            return False
        actions = await self._call(lambda now: self.engine.on_response(a.query_id, a.peer.id, msg, now))
        self._dispatch(actions)
        with trio.CancelScope(shield=True):  # delivered: finish the bookkeeping even if the deadline hits
            if any(isinstance(x, Penalise) and x.peer_id == a.peer.id for x in actions):
                await stream.reset()
            else:
                await self._give_back(peer, stream)
            await self._maybe_found(a.query_id, msg)
        return True

    async def _maybe_found(self, query_id: int, msg: Message) -> None:
        """find_peer's early exit: a reply names the exact peer with an address."""
        w = self._waiters.get(query_id)
        if w is None or w.target is None or w.done.is_set():
            return
        for p in msg.closer_peers:
            if p.id == w.target and p.addrs:
                w.found_addrs = list(p.addrs)
                self._dispatch(await self._call(lambda now: self.engine.cancel(query_id, now)))
                return

    # ---- queries -------------------------------------------------------------------------------------
    async def _run_query(
        self,
        start: Callable[[float], tuple[int, list[Action]]],
        *,
        offload: bool = False,
        target: bytes | None = None,
    ) -> tuple[QueryFinished, _Waiter]:
        qid, actions = await self._call(start, offload=offload)
        w = _Waiter(target)
        self._waiters[qid] = w
        try:
            self._dispatch(actions)
            with trio.move_on_after(self.config.kademlia.query_timeout + _QUERY_GRACE):
                await w.done.wait()
            if not w.done.is_set():
                self._dispatch(await self._call(lambda now: self.engine.cancel(qid, now)))
            assert w.result is not None, "a cancelled query reports QueryFinished"
            return w.result, w
        finally:
            if not w.done.is_set():  # the caller was cancelled: stop the lookup too
                with trio.CancelScope(shield=True):
                    self._dispatch(await self._call(lambda now: self.engine.cancel(qid, now)))
            del self._waiters[qid]

    async def find_closest_peers(self, key: bytes) -> list[Peer]:
        """The (up to) k closest DHT servers to `key` that answered (a FIND_NODE lookup)."""
        done, _ = await self._run_query(lambda now: self.engine.find_closest_peers(key, now))
        result = done.result
        assert isinstance(result, list)
        return result

    async def find_peer(self, peer: PeerId, *, use_table: bool = True) -> list[Multiaddr]:
        """Addresses of `peer` ([] if not found): from the routing table when it is there (unless
        `use_table` is False), else by a lookup that stops at the first reply naming it. Found
        addresses are added to the host's address book."""
        pid = peer.to_bytes()
        if peer == self.host.peer_id:
            return self.host.advertised_addrs()
        if use_table:
            known = await self._call(lambda _now: self.engine.table.get(pid))
            if known is not None and known.addrs:
                return _dialable(peer, known.addrs)
        done, w = await self._run_query(lambda now: self.engine.find_peer(pid, now), target=pid)
        raw = list(w.found_addrs)
        if not raw:
            assert isinstance(done.result, list)
            for p in done.result:
                if p.id == pid:
                    raw = list(p.addrs)
        addrs = _dialable(peer, raw)
        if addrs:
            self.host.address_book.add(peer, addrs)
        return addrs

    async def _route(self, peer: PeerId) -> list[Multiaddr]:
        """The host's peer router: `find_peer` under `peer_routing_timeout`."""
        with trio.move_on_after(self.config.peer_routing_timeout):
            return await self.find_peer(peer)
        return []

    async def find_providers(self, key: bytes | Cid, *, count: int | None = None) -> list[ProviderInfo]:
        """Up to `count` (default k) distinct providers of a multihash (or a CID's multihash), local
        ones first. Their addresses go into the host's address book."""
        mh = _key_of(key)
        done, _ = await self._run_query(
            lambda now: self.engine.get_providers(mh, now, count=count), offload=True
        )
        assert isinstance(done.result, list)
        out: dict[PeerId, ProviderInfo] = {}
        for p in done.result:
            try:
                pid = PeerId.from_bytes(p.id)
            except DecodeError:
                continue
            if pid in out:
                continue
            addrs = tuple(_dialable(pid, p.addrs))
            out[pid] = ProviderInfo(pid, addrs)
            if addrs and pid != self.host.peer_id:
                self.host.address_book.add(pid, addrs)
        return list(out.values())

    async def provide(self, key: bytes | Cid) -> PutResult:
        """Announce this node as a provider of a multihash (or CID) to the k closest peers, and keep
        re-announcing it every `reprovide_interval`."""
        mh = _key_of(key)
        self._provided.pop(mh, None)
        self._provided[mh] = None
        while len(self._provided) > self.config.max_provided_keys:
            self._provided.popitem(last=False)
        done, _ = await self._run_query(lambda now: self.engine.provide(mh, now), offload=True)
        assert isinstance(done.result, PutResult)
        return done.result

    def stop_providing(self, key: bytes | Cid) -> None:
        """Stop reproviding `key` (records already announced expire by themselves)."""
        self._provided.pop(_key_of(key), None)

    async def _reprovide_loop(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            limiter = trio.CapacityLimiter(self.config.reprovide_concurrency)
            async with trio.open_nursery() as nursery:
                for mh in list(self._provided):
                    nursery.start_soon(self._reprovide_one, mh, limiter)

    async def _reprovide_one(self, mh: bytes, limiter: trio.CapacityLimiter) -> None:
        async with limiter:
            try:
                await self._run_query(partial(self.engine.provide, mh), offload=True)
            except QueryLimitReached as e:  # busy: the next round retries
                logger.info("reprovide of %s skipped: %s", mh.hex(), e)

    async def put_value(self, key: bytes, value: bytes) -> PutResult:
        """Validate and store `value` under `key` locally and on the k closest peers (PUT_VALUE).
        InvalidRecord if the value is invalid for its namespace."""
        done, _ = await self._run_query(lambda now: self.engine.put_value(key, value, now), offload=True)
        assert isinstance(done.result, PutResult)
        return done.result

    async def get_value(self, key: bytes, *, quorum: int = 1) -> ValueResult:
        """The best valid value for `key` (GET_VALUE until `quorum` valid answers, the local record
        counting as one); peers holding worse values are corrected. ValueError for a namespace
        without a validator."""
        done, _ = await self._run_query(
            lambda now: self.engine.get_value(key, now, quorum=quorum), offload=True
        )
        assert isinstance(done.result, ValueResult)
        return done.result

    async def put_ipns(self, name: PeerId, record: bytes) -> PutResult:
        """Publish a signed IPNS record of `name` (see `nabu_py.protocols.ipns.create_record`) locally
        and to the k closest peers. InvalidRecord if it does not verify."""
        return await self.put_value(routing_key(name), record)

    async def get_ipns(self, name: PeerId, *, quorum: int = 1) -> IpnsRecord | None:
        """The best valid IPNS record of `name`, or None."""
        key = routing_key(name)
        result = await self.get_value(key, quorum=quorum)
        if result.value is None:
            return None
        return validate_record(key, result.value, self._clock())

    # ---- bootstrap -----------------------------------------------------------------------------------
    async def bootstrap(self) -> int:
        """Join the DHT: connect to the bootstrap peers (waiting for their identify, which puts the
        servers among them in the table), look up our own id and a random id, then refresh every
        bucket in the background. Returns the routing table size."""
        peers = self.config.bootstrap_peers
        if peers is None:
            peers = self.host.config.bootstrap
        with trio.move_on_after(self.config.bootstrap_timeout):
            async with trio.open_nursery() as nursery:
                for addr in peers:
                    nursery.start_soon(self._join, addr)
        with trio.move_on_after(self.config.bootstrap_timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.find_closest_peers, self.host.peer_id.to_bytes())
                nursery.start_soon(self.find_closest_peers, b"\x12\x20" + os.urandom(32))
        self._dispatch(await self._call(lambda now: self.engine.bootstrap(now)))
        return await self.routing_table_size()

    async def _join(self, addr: str) -> None:
        try:
            peer = await self.host.connect(addr)
            info = await self.host.wait_identified(peer)
        except (P2PError, DecodeError, ValueError) as e:
            logger.info("DHT bootstrap peer %s unreachable: %s", addr, e)
            return
        if PROTOCOL_ID not in info.protocols:
            logger.info("DHT bootstrap peer %s does not serve %s", addr, PROTOCOL_ID)
            return
        pid = peer.to_bytes()
        addrs = [a.to_bytes() for a in info.listen_addrs]
        self._dispatch(await self._call(lambda now: self.engine.add_peer(pid, addrs, now, server=True)))

    # ---- introspection -------------------------------------------------------------------------------
    async def routing_table_size(self) -> int:
        """Peers in the routing table."""
        return await self._call(lambda _now: len(self.engine.table))

    async def routing_table_peers(self) -> list[PeerId]:
        """Peer ids in the routing table."""
        raw = await self._call(lambda _now: [p.id for p in self.engine.known_peers()])
        return [PeerId.from_bytes(r) for r in raw]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
