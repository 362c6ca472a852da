"""DHT record and provider stores, and record validation (libp2p kad-dht spec "Value routing",
"Entry validation", "Content routing"; spec/nabu.md §3.3, §3.5, §7).

Values: every key is namespaced, `/<namespace>/<rest>`; a `Validator` per namespace decides whether a
value is valid for its key (`validate`) and which of several values is best (`select`). The engine
accepts PUT_VALUE only for namespaces it has a validator for (IPNS's `/ipns/` validator needs Ed25519
and is plugged in by the service). A stored record lives for `ttl` seconds after it was received
(go-libp2p-kad-dht's MaxRecordAge is 36 h) and is invisible once expired, whether or not a purge ran.

Providers: multihash -> provider peers, each with its own expiry (the spec says 24 h by default);
Nabu's store never expires (§10.19), ours does. Re-adding a provider refreshes it.

Everything is bounded: `max_records` records, `max_keys` provider keys, `max_providers_per_key`
providers per key. Full stores evict the least-recently-used key (Peergos keeps a 1000-entry LRU of
IPNS records); a full key drops the provider expiring soonest.

Stores are `typing.Protocol`s with in-memory implementations here and SQLite ones in
`sqlite_stores.py`; tests/unit/nabu_py/kademlia/test_store_conformance.py runs one suite over all.
Times are seconds on the clock the engine runs on (`now` is always a parameter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from nabu_py.protocols.kademlia.errors import InvalidRecord
from nabu_py.protocols.kademlia.messages import Peer

DEFAULT_RECORD_TTL = 36 * 3600.0
DEFAULT_PROVIDER_TTL = 24 * 3600.0
DEFAULT_MAX_RECORDS = 10_000
DEFAULT_MAX_PROVIDER_KEYS = 100_000
DEFAULT_MAX_PROVIDERS_PER_KEY = 64
MAX_RECORD_VALUE_SIZE = 64 * 1024
"""Largest value accepted by PUT_VALUE (IPNS records are <= 10 KiB in Nabu)."""


@runtime_checkable
class Validator(Protocol):
    """Validation of one key namespace (`/ipns/`, `/pk/`, ...)."""

    def validate(self, key: bytes, value: bytes, now: float) -> None:
        """Raise `InvalidRecord` unless `value` is a valid record for `key` at time `now`.

        Values come from remote peers: a validator may also raise `DecodeError` (or any
        `ValueError`) while parsing them; anything else is treated as a bug and propagates."""

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """Index of the best of several valid `values` for `key` (stable: ties go to the first)."""


def namespace_of(key: bytes) -> bytes | None:
    """`b"ipns"` for `b"/ipns/..."`; None when the key has no `/<namespace>/` prefix."""
    if len(key) < 3 or key[0] != 0x2F:
        return None
    end = key.find(b"/", 1)
    if end <= 1:
        return None
    return key[1:end]


def validator_for(validators: dict[bytes, Validator], key: bytes) -> Validator:
    """The validator of `key`'s namespace; InvalidRecord when there is none."""
    ns = namespace_of(key)
    v = None if ns is None else validators.get(ns)
    if v is None:
        raise InvalidRecord(f"no validator for the namespace of key {key[:40]!r}")
    return v


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A value record as kept by a `RecordStore`."""

    key: bytes
    value: bytes
    received_at: float
    expires_at: float


class RecordStore(Protocol):
    """Bounded store of value records, one per key."""

    def get(self, key: bytes, now: float) -> StoredRecord | None:
        """The record for `key` unless absent or expired at `now`."""

    def put(self, record: StoredRecord) -> None:
        """Store `record`, replacing any record for its key (the engine has already compared them)."""

    def remove(self, key: bytes) -> None:
        """Forget the record for `key` if any."""

    def purge_expired(self, now: float) -> int:
        """Drop every record expired at `now`; return how many were dropped."""

    def __len__(self) -> int:
        """Number of records held (expired ones included until purged)."""


class ProviderStore(Protocol):
    """Bounded store of provider records: key (a multihash) -> provider peers."""

    def add(self, key: bytes, provider: Peer, expires_at: float) -> None:
        """Add or refresh `provider` for `key` until `expires_at`."""

    def get(self, key: bytes, now: float, limit: int) -> list[Peer]:
        """Up to `limit` unexpired providers of `key`, most recently added first."""

    def purge_expired(self, now: float) -> int:
        """Drop every provider record expired at `now`; return how many were dropped."""

    def __len__(self) -> int:
        """Number of (key, provider) records held (expired ones included until purged)."""


class MemoryRecordStore:
    """In-memory `RecordStore`: a dict in least-recently-used order, at most `max_records` entries."""

    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        self.max_records = max_records
        self._records: dict[bytes, StoredRecord] = {}

    def get(self, key: bytes, now: float) -> StoredRecord | None:
        """See `RecordStore.get`."""
        r = self._records.get(key)
        if r is None or r.expires_at <= now:
            return None
        del self._records[key]
        self._records[key] = r  # most recently used last
        return r

    def put(self, record: StoredRecord) -> None:
        """See `RecordStore.put`."""
        self._records.pop(record.key, None)
        self._records[record.key] = record
        while len(self._records) > self.max_records:
            del self._records[next(iter(self._records))]

    def remove(self, key: bytes) -> None:
        """See `RecordStore.remove`."""
        self._records.pop(key, None)

    def purge_expired(self, now: float) -> int:
        """See `RecordStore.purge_expired`."""
        dead = [k for k, r in self._records.items() if r.expires_at <= now]
        for k in dead:
            del self._records[k]
        return len(dead)

    def __len__(self) -> int:
        return len(self._records)


class MemoryProviderStore:
    """In-memory `ProviderStore`: keys in least-recently-used order, providers per key by insertion."""

    def __init__(
        self,
        max_keys: int = DEFAULT_MAX_PROVIDER_KEYS,
        max_providers_per_key: int = DEFAULT_MAX_PROVIDERS_PER_KEY,
    ) -> None:
        if max_keys < 1 or max_providers_per_key < 1:
            raise ValueError("max_keys and max_providers_per_key must be >= 1")
        self.max_keys = max_keys
        self.max_providers_per_key = max_providers_per_key
        self._keys: dict[bytes, dict[bytes, tuple[Peer, float]]] = {}
        self._count = 0

    def add(self, key: bytes, provider: Peer, expires_at: float) -> None:
        """See `ProviderStore.add`."""
        provs = self._keys.pop(key, None)
        if provs is None:
            provs = {}
        self._keys[key] = provs
        if provs.pop(provider.id, None) is not None:
            self._count -= 1
        elif len(provs) >= self.max_providers_per_key:
            soonest = min(provs, key=lambda pid: provs[pid][1])
            del provs[soonest]
            self._count -= 1
        provs[provider.id] = (provider, expires_at)
        self._count += 1
        while len(self._keys) > self.max_keys:
            oldest = next(iter(self._keys))
            self._count -= len(self._keys.pop(oldest))

    def get(self, key: bytes, now: float, limit: int) -> list[Peer]:
        """See `ProviderStore.get`."""
        provs = self._keys.pop(key, None)
        if provs is None:
            return []
        self._keys[key] = provs
        out: list[Peer] = []
        for peer, exp in reversed(provs.values()):
            if exp > now:
                out.append(peer)
                if len(out) >= limit:
                    break
        return out

    def purge_expired(self, now: float) -> int:
        """See `ProviderStore.purge_expired`."""
        dropped = 0
        for key in list(self._keys):
            provs = self._keys[key]
            dead = [pid for pid, (_, exp) in provs.items() if exp <= now]
            for pid in dead:
                del provs[pid]
            dropped += len(dead)
            if not provs:
                del self._keys[key]
        self._count -= dropped
        return dropped

    def __len__(self) -> int:
        return self._count
