"""The Kademlia DHT engine: a sans-IO node (design.md §4 practices 1, 2, 5; libp2p kad-dht spec;
spec/nabu.md §3.3 for the server table, §10 for the bugs not to copy).

One `KademliaEngine` per node owns the routing table, the record and provider stores, the running
lookups and the timers. A driver (trio service, simulator, test) feeds it inputs with the current
time and carries out the actions it returns; the engine never blocks, sleeps, reads a clock or does
network I/O, and never raises because of what a remote peer sent.

Inputs                                                     Actions returned
- `handle_request(sender, bytes|Message, now, ...)`       `Reply(message)` to write on that stream
  one inbound request (one per stream)                     (no Reply: close/reset the stream)
- `find_closest_peers / find_peer / get_value /            `SendRequest(query_id, peer, message,
  get_providers / put_value / provide / bootstrap`          expect_reply, deadline)`: open a stream,
  start a query, return its id                              write, read one reply if expected
- `on_response(query_id, peer_id, bytes|Message, now)`     `Penalise(peer_id, reason)`: the peer sent
- `on_request_failed(query_id, peer_id, now)`               garbage or broke a rule
  (stream/dial error, reset, or the driver's timeout)      `QueryFinished(query_id, kind, result,
- `add_peer(peer_id, addrs, now, server=...)` on identify   lookup)` for queries the user started
- `on_timer(now)` at `next_deadline()`

Server behaviour (fixing Nabu where it differs):
- FIND_NODE: key == our peer id -> only ourselves with our addresses (go peers' liveness probe);
  otherwise the k closest peers of the table, never the requester.
- GET_VALUE: the stored, unexpired record (if any, and if it still passes its validator: an IPNS record
  past its validity is dropped, not served) plus the k closest peers.
- PUT_VALUE: the record must carry the message key and pass its namespace validator (unknown
  namespace: no reply; invalid: penalty and no reply). Every valid PUT gets a reply holding the record
  we keep afterwards: the request's when stored, our better one when theirs is older (Nabu gave no
  reply, §10.8), so the sender can tell acceptance from refusal without a timeout.
- ADD_PROVIDER: key must be a multihash; only the provider entry whose id is the sender is stored
  (with the sender's addresses if the entry has none); a token bucket per sender bounds the rate and
  floods are penalised; providers expire after `provider_ttl`. No reply (fire-and-forget).
- GET_PROVIDERS: unexpired providers (deduplicated by the store) plus the k closest peers.
- PING: echoed. Unknown types and malformed messages: penalty, no reply.

Routing table feeding: a peer enters the table only when it is known to be a DHT server: it answered
one of our requests, or the driver says so (`sender_is_server` on inbound requests, `add_peer` from
identify). Unanswered requests count as failures against the peer. When a full bucket meets a new
peer and its least-recently-seen entry is due a check, the engine probes it with FIND_NODE(its own
id) (what every implementation answers) and evicts it if that fails.

Timers: lookups' per-request deadlines and whole-query deadline, liveness probes, the periodic
refresh (a self lookup plus a random lookup in every bucket not looked up within `refresh_interval`,
spec "Bootstrap process"), and store purges. `next_deadline()` says when `on_timer` is next needed.

A driver (every call may return any action, `handle_request` included: a new inbound server can
trigger a liveness probe of a stale table entry):

    inbound stream:  payload = FrameDecoder().feed(...)  (DecodeError -> reset)
                     for a in engine.handle_request(peer, payload, now, sender_addrs=..,
                                                    sender_is_server=..):
                         Reply -> write encode_framed(a.message), close;  others -> dispatch(a)
    dispatch(a):     SendRequest -> task: open stream, write frame; if a.expect_reply: read one frame
                                    until a.deadline -> dispatch_all(engine.on_response(a.query_id,
                                    a.peer.id, payload, now)); on any error/timeout ->
                                    dispatch_all(engine.on_request_failed(a.query_id, a.peer.id, now))
                     Penalise -> reset the peer's streams, lower its score
                     QueryFinished -> wake whoever awaits a.query_id
    timer task:      sleep until engine.next_deadline(); dispatch_all(engine.on_timer(now))
                     (re-arm after every call into the engine: input can add an earlier deadline)
    identify:        dispatch_all(engine.add_peer(peer, addrs, now, server=<speaks /ipfs/kad/1.0.0>))
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from nabu_py.errors import DecodeError
from nabu_py.multiformats import multihash
from nabu_py.protocols.kademlia.errors import InvalidRecord, QueryLimitReached
from nabu_py.protocols.kademlia.keys import kad_key, random_peer_id_in_bucket
from nabu_py.protocols.kademlia.messages import Message, MessageType, Peer, Record
from nabu_py.protocols.kademlia.query import (
    FindNodeLookup,
    GetProvidersLookup,
    GetValueLookup,
    Lookup,
    LookupParams,
    ProvideLookup,
    PutValueLookup,
    ValueResult,
)
from nabu_py.protocols.kademlia.records import (
    DEFAULT_PROVIDER_TTL,
    DEFAULT_RECORD_TTL,
    MAX_RECORD_VALUE_SIZE,
    MemoryProviderStore,
    MemoryRecordStore,
    ProviderStore,
    RecordStore,
    StoredRecord,
    Validator,
    validator_for,
)
from nabu_py.protocols.kademlia.routing_table import RoutingTable


@dataclass(frozen=True, slots=True)
class KademliaConfig:
    """Tunables of one engine. Defaults follow the libp2p spec and go-libp2p-kad-dht."""

    k: int = 20
    """Bucket size, replication factor, closer peers per reply, lookup result size."""
    alpha: int = 3
    """Requests in flight per lookup."""
    request_timeout: float = 10.0
    """Seconds a lookup waits for one reply before counting the peer as failed."""
    query_timeout: float = 60.0
    """Seconds after which a whole query stops with what it has."""
    max_queries: int = 64
    """Concurrent user queries; starting one more raises QueryLimitReached."""
    replacement_cache_size: int = 10
    liveness_interval: float = 600.0
    """A full bucket's oldest entry is probed before eviction only if unheard of for this long."""
    max_failures: int = 3
    """Consecutive failures that evict a table entry with no replacement waiting."""
    record_ttl: float = DEFAULT_RECORD_TTL
    provider_ttl: float = DEFAULT_PROVIDER_TTL
    max_record_value_size: int = MAX_RECORD_VALUE_SIZE
    max_addrs_per_peer: int = 16
    """Addresses kept per peer in the table and provider records."""
    address_filter: Callable[[bytes], bool] | None = None
    """Keeps a (binary multiaddr) address of another peer when it returns True, before it is stored in
    the table or a provider record, and so before it is ever handed out in a reply (e.g. public
    addresses only, as Nabu replies). None keeps every address."""
    add_provider_rate: float = 1.0
    """ADD_PROVIDER messages per second and peer, sustained."""
    add_provider_burst: int = 100
    """ADD_PROVIDER messages a peer may send at once."""
    rate_limited_peers: int = 4096
    """Peers whose ADD_PROVIDER budget is tracked (least recently active are forgotten)."""
    refresh_interval: float | None = 300.0
    """Period of the routing-table refresh; None disables it (simulations, tests)."""
    purge_interval: float | None = 3600.0
    """Period of expired-record purges; None disables them (expired entries stay invisible anyway)."""


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Send `message` to `peer` on a new kad stream; if `expect_reply`, read one reply until `deadline`
    and report it with `on_response(query_id, peer.id, ...)`, or `on_request_failed` on any failure."""

    query_id: int
    peer: Peer
    message: Message
    expect_reply: bool
    deadline: float


@dataclass(frozen=True, slots=True)
class Reply:
    """Write `message` as the reply on the inbound stream being handled, then close it."""

    message: Message


@dataclass(frozen=True, slots=True)
class Penalise:
    """`peer_id` misbehaved (garbage, rule broken, flood): reset its stream and lower its score."""

    peer_id: bytes
    reason: str


class QueryKind(Enum):
    """What a query does (and so the type of its result)."""

    FIND_NODE = "find_node"
    """result: list[Peer], the k closest peers that answered."""
    GET_VALUE = "get_value"
    """result: ValueResult."""
    GET_PROVIDERS = "get_providers"
    """result: list[Peer], distinct providers."""
    PUT_VALUE = "put_value"
    """result: PutResult."""
    PROVIDE = "provide"
    """result: PutResult (ADD_PROVIDER is fire-and-forget: succeeded = the peers it was sent to)."""


@dataclass(frozen=True, slots=True)
class PutResult:
    """Outcome of PUT_VALUE / ADD_PROVIDER to the closest peers."""

    succeeded: tuple[bytes, ...]
    failed: tuple[bytes, ...]


QueryResult = list[Peer] | ValueResult | PutResult


@dataclass(frozen=True, slots=True)
class QueryFinished:
    """A user query ended. `lookup` is the finished state machine (statistics, hop depths)."""

    query_id: int
    kind: QueryKind
    result: QueryResult
    lookup: Lookup = field(repr=False)


Action = SendRequest | Reply | Penalise | QueryFinished


MAX_INTERNAL_QUERIES = 64
"""Bound on concurrent refresh/bootstrap lookups (one refresh starts at most 17)."""


class _Probe:
    __slots__ = ("deadline", "peer")

    def __init__(self, peer: Peer, deadline: float) -> None:
        self.peer = peer
        self.deadline = deadline


class _Query:
    __slots__ = ("kind", "lookup", "user")

    def __init__(self, kind: QueryKind, lookup: Lookup, user: bool) -> None:
        self.kind = kind
        self.lookup = lookup
        self.user = user


class _RateLimiter:
    """Token buckets per peer, bounded to `max_peers` (least recently active forgotten)."""

    def __init__(self, rate: float, burst: int, max_peers: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_peers = max_peers
        self._buckets: dict[bytes, tuple[float, float]] = {}

    def allow(self, peer_id: bytes, now: float) -> bool:
        tokens, last = self._buckets.pop(peer_id, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[peer_id] = (tokens, now)
        if len(self._buckets) > self.max_peers:
            del self._buckets[next(iter(self._buckets))]
        return ok


class KademliaEngine:
    """Sans-IO Kademlia node. See the module docstring for inputs, actions and behaviour."""

    def __init__(
        self,
        local_peer_id: bytes,
        local_addrs: Sequence[bytes] = (),
        *,
        config: KademliaConfig | None = None,
        records: RecordStore | None = None,
        providers: ProviderStore | None = None,
        validators: Mapping[bytes, Validator] | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        if not local_peer_id:
            raise ValueError("local_peer_id must be the node's peer id multihash bytes")
        self.config = cfg = config or KademliaConfig()
        self.local_peer_id = local_peer_id
        self.self_peer = Peer(local_peer_id, tuple(local_addrs)[: cfg.max_addrs_per_peer])
        self.table = RoutingTable(
            local_peer_id,
            k=cfg.k,
            replacement_cache_size=cfg.replacement_cache_size,
            liveness_interval=cfg.liveness_interval,
            probe_timeout=cfg.request_timeout,
            max_failures=cfg.max_failures,
        )
        self.records: RecordStore = records if records is not None else MemoryRecordStore()
        self.providers: ProviderStore = providers if providers is not None else MemoryProviderStore()
        self.validators: dict[bytes, Validator] = dict(validators or {})
        self.rng = rng or random.Random()
        self._queries: dict[int, _Query] = {}
        self._user_queries = 0
        self._probes: dict[bytes, tuple[int, _Probe]] = {}
        self._next_id = 1
        self._limiter = _RateLimiter(cfg.add_provider_rate, cfg.add_provider_burst, cfg.rate_limited_peers)
        self._next_refresh = None if cfg.refresh_interval is None else now + cfg.refresh_interval
        self._next_purge = None if cfg.purge_interval is None else now + cfg.purge_interval

    # -- inbound requests ----------------------------------------------------------------------

    def handle_request(
        self,
        sender: bytes,
        request: bytes | Message,
        now: float,
        *,
        sender_addrs: Sequence[bytes] = (),
        sender_is_server: bool = False,
    ) -> list[Action]:
        """Answer one inbound request from `sender` (see module docstring). Never raises on bad input."""
        if isinstance(request, Message):
            msg = request
        else:
            try:
                msg = Message.decode(bytes(request))
            except DecodeError as e:
                return [Penalise(sender, f"malformed request: {e}")]
        actions: list[Action] = []
        if sender_is_server and sender != self.local_peer_id:
            self._saw(Peer(sender, self._addrs(sender_addrs)), now, actions)
        t = msg.type
        if t == MessageType.FIND_NODE:
            self._on_find_node(sender, msg, actions)
        elif t == MessageType.GET_VALUE:
            self._on_get_value(sender, msg, now, actions)
        elif t == MessageType.PUT_VALUE:
            self._on_put_value(sender, msg, now, actions)
        elif t == MessageType.GET_PROVIDERS:
            self._on_get_providers(sender, msg, now, actions)
        elif t == MessageType.ADD_PROVIDER:
            self._on_add_provider(sender, msg, now, sender_addrs, actions)
        elif t == MessageType.PING:
            actions.append(Reply(Message(MessageType.PING)))
        else:
            actions.append(Penalise(sender, f"unknown message type {t}"))
        return actions

    def _closer(self, key: bytes, sender: bytes) -> tuple[Peer, ...]:
        return tuple(self.table.closest(kad_key(key), self.config.k, exclude=sender))

    def _on_find_node(self, sender: bytes, msg: Message, actions: list[Action]) -> None:
        if not msg.key:
            actions.append(Penalise(sender, "FIND_NODE without a key"))
            return
        if msg.key == self.local_peer_id:
            closer: tuple[Peer, ...] = (self.self_peer,)
        else:
            closer = self._closer(msg.key, sender)
        actions.append(Reply(Message(MessageType.FIND_NODE, key=msg.key, closer_peers=closer)))

    def _on_get_value(self, sender: bytes, msg: Message, now: float, actions: list[Action]) -> None:
        if not msg.key:
            actions.append(Penalise(sender, "GET_VALUE without a key"))
            return
        stored = self._valid_record(msg.key, now)
        record = None if stored is None else Record(stored.key, stored.value)
        closer = self._closer(msg.key, sender)
        actions.append(Reply(Message(MessageType.GET_VALUE, key=msg.key, record=record, closer_peers=closer)))

    def _valid_record(self, key: bytes, now: float) -> StoredRecord | None:
        """The stored record for `key` if it still passes its validator at `now` (an IPNS record can
        expire before the store forgets it: it is dropped instead of being served, since a requester
        would rightly reject it)."""
        stored = self.records.get(key, now)
        if stored is None:
            return None
        try:
            validator_for(self.validators, key).validate(key, stored.value, now)
        except ValueError:  # InvalidRecord (also: namespace no longer served), DecodeError
            self.records.remove(key)
            return None
        return stored

    def _on_put_value(self, sender: bytes, msg: Message, now: float, actions: list[Action]) -> None:
        rec = msg.record
        key = msg.key
        if rec is None or not key or rec.key != key:
            actions.append(Penalise(sender, "PUT_VALUE without a record for the message key"))
            return
        if len(rec.value) > self.config.max_record_value_size:
            actions.append(Penalise(sender, f"PUT_VALUE record of {len(rec.value)} bytes"))
            return
        try:
            validator = validator_for(self.validators, key)
        except InvalidRecord:
            return  # a namespace we do not serve: no reply, not the sender's fault
        try:
            validator.validate(key, rec.value, now)
        except ValueError as e:  # InvalidRecord, or DecodeError from a validator parsing the value
            actions.append(Penalise(sender, f"invalid PUT_VALUE record: {e}"))
            return
        existing = self._valid_record(key, now)
        if (
            existing is not None
            and existing.value != rec.value
            and validator.select(key, [rec.value, existing.value]) != 0
        ):
            actions.append(Reply(Message(MessageType.PUT_VALUE, key=key, record=Record(key, existing.value))))
            return
        self.records.put(StoredRecord(key, rec.value, now, now + self.config.record_ttl))
        actions.append(Reply(Message(MessageType.PUT_VALUE, key=key, record=Record(key, rec.value))))

    def _on_get_providers(self, sender: bytes, msg: Message, now: float, actions: list[Action]) -> None:
        if not msg.key:
            actions.append(Penalise(sender, "GET_PROVIDERS without a key"))
            return
        provs = tuple(self.providers.get(msg.key, now, self.config.k))
        actions.append(
            Reply(
                Message(
                    MessageType.GET_PROVIDERS,
                    key=msg.key,
                    provider_peers=provs,
                    closer_peers=self._closer(msg.key, sender),
                )
            )
        )

    def _on_add_provider(
        self, sender: bytes, msg: Message, now: float, sender_addrs: Sequence[bytes], actions: list[Action]
    ) -> None:
        if not self._limiter.allow(sender, now):
            actions.append(Penalise(sender, "ADD_PROVIDER rate limit exceeded"))
            return
        try:
            multihash.decode(msg.key)
        except DecodeError:
            actions.append(Penalise(sender, "ADD_PROVIDER key is not a multihash"))
            return
        for p in msg.provider_peers:
            if p.id == sender:
                addrs = self._addrs(p.addrs or sender_addrs)
                self.providers.add(msg.key, Peer(sender, addrs), now + self.config.provider_ttl)
                return
        actions.append(Penalise(sender, "ADD_PROVIDER for a peer other than the sender"))

    # -- routing table feeding -----------------------------------------------------------------

    def add_peer(self, peer_id: bytes, addrs: Sequence[bytes], now: float, *, server: bool) -> list[Action]:
        """Identify (or a connection) told us about `peer_id`; `server` = it serves /ipfs/kad/1.0.0."""
        actions: list[Action] = []
        peer = Peer(peer_id, self._addrs(addrs))
        if server:
            self._saw(peer, now, actions)
        else:
            self.table.add(peer, now, server=False)
        return actions

    def remove_peer(self, peer_id: bytes) -> None:
        """Forget `peer_id` (e.g. it was banned)."""
        self.table.remove(peer_id)

    def _addrs(self, addrs: Sequence[bytes]) -> tuple[bytes, ...]:
        keep = self.config.address_filter
        if keep is not None:
            addrs = [a for a in addrs if keep(a)]
        return tuple(addrs[: self.config.max_addrs_per_peer])

    def _saw(self, peer: Peer, now: float, actions: list[Action]) -> None:
        if peer.connection or len(peer.addrs) > self.config.max_addrs_per_peer or self.config.address_filter:
            peer = Peer(peer.id, self._addrs(peer.addrs))  # never echo a third party's connection claim
        res = self.table.add(peer, now, server=True)
        probe = res.probe
        if probe is not None and probe.id not in self._probes:
            qid = self._new_id()
            deadline = now + self.config.request_timeout
            self._probes[probe.id] = (qid, _Probe(probe, deadline))
            actions.append(
                SendRequest(qid, probe, Message(MessageType.FIND_NODE, key=probe.id), True, deadline)
            )

    def _failed(self, peer_id: bytes, now: float) -> None:
        self.table.record_failure(peer_id, now)

    # -- queries -------------------------------------------------------------------------------

    def _new_id(self) -> int:
        qid = self._next_id
        self._next_id += 1
        return qid

    def _params(self, now: float) -> LookupParams:
        c = self.config
        return LookupParams(self.local_peer_id, c.k, c.alpha, c.request_timeout, now + c.query_timeout)

    def _seeds(self, key: bytes, now: float) -> list[Peer]:
        target = kad_key(key)
        self.table.mark_refreshed(target, now)
        return self.table.closest(target, self.config.k)

    def _start(
        self, kind: QueryKind, lookup: Lookup, now: float, *, user: bool = True
    ) -> tuple[int, list[Action]]:
        if user:
            if self._user_queries >= self.config.max_queries:
                raise QueryLimitReached(f"{self._user_queries} queries already running")
            self._user_queries += 1
        elif len(self._queries) - self._user_queries >= MAX_INTERNAL_QUERIES:
            return 0, []  # refresh lookups still running: skip this one
        qid = self._new_id()
        q = _Query(kind, lookup, user)
        self._queries[qid] = q
        actions: list[Action] = []
        self._pump(qid, q, now, actions)
        return qid, actions

    def find_closest_peers(self, key: bytes, now: float) -> tuple[int, list[Action]]:
        """Start a FIND_NODE lookup for the k peers closest to `key` (a peer id or routing key)."""
        lookup = FindNodeLookup(key, self._seeds(key, now), self._params(now))
        return self._start(QueryKind.FIND_NODE, lookup, now)

    def find_peer(self, peer_id: bytes, now: float) -> tuple[int, list[Action]]:
        """Look up `peer_id`; the result contains it (with its addresses) when it was reached."""
        return self.find_closest_peers(peer_id, now)

    def get_value(self, key: bytes, now: float, *, quorum: int = 1) -> tuple[int, list[Action]]:
        """Start a GET_VALUE lookup; the local record counts towards `quorum`. ValueError for an
        unsupported namespace (local misuse)."""
        try:
            validator = validator_for(self.validators, key)
        except InvalidRecord as e:
            raise ValueError(str(e)) from None
        local = self._valid_record(key, now)
        lookup = GetValueLookup(
            key,
            self._seeds(key, now),
            self._params(now),
            validator=validator,
            quorum=quorum,
            local_value=None if local is None else local.value,
        )
        if local is not None and quorum <= 1:
            lookup.cancel()
        return self._start(QueryKind.GET_VALUE, lookup, now)

    def get_providers(self, key: bytes, now: float, *, count: int | None = None) -> tuple[int, list[Action]]:
        """Start a GET_PROVIDERS lookup for multihash `key`; local providers come first."""
        count = count or self.config.k
        known = self.providers.get(key, now, count)
        lookup = GetProvidersLookup(key, self._seeds(key, now), self._params(now), count=count, known=known)
        return self._start(QueryKind.GET_PROVIDERS, lookup, now)

    def put_value(self, key: bytes, value: bytes, now: float) -> tuple[int, list[Action]]:
        """Validate, store locally (unless we hold a better record), then PUT_VALUE to the k closest
        peers, who reply with their better record if they have one. InvalidRecord if invalid."""
        validator = validator_for(self.validators, key)
        validator.validate(key, value, now)
        existing = self._valid_record(key, now)
        if existing is None or existing.value == value or validator.select(key, [value, existing.value]) == 0:
            self.records.put(StoredRecord(key, value, now, now + self.config.record_ttl))
        lookup = PutValueLookup(key, value, self._seeds(key, now), self._params(now))
        return self._start(QueryKind.PUT_VALUE, lookup, now)

    def provide(self, key: bytes, now: float) -> tuple[int, list[Action]]:
        """Announce ourselves as a provider of multihash `key` locally and to the k closest peers."""
        multihash.decode(key)
        self.providers.add(key, self.self_peer, now + self.config.provider_ttl)
        lookup = ProvideLookup(key, self.self_peer, self._seeds(key, now), self._params(now))
        return self._start(QueryKind.PROVIDE, lookup, now)

    def bootstrap(self, now: float, *, refresh_buckets: bool = True) -> list[Action]:
        """Join/refresh: a lookup of our own id, then (if `refresh_buckets`) of a random id in each
        bucket not looked up within `refresh_interval` (every bucket when it is None)."""
        actions: list[Action] = []
        targets = [self.local_peer_id]
        if refresh_buckets:
            interval = self.config.refresh_interval or 0.0
            for cpl in self.table.buckets_due_for_refresh(now, interval):
                targets.append(random_peer_id_in_bucket(self.table.local_key, cpl, self.rng))
        for key in targets:
            lookup = FindNodeLookup(key, self._seeds(key, now), self._params(now))
            actions.extend(self._start(QueryKind.FIND_NODE, lookup, now, user=False)[1])
        return actions

    def cancel(self, query_id: int, now: float) -> list[Action]:
        """Stop a query now; its QueryFinished (with what was found) is returned."""
        q = self._queries.get(query_id)
        if q is None:
            return []
        q.lookup.cancel()
        actions: list[Action] = []
        self._pump(query_id, q, now, actions)
        return actions

    @property
    def running_queries(self) -> int:
        """Queries (user and internal) currently running."""
        return len(self._queries)

    # -- responses -----------------------------------------------------------------------------

    def on_response(
        self, query_id: int, peer_id: bytes, response: bytes | Message, now: float
    ) -> list[Action]:
        """A reply to a `SendRequest` arrived. Never raises on bad input."""
        actions: list[Action] = []
        if isinstance(response, Message):
            msg = response
        else:
            try:
                msg = Message.decode(bytes(response))
            except DecodeError as e:
                actions.append(Penalise(peer_id, f"malformed response: {e}"))
                actions.extend(self.on_request_failed(query_id, peer_id, now))
                return actions
        probe = self._probes.get(peer_id)
        if probe is not None and probe[0] == query_id:
            del self._probes[peer_id]
            if msg.type == MessageType.FIND_NODE:
                self.table.add(probe[1].peer, now, server=True)
            else:
                actions.append(Penalise(peer_id, "wrong reply type to FIND_NODE"))
                self._failed(peer_id, now)
            return actions
        q = self._queries.get(query_id)
        if q is None:
            return actions  # late reply to a finished query
        lookup = q.lookup
        peer = lookup.iter.peer(peer_id)
        if lookup.on_response(peer_id, msg, now):
            if peer is not None:
                self._saw(peer, now, actions)
        else:
            actions.append(Penalise(peer_id, f"unacceptable reply to {q.kind.value}"))
            self._failed(peer_id, now)
        self._pump(query_id, q, now, actions)
        return actions

    def on_request_failed(self, query_id: int, peer_id: bytes, now: float) -> list[Action]:
        """A `SendRequest` failed: dial/stream error, reset, or the driver's own timeout."""
        actions: list[Action] = []
        probe = self._probes.get(peer_id)
        if probe is not None and probe[0] == query_id:
            del self._probes[peer_id]
            self._failed(peer_id, now)
            return actions
        self._failed(peer_id, now)
        q = self._queries.get(query_id)
        if q is not None:
            q.lookup.on_failure(peer_id, now)
            self._pump(query_id, q, now, actions)
        return actions

    def _pump(self, qid: int, q: _Query, now: float, actions: list[Action]) -> None:
        lookup = q.lookup
        it = lookup.iter
        before = it.failures
        out = lookup.step(now)
        if it.failures != before:
            self._record_timeouts(lookup, now)
        deadline = now + self.config.request_timeout
        for o in out:
            actions.append(SendRequest(qid, o.peer, o.message, o.expect_reply, deadline))
        if lookup.finished:
            del self._queries[qid]
            if q.user:
                self._user_queries -= 1
                actions.append(QueryFinished(qid, q.kind, self._result(q), lookup))
            if isinstance(lookup, GetValueLookup):
                for o in lookup.corrections():
                    actions.append(SendRequest(qid, o.peer, o.message, False, deadline))

    def _record_timeouts(self, lookup: Lookup, now: float) -> None:
        # Peers the iterator just timed out are failures for the table too.
        for pid in lookup.iter.drain_timed_out():
            self._failed(pid, now)

    @staticmethod
    def _result(q: _Query) -> QueryResult:
        lk = q.lookup
        if isinstance(lk, GetValueLookup):
            return lk.result()
        if isinstance(lk, PutValueLookup | ProvideLookup):
            return PutResult(tuple(lk.succeeded), tuple(lk.failed))
        if isinstance(lk, GetProvidersLookup | FindNodeLookup):
            return lk.result()
        raise TypeError(f"unknown lookup {type(lk).__name__}")

    # -- timers --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `on_timer` must next run, or None if nothing is scheduled."""
        best = float("inf")
        for t in (self._next_purge, self._next_refresh):
            if t is not None and t < best:
                best = t
        for q in self._queries.values():
            d = q.lookup.next_deadline()
            if d is not None and d < best:
                best = d
        for _, p in self._probes.values():
            if p.deadline < best:
                best = p.deadline
        return None if best == float("inf") else best

    def on_timer(self, now: float) -> list[Action]:
        """Expire overdue requests and probes, run due refreshes and purges."""
        actions: list[Action] = []
        for qid, q in list(self._queries.items()):
            d = q.lookup.next_deadline()
            if d is not None and d <= now:
                self._pump(qid, q, now, actions)
        if self._probes:
            for pid, (_, p) in list(self._probes.items()):
                if p.deadline <= now:
                    del self._probes[pid]
                    self._failed(pid, now)
        if self._next_refresh is not None and self._next_refresh <= now:
            assert self.config.refresh_interval is not None
            self._next_refresh = now + self.config.refresh_interval
            actions.extend(self.bootstrap(now))
        if self._next_purge is not None and self._next_purge <= now:
            assert self.config.purge_interval is not None
            self._next_purge = now + self.config.purge_interval
            self.records.purge_expired(now)
            self.providers.purge_expired(now)
        return actions

    def local_record(self, key: bytes, now: float) -> StoredRecord | None:
        """Our stored record for `key`, if unexpired and still valid."""
        return self._valid_record(key, now)

    def known_peers(self) -> Iterable[Peer]:
        """Every live routing-table entry."""
        return iter(self.table)
