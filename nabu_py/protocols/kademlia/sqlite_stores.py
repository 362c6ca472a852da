"""Persistent SQLite implementations of the DHT stores (records.py describes the semantics).

Same contracts as the in-memory stores, checked by the shared conformance suite: records expire,
both stores are bounded with least-recently-used eviction of keys (an access counter column stands
in for recency, so eviction is one indexed DELETE). Peers are stored as their protobuf `Peer`
encoding. Each store owns one connection; calls are synchronous and short (indexed point queries),
so a driver may call them from its event loop for small stores or move them to worker threads. The
connection may be used from any thread (`check_same_thread=False`) but by one at a time: the caller
serialises calls (the trio service runs every engine call that can reach a store under one lock).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nabu_py.errors import DecodeError
from nabu_py.protocols.kademlia.messages import Peer
from nabu_py.protocols.kademlia.records import (
    DEFAULT_MAX_PROVIDER_KEYS,
    DEFAULT_MAX_PROVIDERS_PER_KEY,
    DEFAULT_MAX_RECORDS,
    StoredRecord,
)


def _connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SqliteRecordStore:
    """`RecordStore` in an SQLite database file (or `":memory:"`)."""

    def __init__(self, path: str | Path, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        self.max_records = max_records
        self._db = _connect(path)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS dht_records (
                key BLOB PRIMARY KEY, value BLOB NOT NULL,
                received_at REAL NOT NULL, expires_at REAL NOT NULL, used INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS dht_records_used ON dht_records(used);
            CREATE INDEX IF NOT EXISTS dht_records_expiry ON dht_records(expires_at);
            """
        )
        row = self._db.execute("SELECT COALESCE(MAX(used), 0) FROM dht_records").fetchone()
        self._tick = int(row[0])

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def get(self, key: bytes, now: float) -> StoredRecord | None:
        """See `RecordStore.get`."""
        row = self._db.execute(
            "SELECT value, received_at, expires_at FROM dht_records WHERE key = ?", (key,)
        ).fetchone()
        if row is None or row[2] <= now:
            return None
        self._db.execute("UPDATE dht_records SET used = ? WHERE key = ?", (self._next(), key))
        return StoredRecord(key, bytes(row[0]), float(row[1]), float(row[2]))

    def put(self, record: StoredRecord) -> None:
        """See `RecordStore.put`."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT OR REPLACE INTO dht_records(key, value, received_at, expires_at, used)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.key, record.value, record.received_at, record.expires_at, self._next()),
            )
            (count,) = db.execute("SELECT COUNT(*) FROM dht_records").fetchone()
            if count > self.max_records:
                db.execute(
                    "DELETE FROM dht_records WHERE key IN"
                    " (SELECT key FROM dht_records ORDER BY used LIMIT ?)",
                    (count - self.max_records,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def remove(self, key: bytes) -> None:
        """See `RecordStore.remove`."""
        self._db.execute("DELETE FROM dht_records WHERE key = ?", (key,))

    def purge_expired(self, now: float) -> int:
        """See `RecordStore.purge_expired`."""
        return self._db.execute("DELETE FROM dht_records WHERE expires_at <= ?", (now,)).rowcount

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM dht_records").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()


class SqliteProviderStore:
    """`ProviderStore` in an SQLite database file (or `":memory:"`)."""

    def __init__(
        self,
        path: str | Path,
        max_keys: int = DEFAULT_MAX_PROVIDER_KEYS,
        max_providers_per_key: int = DEFAULT_MAX_PROVIDERS_PER_KEY,
    ) -> None:
        if max_keys < 1 or max_providers_per_key < 1:
            raise ValueError("max_keys and max_providers_per_key must be >= 1")
        self.max_keys = max_keys
        self.max_providers_per_key = max_providers_per_key
        self._db = _connect(path)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS dht_provider_keys (key BLOB PRIMARY KEY, used INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS dht_provider_keys_used ON dht_provider_keys(used);
            CREATE TABLE IF NOT EXISTS dht_providers (
                key BLOB NOT NULL, peer_id BLOB NOT NULL, peer BLOB NOT NULL,
                expires_at REAL NOT NULL, added INTEGER NOT NULL, PRIMARY KEY (key, peer_id));
            CREATE INDEX IF NOT EXISTS dht_providers_expiry ON dht_providers(expires_at);
            """
        )
        row = self._db.execute(
            "SELECT MAX(COALESCE((SELECT MAX(used) FROM dht_provider_keys), 0),"
            " COALESCE((SELECT MAX(added) FROM dht_providers), 0))"
        ).fetchone()
        self._tick = int(row[0])

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def add(self, key: bytes, provider: Peer, expires_at: float) -> None:
        """See `ProviderStore.add`."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT OR REPLACE INTO dht_provider_keys(key, used) VALUES (?, ?)", (key, self._next())
            )
            exists = db.execute(
                "SELECT 1 FROM dht_providers WHERE key = ? AND peer_id = ?", (key, provider.id)
            ).fetchone()
            if exists is None:
                (n,) = db.execute("SELECT COUNT(*) FROM dht_providers WHERE key = ?", (key,)).fetchone()
                if n >= self.max_providers_per_key:
                    db.execute(
                        "DELETE FROM dht_providers WHERE key = ? AND peer_id ="
                        " (SELECT peer_id FROM dht_providers WHERE key = ? ORDER BY expires_at LIMIT 1)",
                        (key, key),
                    )
            db.execute(
                "INSERT OR REPLACE INTO dht_providers(key, peer_id, peer, expires_at, added)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, provider.id, provider.encode(), expires_at, self._next()),
            )
            (nkeys,) = db.execute("SELECT COUNT(*) FROM dht_provider_keys").fetchone()
            if nkeys > self.max_keys:
                victims = [
                    r[0]
                    for r in db.execute(
                        "SELECT key FROM dht_provider_keys ORDER BY used LIMIT ?", (nkeys - self.max_keys,)
                    )
                ]
                for v in victims:
                    db.execute("DELETE FROM dht_providers WHERE key = ?", (v,))
                    db.execute("DELETE FROM dht_provider_keys WHERE key = ?", (v,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def get(self, key: bytes, now: float, limit: int) -> list[Peer]:
        """See `ProviderStore.get`."""
        rows = self._db.execute(
            "SELECT peer FROM dht_providers WHERE key = ? AND expires_at > ? ORDER BY added DESC LIMIT ?",
            (key, now, limit),
        ).fetchall()
        if not rows:
            return []
        self._db.execute("UPDATE dht_provider_keys SET used = ? WHERE key = ?", (self._next(), key))
        out: list[Peer] = []
        for (blob,) in rows:
            try:
                out.append(Peer.decode(bytes(blob)))
            except DecodeError:
                continue  # a corrupted row is skipped, not fatal
        return out

    def purge_expired(self, now: float) -> int:
        """See `ProviderStore.purge_expired`."""
        db = self._db
        db.execute("BEGIN")
        try:
            n = db.execute("DELETE FROM dht_providers WHERE expires_at <= ?", (now,)).rowcount
            db.execute(
                "DELETE FROM dht_provider_keys WHERE key NOT IN (SELECT DISTINCT key FROM dht_providers)"
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM dht_providers").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
