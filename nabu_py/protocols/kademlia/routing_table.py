"""k-bucket routing table (Kademlia paper §2.2 and §4.1; libp2p kad-dht spec "Kademlia routing table").

Buckets are indexed by the common prefix length (cpl) of a peer's key with ours, 0..255; bucket i holds
at most `k` (20) live peers at distances [2**(255-i), 2**(256-i)). That is the fully unfolded form
of the spec's lazily split table; buckets are created on first use, so memory follows the peers
actually known. Within a bucket, live entries are kept least-recently-seen first.

Policy, all driven by the `now` the caller passes:
- `add(peer, now, server=True)` is called when a peer proved it is a DHT server (it answered one of
  our requests, or it sent us a request and identify says it serves `/ipfs/kad/1.0.0`). A known peer
  moves to the tail. A new peer enters a bucket with room. In a full bucket it goes to the bucket's
  replacement cache (bounded, most recent kept) and, if the least-recently-seen entry has not been
  heard from for `liveness_interval`, `add` also returns that entry as a peer to probe: the driver
  checks it and reports back with `add` (alive) or `record_failure` (dead). This is the paper's
  ping-the-LRU-then-evict rule, without pinging peers that were heard from recently (§4.1).
- `record_failure` counts an unanswered request. The entry is evicted at once when its bucket has a
  replacement waiting (the most recently seen one is promoted), otherwise after `max_failures`
  consecutive failures; keeping a lone stale contact is the paper's defence against flushing the
  table during a local outage.
- Never in the table: ourselves, and client-mode peers (`server=False` removes a peer that switched
  to client mode). py-libp2p inserts client peers (spec/py-libp2p.md §3); Nabu's base id is not the
  sha256 of its peer id (spec/nabu.md §10.1); both are avoided here.

`closest(target, n)` visits buckets in XOR order instead of sorting the whole table: with
c = cpl(target, local), bucket c holds the closest peers, then all buckets deeper than c (distance
has its top bit at position c), then buckets c-1, c-2, ..., 0; only the groups needed are sorted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from nabu_py.protocols.kademlia.keys import KEY_BITS, MAX_REFRESH_CPL, kad_key
from nabu_py.protocols.kademlia.messages import Peer

DEFAULT_K = 20
DEFAULT_REPLACEMENT_CACHE = 10
DEFAULT_LIVENESS_INTERVAL = 600.0
DEFAULT_PROBE_TIMEOUT = 10.0
DEFAULT_MAX_FAILURES = 3


class AddStatus(IntEnum):
    """Outcome of `RoutingTable.add`."""

    ADDED = 0
    """The peer is new and now live in its bucket."""
    UPDATED = 1
    """The peer was live; it is now the most recently seen of its bucket."""
    CACHED = 2
    """The bucket is full; the peer waits in the bucket's replacement cache."""
    REJECTED = 3
    """Ourselves or a client-mode peer: never stored."""


@dataclass(frozen=True, slots=True)
class AddResult:
    """`status`, plus `probe`: a least-recently-seen entry to check for liveness, if one is due."""

    status: AddStatus
    probe: Peer | None = None


class _Entry:
    __slots__ = ("failures", "key", "last_seen", "peer", "probe_deadline")

    def __init__(self, peer: Peer, key: int, last_seen: float) -> None:
        self.peer = peer
        self.key = key
        self.last_seen = last_seen
        self.failures = 0
        self.probe_deadline: float | None = None


class _Bucket:
    # Both dicts are keyed by the peer's keyspace position (an int, unique per peer id) so that
    # `closest` can sort them with the C-level `target.__xor__`; both are in least-recent-first order.
    __slots__ = ("cache", "live")

    def __init__(self) -> None:
        self.live: dict[int, _Entry] = {}
        self.cache: dict[int, tuple[Peer, float]] = {}


_ADDED = AddResult(AddStatus.ADDED)
_UPDATED = AddResult(AddStatus.UPDATED)
_CACHED = AddResult(AddStatus.CACHED)
_REJECTED = AddResult(AddStatus.REJECTED)


class RoutingTable:
    """Kademlia k-bucket table around `local_peer_id`. See the module docstring for the policy."""

    __slots__ = (
        "_buckets",
        "_count",
        "_deepest",
        "_refreshed",
        "k",
        "liveness_interval",
        "local_key",
        "local_peer_id",
        "max_failures",
        "probe_timeout",
        "replacement_cache_size",
    )

    def __init__(
        self,
        local_peer_id: bytes,
        *,
        k: int = DEFAULT_K,
        replacement_cache_size: int = DEFAULT_REPLACEMENT_CACHE,
        liveness_interval: float = DEFAULT_LIVENESS_INTERVAL,
        probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
        max_failures: int = DEFAULT_MAX_FAILURES,
    ) -> None:
        if k < 1 or replacement_cache_size < 0 or max_failures < 1:
            raise ValueError("k and max_failures must be >= 1, replacement_cache_size >= 0")
        self.local_peer_id = local_peer_id
        self.local_key = kad_key(local_peer_id)
        self.k = k
        self.replacement_cache_size = replacement_cache_size
        self.liveness_interval = liveness_interval
        self.probe_timeout = probe_timeout
        self.max_failures = max_failures
        self._buckets: list[_Bucket | None] = [None] * KEY_BITS
        self._count = 0
        self._deepest = -1
        self._refreshed: list[float] = [float("-inf")] * (MAX_REFRESH_CPL + 1)

    # -- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __contains__(self, peer_id: object) -> bool:
        if not isinstance(peer_id, bytes):
            return False
        return self._entry(peer_id) is not None

    def __iter__(self) -> Iterator[Peer]:
        for b in self._buckets:
            if b is not None:
                for e in b.live.values():
                    yield e.peer

    def _entry(self, peer_id: bytes) -> _Entry | None:
        key = kad_key(peer_id)
        cpl = KEY_BITS - (key ^ self.local_key).bit_length()
        b = self._buckets[cpl] if cpl < KEY_BITS else None
        return None if b is None else b.live.get(key)

    def get(self, peer_id: bytes) -> Peer | None:
        """The live entry for `peer_id`, if any."""
        e = self._entry(peer_id)
        return None if e is None else e.peer

    def last_seen(self, peer_id: bytes) -> float | None:
        """When `peer_id` was last confirmed alive, if it is live in the table."""
        e = self._entry(peer_id)
        return None if e is None else e.last_seen

    def bucket_index(self, peer_id: bytes) -> int:
        """The bucket (common prefix length with us) that `peer_id` belongs to; 256 for ourselves."""
        return KEY_BITS - (kad_key(peer_id) ^ self.local_key).bit_length()

    def bucket(self, index: int) -> tuple[list[Peer], list[Peer]]:
        """(live peers least-recently-seen first, replacement cache oldest first) of one bucket."""
        b = self._buckets[index]
        if b is None:
            return [], []
        return [e.peer for e in b.live.values()], [c[0] for c in b.cache.values()]

    def closest(self, target: int, count: int, exclude: bytes | None = None) -> list[Peer]:
        """Up to `count` live peers closest to key `target` by XOR distance, closest first."""
        if count <= 0 or self._count == 0:
            return []
        buckets = self._buckets
        xk = -1 if exclude is None else kad_key(exclude)
        c = KEY_BITS - (target ^ self.local_key).bit_length()
        out: list[Peer] = []
        if c < KEY_BITS:
            b = buckets[c]
            if b is not None and b.live:
                self._extend_sorted(out, b.live, target, xk, count)
                if len(out) >= count:
                    return out
            deeper: dict[int, _Entry] = {}
            for j in range(c + 1, self._deepest + 1):
                bj = buckets[j]
                if bj is not None:
                    deeper.update(bj.live)
            if deeper:
                self._extend_sorted(out, deeper, target, xk, count)
                if len(out) >= count:
                    return out
            start = c - 1
        else:
            start = self._deepest
        for j in range(min(start, self._deepest), -1, -1):
            bj = buckets[j]
            if bj is not None and bj.live:
                self._extend_sorted(out, bj.live, target, xk, count)
                if len(out) >= count:
                    return out
        return out

    @staticmethod
    def _extend_sorted(out: list[Peer], group: dict[int, _Entry], target: int, xk: int, count: int) -> None:
        need = count - len(out)
        for key in sorted(group, key=target.__xor__)[: need + 1]:
            if key != xk and len(out) < count:
                out.append(group[key].peer)

    # -- updates -------------------------------------------------------------------------------

    def add(self, peer: Peer, now: float, *, server: bool = True) -> AddResult:
        """Record that `peer` was seen alive at `now` (see the module docstring for the rules)."""
        pid = peer.id
        if pid == self.local_peer_id or not pid:
            return _REJECTED
        key = kad_key(pid)
        cpl = KEY_BITS - (key ^ self.local_key).bit_length()
        b = self._buckets[cpl]
        if not server:
            if b is not None:
                self._drop(b, key)
            return _REJECTED
        if b is None:
            b = self._buckets[cpl] = _Bucket()
            if cpl > self._deepest:
                self._deepest = cpl
        live = b.live
        e = live.pop(key, None)
        if e is not None:
            e.last_seen = now
            e.failures = 0
            e.probe_deadline = None
            if peer.addrs and peer.addrs != e.peer.addrs:
                e.peer = peer
            live[key] = e
            return _UPDATED
        if len(live) < self.k:
            live[key] = _Entry(peer, key, now)
            if b.cache:
                b.cache.pop(key, None)
            self._count += 1
            return _ADDED
        if self.replacement_cache_size:
            cache = b.cache
            cache.pop(key, None)
            cache[key] = (peer, now)
            if len(cache) > self.replacement_cache_size:
                del cache[next(iter(cache))]
        oldest = next(iter(live.values()))
        if now - oldest.last_seen >= self.liveness_interval and (
            oldest.probe_deadline is None or oldest.probe_deadline <= now
        ):
            oldest.probe_deadline = now + self.probe_timeout
            return AddResult(AddStatus.CACHED, oldest.peer)
        return _CACHED

    def record_failure(self, peer_id: bytes, now: float) -> bool:
        """Count a request `peer_id` did not answer; return True if it was evicted from the live set."""
        key = kad_key(peer_id)
        b = self._bucket_of(key)
        if b is None:
            return False
        e = b.live.get(key)
        if e is None:
            b.cache.pop(key, None)
            return False
        e.failures += 1
        e.probe_deadline = None
        if not b.cache and e.failures < self.max_failures:
            return False
        del b.live[key]
        self._count -= 1
        if b.cache:
            ckey, (peer, seen) = b.cache.popitem()
            promoted = _Entry(peer, ckey, seen)
            entries = [*b.live.values(), promoted]
            entries.sort(key=lambda x: x.last_seen)  # stable: keeps order among equal times
            b.live = {x.key: x for x in entries}
            self._count += 1
        return True

    def remove(self, peer_id: bytes) -> bool:
        """Forget `peer_id` entirely (live set and replacement cache); True if it was live."""
        key = kad_key(peer_id)
        b = self._bucket_of(key)
        return b is not None and self._drop(b, key)

    def _drop(self, b: _Bucket, key: int) -> bool:
        b.cache.pop(key, None)
        if b.live.pop(key, None) is not None:
            self._count -= 1
            return True
        return False

    def _bucket_of(self, key: int) -> _Bucket | None:
        cpl = KEY_BITS - (key ^ self.local_key).bit_length()
        return self._buckets[cpl] if cpl < KEY_BITS else None

    # -- refresh bookkeeping -------------------------------------------------------------------

    def mark_refreshed(self, target: int, now: float) -> None:
        """Note that a lookup for key `target` ran at `now` (it refreshes target's bucket)."""
        cpl = KEY_BITS - (target ^ self.local_key).bit_length()
        if cpl <= MAX_REFRESH_CPL:
            self._refreshed[cpl] = now

    def buckets_due_for_refresh(self, now: float, interval: float) -> list[int]:
        """Bucket indexes (cpl <= 15, up to the deepest non-empty bucket) not looked up in `interval`."""
        deepest = min(MAX_REFRESH_CPL, max(self._deepest, 0))
        return [c for c in range(deepest + 1) if now - self._refreshed[c] >= interval]
