"""Address book: where peers can be dialed, bounded and least-recently-used (spec/nabu.md §1.9).

Nabu keeps peer -> set of multiaddrs with the trailing `/p2p/<that peer>` stripped, in an LRU of 10,000
peers; Peergos swaps it for a persisted SQLite LRU so that one successful DHT lookup per peer survives
restarts. `AddressBook` is the protocol; `MemoryAddressBook` and `SqliteAddressBook` implement it with the
same semantics (tests/unit/nabu_py/p2p/test_address_book.py is the shared conformance suite):

* `add(peer, addrs)` merges: the given addresses move to the front (most recently learned first), the
  list is cut to `MAX_ADDRS_PER_PEER`, and the peer becomes the most recently used entry;
* `get(peer)` returns the addresses (most recent first) and marks the peer used;
* when more than `capacity` peers are known, the least recently used ones are forgotten.

Addresses are validated and normalised on the way in: a trailing `/p2p/<id>` must name the same peer
and is removed; text longer than `MAX_ADDR_TEXT` or unparsable is skipped (never stored, never raised:
addresses come from peers, and one bad entry must not cost the good ones).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Protocol

from multiaddr import Multiaddr

from nabu_py.errors import DecodeError
from nabu_py.p2p.addrs import split_peer
from nabu_py.p2p.peer_id import PeerId

__all__ = [
    "DEFAULT_CAPACITY",
    "MAX_ADDRS_PER_PEER",
    "AddressBook",
    "MemoryAddressBook",
    "SqliteAddressBook",
    "normalize_addrs",
]

DEFAULT_CAPACITY: Final = 1000
MAX_ADDRS_PER_PEER: Final = 16
MAX_ADDR_TEXT: Final = 512

logger = logging.getLogger(__name__)


class AddressBook(Protocol):
    """Bounded LRU map from peer to dialable multiaddrs (no `/p2p/` suffix)."""

    def add(self, peer: PeerId, addrs: Iterable[Multiaddr | str]) -> None:
        """Merge `addrs` in front of what is known (deduplicated, bounded); mark the peer used."""

    def get(self, peer: PeerId) -> list[Multiaddr]:
        """Known addresses, most recently learned first ([] if unknown); mark the peer used."""

    def remove(self, peer: PeerId) -> None:
        """Forget the peer."""

    def peers(self) -> list[PeerId]:
        """Known peers, most recently used first."""

    def __len__(self) -> int:
        """Number of peers known."""

    def close(self) -> None:
        """Release resources (a no-op for the in-memory book)."""


def normalize_addrs(peer: PeerId, addrs: Iterable[Multiaddr | str]) -> list[str]:
    """Validated text forms with `/p2p/<peer>` stripped; invalid or foreign-peer entries are dropped."""
    out: list[str] = []
    for addr in addrs:
        try:
            transport, named = split_peer(addr)
        except DecodeError:
            continue
        if transport is None or (named is not None and named != peer):
            continue
        text = str(transport)
        if len(text) <= MAX_ADDR_TEXT and text not in out:
            out.append(text)
    return out


def _merge(new: list[str], old: Iterable[str]) -> list[str]:
    merged = list(new)
    for a in old:
        if a not in merged:
            merged.append(a)
    return merged[:MAX_ADDRS_PER_PEER]


class MemoryAddressBook:
    """In-memory LRU address book."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._entries: OrderedDict[PeerId, list[str]] = OrderedDict()

    def add(self, peer: PeerId, addrs: Iterable[Multiaddr | str]) -> None:
        new = normalize_addrs(peer, addrs)
        if not new:
            return
        self._entries[peer] = _merge(new, self._entries.get(peer, ()))
        self._entries.move_to_end(peer, last=False)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=True)

    def get(self, peer: PeerId) -> list[Multiaddr]:
        found = self._entries.get(peer)
        if found is None:
            return []
        self._entries.move_to_end(peer, last=False)
        return [Multiaddr(a) for a in found]

    def remove(self, peer: PeerId) -> None:
        self._entries.pop(peer, None)

    def peers(self) -> list[PeerId]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        return None


class SqliteAddressBook:
    """Persistent LRU address book in one SQLite table (`peer` BLOB key, newline-joined addresses)."""

    def __init__(self, path: str | Path, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS addr_book (peer BLOB PRIMARY KEY, addrs TEXT NOT NULL, "
            "used INTEGER NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS addr_book_used ON addr_book(used)")
        row = self._db.execute("SELECT COALESCE(MAX(used), 0) FROM addr_book").fetchone()
        self._clock = int(row[0])
        self._evict()

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _evict(self) -> None:
        (count,) = self._db.execute("SELECT COUNT(*) FROM addr_book").fetchone()
        excess = int(count) - self._capacity
        if excess > 0:
            self._db.execute(
                "DELETE FROM addr_book WHERE peer IN (SELECT peer FROM addr_book ORDER BY used ASC LIMIT ?)",
                (excess,),
            )

    def add(self, peer: PeerId, addrs: Iterable[Multiaddr | str]) -> None:
        new = normalize_addrs(peer, addrs)
        if not new:
            return
        key = peer.to_bytes()
        row = self._db.execute("SELECT addrs FROM addr_book WHERE peer = ?", (key,)).fetchone()
        old = str(row[0]).split("\n") if row else []
        merged = "\n".join(_merge(new, old))
        self._db.execute(
            "INSERT INTO addr_book (peer, addrs, used) VALUES (?, ?, ?) "
            "ON CONFLICT(peer) DO UPDATE SET addrs = excluded.addrs, used = excluded.used",
            (key, merged, self._tick()),
        )
        if row is None:
            self._evict()

    def get(self, peer: PeerId) -> list[Multiaddr]:
        key = peer.to_bytes()
        row = self._db.execute("SELECT addrs FROM addr_book WHERE peer = ?", (key,)).fetchone()
        if row is None:
            return []
        self._db.execute("UPDATE addr_book SET used = ? WHERE peer = ?", (self._tick(), key))
        out: list[Multiaddr] = []
        for text in str(row[0]).split("\n"):
            try:
                out.append(Multiaddr(text))
            except Exception:  # a row edited outside this class: skip what does not parse
                logger.debug("skipping unparsable stored address %r", text)
        return out

    def remove(self, peer: PeerId) -> None:
        self._db.execute("DELETE FROM addr_book WHERE peer = ?", (peer.to_bytes(),))

    def peers(self) -> list[PeerId]:
        out: list[PeerId] = []
        for (key,) in self._db.execute("SELECT peer FROM addr_book ORDER BY used DESC"):
            try:
                out.append(PeerId.from_bytes(key))
            except ValueError:
                logger.debug("skipping malformed stored peer id")
        return out

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM addr_book").fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()
