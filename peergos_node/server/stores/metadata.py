"""Block metadata (spec/peergos.md §8 "Block metadata DB", nabu.md §5.5): per block its size, the CIDs it
links to (dag-cbor tag-42 links) and the BAT ids it carries, so that authorisation, GC marking and usage
accounting never need to read or parse the block itself.

Every block read checks its BAT ids, so `CachingBlockMetadataStore` keeps recently used metadata in
memory (bounded, LRU) in front of any store, and `get_many` fetches a request's worth in one query.
A lookup in SQLite is cheap in CPU (~10 µs for the query, ~8 µs to decode the row) but not in time
under load: the sqlite3 module gives up the GIL around every `sqlite3_step`, and each time the thread
waits for it to come back while other connection threads run Python, holding `Database`'s lock with the
other queries queued behind it. Measured in the daemon while a client listed a 10,000-file folder (one
lookup per file, 20 per `champ/get/bulk`): ~45 µs with the lock (~22 µs of CPU) plus ~150-200 µs
waiting for it. A pool of read-only connections (no lock for reads) took that wait to ~25-50 µs, but
the listing got neither faster nor cheaper in server CPU (the GIL hand-offs remain), so the fix is fewer
queries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nabu_py.codec import dag_cbor
from peergos_node.server.db import Database


@dataclass(frozen=True)
class BlockMetadata:
    """Size, outgoing links and BAT ids of one block (all CIDs as bytes)."""

    size: int
    links: tuple[bytes, ...]
    bat_ids: tuple[bytes, ...]


class BlockMetadataStore(Protocol):
    """cid bytes → BlockMetadata."""

    def put(self, cid: bytes, meta: BlockMetadata) -> None:
        """Record (or overwrite with identical data) a block's metadata."""
        ...

    def get(self, cid: bytes) -> BlockMetadata | None:
        """Metadata of a block, or None."""
        ...

    def get_many(self, cids: Sequence[bytes]) -> dict[bytes, BlockMetadata]:
        """Metadata of those of `cids` that have some (the others are left out), in as few queries as
        the store can manage."""
        ...

    def remove(self, cid: bytes) -> None:
        """Forget a block's metadata."""
        ...

    def cids(self) -> Iterator[bytes]:
        """Every block with metadata."""
        ...


GET_MANY_BATCH = 500
"""CIDs per `SELECT ... IN (...)` of `SqlBlockMetadataStore.get_many` (SQLite allows 999 parameters on old
builds)."""


def _row_metadata(size: Any, links: Any, bats: Any) -> BlockMetadata:
    return BlockMetadata(int(size), tuple(dag_cbor.decode(bytes(links))), tuple(dag_cbor.decode(bytes(bats))))


class MemoryBlockMetadataStore:
    """In-memory BlockMetadataStore."""

    def __init__(self) -> None:
        self._rows: dict[bytes, BlockMetadata] = {}
        self._lock = threading.Lock()

    def put(self, cid: bytes, meta: BlockMetadata) -> None:
        with self._lock:
            self._rows[cid] = meta

    def get(self, cid: bytes) -> BlockMetadata | None:
        with self._lock:
            return self._rows.get(cid)

    def get_many(self, cids: Sequence[bytes]) -> dict[bytes, BlockMetadata]:
        with self._lock:
            return {c: m for c in cids if (m := self._rows.get(c)) is not None}

    def remove(self, cid: bytes) -> None:
        with self._lock:
            self._rows.pop(cid, None)

    def cids(self) -> Iterator[bytes]:
        with self._lock:
            keys = sorted(self._rows)
        return iter(keys)


class SqlBlockMetadataStore:
    """BlockMetadataStore in SQLite/PostgreSQL (links and BAT ids as CBOR lists of byte strings)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        t = db.types
        db.execute(
            f"CREATE TABLE IF NOT EXISTS block_metadata (cid {t.blob} PRIMARY KEY, size {t.bigint} NOT NULL,"
            f" links {t.blob} NOT NULL, bats {t.blob} NOT NULL)"
        )

    def put(self, cid: bytes, meta: BlockMetadata) -> None:
        self._db.execute(
            "INSERT INTO block_metadata (cid, size, links, bats) VALUES (?, ?, ?, ?) ON CONFLICT (cid)"
            " DO UPDATE SET size = excluded.size, links = excluded.links, bats = excluded.bats",
            (cid, meta.size, dag_cbor.encode(list(meta.links)), dag_cbor.encode(list(meta.bat_ids))),
        )

    def get(self, cid: bytes) -> BlockMetadata | None:
        row = self._db.query_one("SELECT size, links, bats FROM block_metadata WHERE cid = ?", (cid,))
        if row is None:
            return None
        return _row_metadata(row[0], row[1], row[2])

    def get_many(self, cids: Sequence[bytes]) -> dict[bytes, BlockMetadata]:
        keys = list(dict.fromkeys(cids))
        out: dict[bytes, BlockMetadata] = {}
        for lo in range(0, len(keys), GET_MANY_BATCH):
            batch = keys[lo : lo + GET_MANY_BATCH]
            marks = ", ".join("?" * len(batch))
            rows = self._db.query(
                f"SELECT cid, size, links, bats FROM block_metadata WHERE cid IN ({marks})", batch
            )
            for row in rows:
                out[bytes(row[0])] = _row_metadata(row[1], row[2], row[3])
        return out

    def remove(self, cid: bytes) -> None:
        self._db.execute("DELETE FROM block_metadata WHERE cid = ?", (cid,))

    def cids(self) -> Iterator[bytes]:
        return iter([bytes(r[0]) for r in self._db.query("SELECT cid FROM block_metadata ORDER BY cid")])


METADATA_CACHE_BYTES = 32 * 1024 * 1024
"""Default bound of `CachingBlockMetadataStore`: ~57,000 entries of file blocks (no links, one BAT id)."""
_ENTRY_BYTES = 380
_ITEM_BYTES = 50


def _entry_cost(cid: bytes, meta: BlockMetadata) -> int:
    """Estimated memory of one cache entry (measured with tracemalloc: ~580 bytes for a 36-byte CID with one
    BAT id and no links)."""
    return (
        _ENTRY_BYTES
        + len(cid)
        + sum(len(x) + _ITEM_BYTES for x in meta.links)
        + sum(len(x) + _ITEM_BYTES for x in meta.bat_ids)
    )


class CachingBlockMetadataStore:
    """A BlockMetadataStore in front of another, keeping recently used entries in memory (LRU, at most
    `max_bytes` by estimate), shared by any number of threads.

    A block's metadata is a function of its bytes, so an entry never goes stale while the block exists:
    `put` fills the cache (even if an enclosing transaction then rolls back: the entry is still true of
    the block), `remove` (garbage collection) drops the entry, and absent metadata is never cached. A
    lookup that races a `remove` does not put the entry back. The lock guards only dictionary operations;
    the inner store is called without it."""

    def __init__(self, inner: BlockMetadataStore, max_bytes: int = METADATA_CACHE_BYTES) -> None:
        self.inner = inner
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[BlockMetadata, int]] = OrderedDict()
        self._bytes = 0
        self._removals = 0  # bumped by every remove: fills started before one are dropped
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def cached_bytes(self) -> int:
        """Estimated memory held by the entries."""
        return self._bytes

    def _lookup(self, cid: bytes) -> BlockMetadata | None:
        """Cached entry (marked as recently used), counting the hit or miss; caller holds the lock."""
        entry = self._entries.get(cid)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(cid)
        self.hits += 1
        return entry[0]

    def _fill(self, cid: bytes, meta: BlockMetadata, removals: int) -> None:
        """Cache an entry unless a remove ran since `removals` was read; caller holds the lock."""
        if self._removals != removals:
            return
        cost = _entry_cost(cid, meta)
        if cost > self.max_bytes:
            return
        old = self._entries.pop(cid, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[cid] = (meta, cost)
        self._bytes += cost
        while self._bytes > self.max_bytes:
            self._bytes -= self._entries.popitem(last=False)[1][1]

    def put(self, cid: bytes, meta: BlockMetadata) -> None:
        with self._lock:
            removals = self._removals
        self.inner.put(cid, meta)
        with self._lock:
            self._fill(cid, meta, removals)

    def get(self, cid: bytes) -> BlockMetadata | None:
        with self._lock:
            meta = self._lookup(cid)
            removals = self._removals
        if meta is not None:
            return meta
        meta = self.inner.get(cid)
        if meta is not None:
            with self._lock:
                self._fill(cid, meta, removals)
        return meta

    def get_many(self, cids: Sequence[bytes]) -> dict[bytes, BlockMetadata]:
        out: dict[bytes, BlockMetadata] = {}
        missing: list[bytes] = []
        with self._lock:
            for cid in dict.fromkeys(cids):
                meta = self._lookup(cid)
                if meta is None:
                    missing.append(cid)
                else:
                    out[cid] = meta
            removals = self._removals
        if missing:
            found = self.inner.get_many(missing)
            with self._lock:
                for cid, meta in found.items():
                    self._fill(cid, meta, removals)
            out.update(found)
        return out

    def remove(self, cid: bytes) -> None:
        with self._lock:
            self._removals += 1
            entry = self._entries.pop(cid, None)
            if entry is not None:
                self._bytes -= entry[1]
        self.inner.remove(cid)
        with self._lock:
            # a lookup that read the row before it went may have cached it meanwhile
            self._removals += 1
            entry = self._entries.pop(cid, None)
            if entry is not None:
                self._bytes -= entry[1]

    def cids(self) -> Iterator[bytes]:
        return self.inner.cids()
