"""Write transactions that protect freshly written blocks from GC (spec/peergos.md §8).

`start(owner)` returns a transaction id; every block written under it is recorded; `close(tid, owner)`
releases them. Garbage collection treats the blocks of open transactions as reachable, and transactions
older than the expiry (24 h in Peergos) are cleared at GC time. A tid is only usable by its owner.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from typing import Protocol

from peergos_node.server.db import Database

MAX_OPEN_TRANSACTIONS_PER_OWNER = 10_000


class TransactionError(Exception):
    """Unknown transaction id, wrong owner, or too many open transactions."""


class TransactionStore(Protocol):
    """Open write transactions and the blocks written under them."""

    def start(self, owner: bytes, now_ms: int) -> str:
        """Open a transaction for `owner`; return its id."""
        ...

    def add_blocks(self, tid: str, owner: bytes, cids: Iterable[bytes]) -> None:
        """Record blocks written under `tid` (TransactionError if tid is unknown or not `owner`'s)."""
        ...

    def close(self, tid: str, owner: bytes) -> bool:
        """Close `tid`; False if it was not open for `owner`."""
        ...

    def is_open(self, tid: str, owner: bytes) -> bool:
        """Whether `tid` is an open transaction of `owner`."""
        ...

    def open_block_cids(self) -> set[bytes]:
        """Every block of every open transaction."""
        ...

    def expire(self, older_than_ms: int) -> int:
        """Close transactions started before `older_than_ms`; return how many."""
        ...


class MemoryTransactionStore:
    """In-memory TransactionStore."""

    def __init__(self) -> None:
        self._tx: dict[str, tuple[bytes, int, set[bytes]]] = {}
        self._lock = threading.Lock()

    def start(self, owner: bytes, now_ms: int) -> str:
        with self._lock:
            if sum(1 for o, _, _ in self._tx.values() if o == owner) >= MAX_OPEN_TRANSACTIONS_PER_OWNER:
                raise TransactionError("too many open transactions")
            tid = uuid.uuid4().hex
            self._tx[tid] = (owner, now_ms, set())
            return tid

    def add_blocks(self, tid: str, owner: bytes, cids: Iterable[bytes]) -> None:
        with self._lock:
            entry = self._tx.get(tid)
            if entry is None or entry[0] != owner:
                raise TransactionError(f"no open transaction {tid!r} for this owner")
            entry[2].update(cids)

    def close(self, tid: str, owner: bytes) -> bool:
        with self._lock:
            entry = self._tx.get(tid)
            if entry is None or entry[0] != owner:
                return False
            del self._tx[tid]
            return True

    def is_open(self, tid: str, owner: bytes) -> bool:
        with self._lock:
            entry = self._tx.get(tid)
            return entry is not None and entry[0] == owner

    def open_block_cids(self) -> set[bytes]:
        with self._lock:
            out: set[bytes] = set()
            for _, _, cids in self._tx.values():
                out |= cids
            return out

    def expire(self, older_than_ms: int) -> int:
        with self._lock:
            old = [t for t, (_, started, _) in self._tx.items() if started < older_than_ms]
            for t in old:
                del self._tx[t]
            return len(old)


class SqlTransactionStore:
    """TransactionStore in SQLite/PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        t = db.types
        db.execute(
            f"CREATE TABLE IF NOT EXISTS transactions (tid TEXT PRIMARY KEY, owner {t.blob} NOT NULL,"
            f" started {t.bigint} NOT NULL)"
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS transaction_blocks (tid TEXT NOT NULL, cid {t.blob} NOT NULL,"
            " PRIMARY KEY (tid, cid))"
        )

    def start(self, owner: bytes, now_ms: int) -> str:
        tid = uuid.uuid4().hex
        with self._db.transaction() as tx:
            (n,) = tx.query("SELECT COUNT(*) FROM transactions WHERE owner = ?", (owner,))[0]
            if n >= MAX_OPEN_TRANSACTIONS_PER_OWNER:
                raise TransactionError("too many open transactions")
            tx.execute(
                "INSERT INTO transactions (tid, owner, started) VALUES (?, ?, ?)", (tid, owner, now_ms)
            )
        return tid

    def add_blocks(self, tid: str, owner: bytes, cids: Iterable[bytes]) -> None:
        with self._db.transaction() as tx:
            if not tx.query("SELECT 1 FROM transactions WHERE tid = ? AND owner = ?", (tid, owner)):
                raise TransactionError(f"no open transaction {tid!r} for this owner")
            for cid in set(cids):
                tx.execute(
                    "INSERT INTO transaction_blocks (tid, cid) VALUES (?, ?)"
                    " ON CONFLICT (tid, cid) DO NOTHING",
                    (tid, cid),
                )

    def close(self, tid: str, owner: bytes) -> bool:
        with self._db.transaction() as tx:
            n = tx.execute("DELETE FROM transactions WHERE tid = ? AND owner = ?", (tid, owner))
            if n:
                tx.execute("DELETE FROM transaction_blocks WHERE tid = ?", (tid,))
            return n == 1

    def is_open(self, tid: str, owner: bytes) -> bool:
        return (
            self._db.query_one("SELECT 1 FROM transactions WHERE tid = ? AND owner = ?", (tid, owner))
            is not None
        )

    def open_block_cids(self) -> set[bytes]:
        return {bytes(r[0]) for r in self._db.query("SELECT DISTINCT cid FROM transaction_blocks")}

    def expire(self, older_than_ms: int) -> int:
        with self._db.transaction() as tx:
            old = [r[0] for r in tx.query("SELECT tid FROM transactions WHERE started < ?", (older_than_ms,))]
            for tid in old:
                tx.execute("DELETE FROM transaction_blocks WHERE tid = ?", (tid,))
                tx.execute("DELETE FROM transactions WHERE tid = ?", (tid,))
            return len(old)
