"""Lookup state machines (Kademlia paper §2.3; libp2p kad-dht spec "Peer routing", "Getting values",
"Content routing"; rust-libp2p's ClosestPeersIter is the model for the shape, not the code).

`ClosestPeersIter` is the iterative node lookup. Candidates are kept sorted by XOR distance to the
target (a bounded list; the farthest never-contacted ones fall off). `step(now)`:
1. fails in-flight requests whose per-request deadline passed (a silent peer costs one timeout);
2. walks the candidates closest first, skipping failed ones, over the first k non-failed positions,
   and sends requests to the not-yet-contacted ones while fewer than alpha are in flight;
3. finishes when those first k non-failed candidates have all answered (the spec's "queried and got
   responses from the k closest nodes it has seen"), which also covers "no closer peer" rounds and
   tables with fewer than k peers; or when the whole lookup's deadline passed (partial result).
Every peer learned gets a depth: 0 for seeds from our table, parent's depth + 1 otherwise (used for
hop statistics). Peers never contacted are the only ones dropped when the candidate list is full,
so answered/failed peers are never asked twice.

On top of it, each a `Lookup` with one interface (`step`, `on_response`, `on_failure`, `finished`,
`next_deadline`) returning `Outgoing` requests:
- `FindNodeLookup`: FIND_NODE; result = the k closest peers that answered.
- `GetValueLookup`: GET_VALUE; each returned record must carry the requested key and pass the
  namespace validator (invalid ones count as a failed, misbehaving peer); the best value by
  `Validator.select` wins, peers holding worse values are reported for correction; finishes at
  `quorum` valid answers (a local record counts as one) or when the iteration ends.
- `GetProvidersLookup`: GET_PROVIDERS; providers deduplicated by peer id (py-libp2p returned 20
  copies of one provider, spec/py-libp2p.md §3); finishes at `count` providers or iteration end.
- `PutValueLookup` / `ProvideLookup`: a FIND_NODE iteration, then PUT_VALUE (replies counted) or
  ADD_PROVIDER (fire-and-forget) to the k closest peers found.

A response that is not of the request's type, or carries garbage, is the caller's signal to penalise
the peer: `on_response` returns False and treats it as a failure.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from nabu_py.protocols.kademlia.keys import kad_key
from nabu_py.protocols.kademlia.messages import MAX_PEER_ID_SIZE, Message, MessageType, Peer, Record
from nabu_py.protocols.kademlia.records import Validator

DEFAULT_ALPHA = 3
DEFAULT_K = 20
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_CANDIDATES_FACTOR = 10


class PeerState(IntEnum):
    """State of one candidate in a lookup."""

    NOT_CONTACTED = 0
    WAITING = 1
    SUCCEEDED = 2
    FAILED = 3


_NOT_CONTACTED = PeerState.NOT_CONTACTED
_WAITING = PeerState.WAITING
_SUCCEEDED = PeerState.SUCCEEDED
_FAILED = PeerState.FAILED


class _Candidate:
    __slots__ = ("deadline", "depth", "distance", "peer", "state")

    def __init__(self, peer: Peer, distance: int, depth: int) -> None:
        self.peer = peer
        self.distance = distance
        self.depth = depth
        self.state = _NOT_CONTACTED
        self.deadline = 0.0


class ClosestPeersIter:
    """Iterative closest-peers search towards `target` (a keyspace position). See module docstring."""

    __slots__ = (
        "_by_id",
        "_cands",
        "_dists",
        "_finished",
        "_inflight",
        "_timed_out",
        "alpha",
        "deadline",
        "failures",
        "k",
        "local_peer_id",
        "max_candidates",
        "request_timeout",
        "requests",
        "successes",
        "target",
        "timeouts",
    )

    def __init__(
        self,
        target: int,
        seeds: Iterable[Peer],
        *,
        local_peer_id: bytes,
        k: int = DEFAULT_K,
        alpha: int = DEFAULT_ALPHA,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        deadline: float = float("inf"),
        max_candidates: int | None = None,
    ) -> None:
        if k < 1 or alpha < 1:
            raise ValueError("k and alpha must be >= 1")
        self.target = target
        self.local_peer_id = local_peer_id
        self.k = k
        self.alpha = alpha
        self.request_timeout = request_timeout
        self.deadline = deadline
        self.max_candidates = max(max_candidates or DEFAULT_MAX_CANDIDATES_FACTOR * k, k)
        self._dists: list[int] = []
        self._cands: list[_Candidate] = []
        self._by_id: dict[bytes, _Candidate] = {}
        self._inflight: dict[bytes, _Candidate] = {}
        self._timed_out: list[bytes] = []
        self._finished = False
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.timeouts = 0
        for p in seeds:
            self._insert(p, 0)

    # -- inputs --------------------------------------------------------------------------------

    def _insert(self, peer: Peer, depth: int) -> None:
        pid = peer.id
        if not pid or len(pid) > MAX_PEER_ID_SIZE or pid == self.local_peer_id:
            return
        c = self._by_id.get(pid)
        if c is not None:
            if depth < c.depth:
                c.depth = depth
            return
        d = kad_key(pid) ^ self.target
        dists = self._dists
        full = len(dists) >= self.max_candidates
        if full and d > dists[-1]:
            return
        c = _Candidate(peer, d, depth)
        i = bisect_left(dists, d)
        dists.insert(i, d)
        self._cands.insert(i, c)
        self._by_id[pid] = c
        if full:
            self._evict_one()

    def _evict_one(self) -> None:
        cands = self._cands
        for i in range(len(cands) - 1, -1, -1):
            if cands[i].state is _NOT_CONTACTED:
                del self._by_id[cands[i].peer.id]
                del cands[i]
                del self._dists[i]
                return

    def on_success(self, peer_id: bytes, closer_peers: Sequence[Peer], now: float) -> None:
        """`peer_id` answered; learn up to k of the peers it names. Late answers (after a timeout) count."""
        c = self._by_id.get(peer_id)
        if c is None or self._finished:
            return
        st = c.state
        if st is _WAITING:
            del self._inflight[peer_id]
        elif st is not _FAILED:
            return  # never asked, or already answered
        c.state = _SUCCEEDED
        self.successes += 1
        depth = c.depth + 1
        for p in closer_peers[: self.k]:
            self._insert(p, depth)

    def on_failure(self, peer_id: bytes, now: float) -> None:
        """The request to `peer_id` failed (error, garbage, or the driver's own timeout)."""
        c = self._by_id.get(peer_id)
        if c is None or c.state is not _WAITING:
            return
        del self._inflight[peer_id]
        c.state = _FAILED
        self.failures += 1

    # -- progress ------------------------------------------------------------------------------

    def step(self, now: float) -> list[Peer]:
        """Advance: expire overdue requests and return the peers to send a request to now."""
        if self._finished:
            return []
        if now >= self.deadline:
            self.finish()
            return []
        inflight = self._inflight
        if inflight:
            for pid in [p for p, c in inflight.items() if c.deadline <= now]:
                inflight.pop(pid).state = _FAILED
                self.failures += 1
                self.timeouts += 1
                self._timed_out.append(pid)
        out: list[Peer] = []
        pos = 0
        done = True
        k = self.k
        alpha = self.alpha
        for c in self._cands:
            st = c.state
            if st is _FAILED:
                continue
            if st is not _SUCCEEDED:
                done = False
                if st is _NOT_CONTACTED:
                    if len(inflight) >= alpha:
                        break
                    c.state = _WAITING
                    c.deadline = now + self.request_timeout
                    inflight[c.peer.id] = c
                    out.append(c.peer)
            pos += 1
            if pos >= k:
                break
        self.requests += len(out)
        if done:
            self.finish()
        return out

    def drain_timed_out(self) -> list[bytes]:
        """Peers whose requests `step` timed out since the last call (for the routing table)."""
        out = self._timed_out
        self._timed_out = []
        return out

    def finish(self) -> None:
        """Stop the iteration (in-flight requests are abandoned; late answers are ignored)."""
        self._finished = True
        self._inflight.clear()

    @property
    def finished(self) -> bool:
        """True once the iteration has ended."""
        return self._finished

    def next_deadline(self) -> float | None:
        """The earliest time `step` has work to do without new input, if any."""
        if self._finished:
            return None
        earliest = self.deadline
        for c in self._inflight.values():
            if c.deadline < earliest:
                earliest = c.deadline
        return None if earliest == float("inf") else earliest

    # -- results -------------------------------------------------------------------------------

    def result(self) -> list[Peer]:
        """The (up to) k closest peers that answered, closest first."""
        out: list[Peer] = []
        for c in self._cands:
            if c.state is _SUCCEEDED:
                out.append(c.peer)
                if len(out) >= self.k:
                    break
        return out

    def depth(self, peer_id: bytes) -> int | None:
        """Hop depth at which `peer_id` was learned (0 = seed from our table), if it was."""
        c = self._by_id.get(peer_id)
        return None if c is None else c.depth

    def peer(self, peer_id: bytes) -> Peer | None:
        """The `Peer` (with the addresses it was learned with) of candidate `peer_id`."""
        c = self._by_id.get(peer_id)
        return None if c is None else c.peer

    def state(self, peer_id: bytes) -> PeerState | None:
        """State of `peer_id` in this lookup, if it is a candidate."""
        c = self._by_id.get(peer_id)
        return None if c is None else c.state

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered, failed or timed out."""
        return len(self._inflight)

    def __len__(self) -> int:
        return len(self._cands)


@dataclass(frozen=True, slots=True)
class LookupParams:
    """Parameters shared by every lookup of one node."""

    local_peer_id: bytes
    k: int = DEFAULT_K
    alpha: int = DEFAULT_ALPHA
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    deadline: float = float("inf")
    """Absolute time at which the whole lookup stops with what it has."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request a lookup wants sent: `message` to `peer`; `expect_reply` False = fire-and-forget."""

    peer: Peer
    message: Message
    expect_reply: bool = True


class Lookup:
    """Common interface of the lookups below; `iter` is the underlying `ClosestPeersIter`."""

    request: Message
    iter: ClosestPeersIter

    def __init__(self, key: bytes, seeds: Iterable[Peer], params: LookupParams) -> None:
        self.key = key
        self.iter = ClosestPeersIter(
            kad_key(key),
            seeds,
            local_peer_id=params.local_peer_id,
            k=params.k,
            alpha=params.alpha,
            request_timeout=params.request_timeout,
            deadline=params.deadline,
        )

    def step(self, now: float) -> list[Outgoing]:
        """Advance and return the requests to send now."""
        msg = self.request
        return [Outgoing(p, msg) for p in self.iter.step(now)]

    def on_response(self, peer_id: bytes, message: Message, now: float) -> bool:
        """Feed a decoded reply; False when it was unacceptable (penalise the peer)."""
        if message.type != self.request.type:
            self.iter.on_failure(peer_id, now)
            return False
        self.iter.on_success(peer_id, message.closer_peers, now)
        return True

    def on_failure(self, peer_id: bytes, now: float) -> None:
        """The request to `peer_id` failed or timed out in the driver."""
        self.iter.on_failure(peer_id, now)

    @property
    def finished(self) -> bool:
        """True once the lookup has a final result."""
        return self.iter.finished

    def next_deadline(self) -> float | None:
        """The earliest time `step` must be called again without new input."""
        return self.iter.next_deadline()

    def cancel(self) -> None:
        """Stop now with what has been found so far."""
        self.iter.finish()


class FindNodeLookup(Lookup):
    """FIND_NODE lookup: the k closest peers to `key` (a peer id or any routing key)."""

    def __init__(self, key: bytes, seeds: Iterable[Peer], params: LookupParams) -> None:
        super().__init__(key, seeds, params)
        self.request = Message(MessageType.FIND_NODE, key=key)

    def result(self) -> list[Peer]:
        """The k closest peers that answered, closest first."""
        return self.iter.result()


@dataclass(frozen=True, slots=True)
class ValueResult:
    """Outcome of a GET_VALUE lookup. `value` is None when no valid record was found."""

    key: bytes
    value: bytes | None
    answers: int
    best_peers: tuple[bytes, ...]
    outdated_peers: tuple[Peer, ...]
    closest: tuple[Peer, ...]


class GetValueLookup(Lookup):
    """GET_VALUE lookup with validation and quorum (spec "Getting values")."""

    def __init__(
        self,
        key: bytes,
        seeds: Iterable[Peer],
        params: LookupParams,
        *,
        validator: Validator,
        quorum: int = 1,
        local_value: bytes | None = None,
    ) -> None:
        if quorum < 1:
            raise ValueError("quorum must be >= 1")
        super().__init__(key, seeds, params)
        self.request = Message(MessageType.GET_VALUE, key=key)
        self.validator = validator
        self.quorum = quorum
        self.best: bytes | None = local_value
        self.answers = 0 if local_value is None else 1
        self._best_peers: list[bytes] = []
        self._outdated: dict[bytes, Peer] = {}
        self._peers: dict[bytes, Peer] = {}

    def on_response(self, peer_id: bytes, message: Message, now: float) -> bool:
        """See `Lookup.on_response`; an invalid record makes the whole reply unacceptable."""
        if message.type != MessageType.GET_VALUE:
            self.iter.on_failure(peer_id, now)
            return False
        if self.iter.state(peer_id) not in (_WAITING, _FAILED):
            return True  # unsolicited or repeated: ignore
        rec = message.record
        if rec is not None:
            if rec.key != self.key:
                self.iter.on_failure(peer_id, now)
                return False
            try:
                self.validator.validate(self.key, rec.value, now)
            except ValueError:  # InvalidRecord, DecodeError from a parsing validator
                self.iter.on_failure(peer_id, now)
                return False
            self._take_value(peer_id, rec.value)
        self.iter.on_success(peer_id, message.closer_peers, now)
        if self.answers >= self.quorum:
            self.iter.finish()
        return True

    def _take_value(self, peer_id: bytes, value: bytes) -> None:
        peer = self.iter.peer(peer_id)
        if peer is None:
            return
        self.answers += 1
        if self.best is None:
            self.best = value
            self._best_peers.append(peer_id)
            self._peers[peer_id] = peer
            return
        if value == self.best:
            self._best_peers.append(peer_id)
            self._peers[peer_id] = peer
            return
        if self.validator.select(self.key, [self.best, value]) == 1:
            for old in self._best_peers:
                op = self._peers.get(old)
                if op is not None:
                    self._outdated[old] = op
            self._best_peers = [peer_id]
            self._peers[peer_id] = peer
            self.best = value
        else:
            self._outdated[peer_id] = peer

    def result(self) -> ValueResult:
        """The best valid value found, who holds it, and who holds a worse one."""
        return ValueResult(
            self.key,
            self.best,
            self.answers,
            tuple(self._best_peers),
            tuple(self._outdated.values()),
            tuple(self.iter.result()),
        )

    def corrections(self) -> list[Outgoing]:
        """PUT_VALUE of the best value to every peer that returned a worse one (spec "Entry correction")."""
        if self.best is None or not self._outdated:
            return []
        msg = Message(MessageType.PUT_VALUE, key=self.key, record=Record(self.key, self.best))
        return [Outgoing(p, msg, expect_reply=False) for p in self._outdated.values()]


class GetProvidersLookup(Lookup):
    """GET_PROVIDERS lookup collecting up to `count` distinct providers of a multihash."""

    def __init__(
        self,
        key: bytes,
        seeds: Iterable[Peer],
        params: LookupParams,
        *,
        count: int = DEFAULT_K,
        known: Iterable[Peer] = (),
    ) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        super().__init__(key, seeds, params)
        self.request = Message(MessageType.GET_PROVIDERS, key=key)
        self.count = count
        self._providers: dict[bytes, Peer] = {}
        for p in known:
            self._add(p)
        if len(self._providers) >= count:
            self.iter.finish()

    def _add(self, p: Peer) -> None:
        if not p.id or len(p.id) > MAX_PEER_ID_SIZE or len(self._providers) >= self.count:
            return
        have = self._providers.get(p.id)
        if have is None or (not have.addrs and p.addrs):
            self._providers[p.id] = p

    def on_response(self, peer_id: bytes, message: Message, now: float) -> bool:
        """See `Lookup.on_response`."""
        if message.type != MessageType.GET_PROVIDERS:
            self.iter.on_failure(peer_id, now)
            return False
        if self.iter.state(peer_id) not in (_WAITING, _FAILED):
            return True  # unsolicited: ignore its providers too
        for p in message.provider_peers:
            self._add(p)
        self.iter.on_success(peer_id, message.closer_peers, now)
        if len(self._providers) >= self.count:
            self.iter.finish()
        return True

    def result(self) -> list[Peer]:
        """Distinct providers found, in the order they were learned."""
        return list(self._providers.values())


class _PhasedLookup(Lookup):
    """A FIND_NODE iteration followed by one request to each of the k closest peers found."""

    def __init__(self, key: bytes, seeds: Iterable[Peer], params: LookupParams) -> None:
        super().__init__(key, seeds, params)
        self.request = Message(MessageType.FIND_NODE, key=key)
        self._second: Message | None = None
        self._expect_reply = True
        self._started = False
        self._pending: dict[bytes, float] = {}
        self.targets: list[Peer] = []
        self.succeeded: list[bytes] = []
        self.failed: list[bytes] = []

    def step(self, now: float) -> list[Outgoing]:
        """See `Lookup.step`."""
        if not self.iter.finished:
            out = super().step(now)
            if not self.iter.finished:
                return out
        if self._started:
            for pid in [p for p, dl in self._pending.items() if dl <= now]:
                del self._pending[pid]
                self.failed.append(pid)
            return []
        self._started = True
        self.targets = self.iter.result()
        assert self._second is not None
        if self._expect_reply:
            deadline = now + self.iter.request_timeout
            self._pending = {p.id: deadline for p in self.targets}
        else:
            self.succeeded = [p.id for p in self.targets]
        return [Outgoing(p, self._second, self._expect_reply) for p in self.targets]

    def on_response(self, peer_id: bytes, message: Message, now: float) -> bool:
        """See `Lookup.on_response` (for either phase)."""
        if not self._started:
            return super().on_response(peer_id, message, now)
        if self._pending.pop(peer_id, None) is None:
            return True
        if self._second is None or message.type != self._second.type:
            self.failed.append(peer_id)
            return False
        if self._accept(message):
            self.succeeded.append(peer_id)
        else:
            self.failed.append(peer_id)  # a well-formed refusal: not misbehaviour
        return True

    def _accept(self, message: Message) -> bool:
        return True

    def on_failure(self, peer_id: bytes, now: float) -> None:
        """See `Lookup.on_failure` (for either phase)."""
        if not self._started:
            self.iter.on_failure(peer_id, now)
        elif self._pending.pop(peer_id, None) is not None:
            self.failed.append(peer_id)

    @property
    def finished(self) -> bool:
        """True when both phases are over."""
        return self._started and not self._pending

    def next_deadline(self) -> float | None:
        """See `Lookup.next_deadline`."""
        if not self._started:
            return self.iter.next_deadline()
        return min(self._pending.values(), default=None)

    def cancel(self) -> None:
        """Stop now; requests of the second phase not yet answered count as failed."""
        self.iter.finish()
        self._started = True
        self.failed.extend(self._pending)
        self._pending.clear()


class PutValueLookup(_PhasedLookup):
    """Find the k closest peers to `key`, then PUT_VALUE the record to each (spec "Putting values").

    A PUT succeeds when the reply carries the same record (the engine's consistent reply); a reply with
    a different value means the peer holds a better record and refused ours.
    """

    def __init__(self, key: bytes, value: bytes, seeds: Iterable[Peer], params: LookupParams) -> None:
        super().__init__(key, seeds, params)
        self.value = value
        self._second = Message(MessageType.PUT_VALUE, key=key, record=Record(key, value))

    def _accept(self, message: Message) -> bool:
        rec = message.record
        return rec is not None and rec.key == self.key and rec.value == self.value


class ProvideLookup(_PhasedLookup):
    """Find the k closest peers to multihash `key`, then ADD_PROVIDER ourselves to each (fire-and-forget).

    The lookup target is sha256(multihash), the same key the ADD_PROVIDER carries (Nabu used the CID
    bytes for the lookup: spec/nabu.md §10.2).
    """

    def __init__(self, key: bytes, provider: Peer, seeds: Iterable[Peer], params: LookupParams) -> None:
        super().__init__(key, seeds, params)
        self._second = Message(MessageType.ADD_PROVIDER, key=key, provider_peers=(provider,))
        self._expect_reply = False
