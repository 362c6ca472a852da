"""Mutable pointer storage (spec/peergos.md §4.3 step 4, Peergos `JdbcIpnsAndSocial`).

A pointer is the writer's signed CAS record, stored under the writer's public-key-hash bytes with its
owner. Updates are compare-and-set on the *stored signed bytes*: a set succeeds only if the current
value is exactly `expected` (None = no pointer yet). `compare_and_set_many` applies several updates
atomically (Peergos `setPointers`, a multi-writer commit): all or nothing. Validation (signatures,
sequence numbers, controller checks) happens above this layer; this layer guarantees atomicity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from peergos_node.server.db import Cursorish, Database


@dataclass(frozen=True)
class PointerCas:
    """One compare-and-set: set `writer`'s pointer to `new` if it currently is `expected`."""

    owner: bytes
    writer: bytes
    expected: bytes | None
    new: bytes


class PointerStore(Protocol):
    """Signed mutable pointers keyed by writer."""

    def get(self, writer: bytes) -> bytes | None:
        """The current signed pointer of `writer`, or None."""
        ...

    def owner_of(self, writer: bytes) -> bytes | None:
        """The owner recorded with `writer`'s pointer, or None."""
        ...

    def compare_and_set(self, cas: PointerCas) -> bool:
        """Apply one CAS; False (and no change) if the current value is not `expected`."""
        ...

    def compare_and_set_many(self, updates: Sequence[PointerCas]) -> bool:
        """Apply all CASes atomically, or none of them."""
        ...

    def writers(self, owner: bytes | None = None) -> list[bytes]:
        """Writers with a stored pointer (optionally only those of `owner`)."""
        ...

    def all(self) -> list[tuple[bytes, bytes, bytes]]:
        """Every (owner, writer, signed pointer) row; used by garbage collection."""
        ...


class MemoryPointerStore:
    """In-memory PointerStore."""

    def __init__(self) -> None:
        self._rows: dict[bytes, tuple[bytes, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, writer: bytes) -> bytes | None:
        with self._lock:
            row = self._rows.get(writer)
            return None if row is None else row[1]

    def owner_of(self, writer: bytes) -> bytes | None:
        with self._lock:
            row = self._rows.get(writer)
            return None if row is None else row[0]

    def _matches(self, cas: PointerCas) -> bool:
        row = self._rows.get(cas.writer)
        return (row is None and cas.expected is None) or (row is not None and row[1] == cas.expected)

    def compare_and_set(self, cas: PointerCas) -> bool:
        return self.compare_and_set_many([cas])

    def compare_and_set_many(self, updates: Sequence[PointerCas]) -> bool:
        if len({u.writer for u in updates}) != len(updates):
            return False
        with self._lock:
            if not all(self._matches(u) for u in updates):
                return False
            for u in updates:
                self._rows[u.writer] = (u.owner, u.new)
            return True

    def writers(self, owner: bytes | None = None) -> list[bytes]:
        with self._lock:
            return sorted(w for w, (o, _) in self._rows.items() if owner is None or o == owner)

    def all(self) -> list[tuple[bytes, bytes, bytes]]:
        with self._lock:
            return sorted((o, w, v) for w, (o, v) in self._rows.items())


class SqlPointerStore:
    """PointerStore in SQLite/PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        t = db.types
        db.execute(
            f"CREATE TABLE IF NOT EXISTS pointers (writer {t.blob} PRIMARY KEY, owner {t.blob} NOT NULL,"
            f" value {t.blob} NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS pointers_owner ON pointers (owner)")

    def get(self, writer: bytes) -> bytes | None:
        row = self._db.query_one("SELECT value FROM pointers WHERE writer = ?", (writer,))
        return None if row is None else bytes(row[0])

    def owner_of(self, writer: bytes) -> bytes | None:
        row = self._db.query_one("SELECT owner FROM pointers WHERE writer = ?", (writer,))
        return None if row is None else bytes(row[0])

    @staticmethod
    def _apply(tx: Cursorish, u: PointerCas) -> bool:
        if u.expected is None:
            n = tx.execute(
                "INSERT INTO pointers (writer, owner, value) VALUES (?, ?, ?)"
                " ON CONFLICT (writer) DO NOTHING",
                (u.writer, u.owner, u.new),
            )
        else:
            n = tx.execute(
                "UPDATE pointers SET value = ?, owner = ? WHERE writer = ? AND value = ?",
                (u.new, u.owner, u.writer, u.expected),
            )
        return n == 1

    def compare_and_set(self, cas: PointerCas) -> bool:
        return self.compare_and_set_many([cas])

    def compare_and_set_many(self, updates: Sequence[PointerCas]) -> bool:
        if len({u.writer for u in updates}) != len(updates):
            return False

        class _Abort(Exception):
            pass

        try:
            with self._db.transaction() as tx:
                for u in updates:
                    if not self._apply(tx, u):
                        raise _Abort
        except _Abort:
            return False
        return True

    def writers(self, owner: bytes | None = None) -> list[bytes]:
        if owner is None:
            rows = self._db.query("SELECT writer FROM pointers ORDER BY writer")
        else:
            rows = self._db.query("SELECT writer FROM pointers WHERE owner = ? ORDER BY writer", (owner,))
        return [bytes(r[0]) for r in rows]

    def all(self) -> list[tuple[bytes, bytes, bytes]]:
        rows = self._db.query("SELECT owner, writer, value FROM pointers ORDER BY owner, writer")
        return [(bytes(o), bytes(w), bytes(v)) for o, w, v in rows]
