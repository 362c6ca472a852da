"""Users, quotas, the writers they own and the space those writers use (spec/peergos.md §13,
Peergos `SpaceCheckingKeyFilter`, `JdbcUsageStore`, `quotas.sql`).

A user is local to this server iff it has a quota here. Each local user owns a set of writers (its
identity key and every writer authorised, directly or transitively, by an OwnerProof). Per writer we keep
the usage computed from its tree at a given pointer target (`root`) plus `pending` bytes: blocks written
since, not yet reflected in a pointer. A user's usage = Σ over its writers of (usage + pending).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Protocol

from peergos_node.server.db import Database


@dataclass(frozen=True)
class WriterUsage:
    """Usage of one writer: bytes reachable from `root` (a WriterData CID, or None) plus pending bytes."""

    username: str
    root: bytes | None
    usage: int
    pending: int


class UsageStore(Protocol):
    """Users (with their identity key and quota) and their writers' usage."""

    def add_user(self, username: str, identity: bytes, quota: int) -> None:
        """Register a local user (idempotent; never lowers an existing quota)."""
        ...

    def user_of_identity(self, identity: bytes) -> str | None:
        """The local username whose identity key this is."""
        ...

    def identity_of(self, username: str) -> bytes | None:
        """The identity key hash of a local user."""
        ...

    def set_quota(self, username: str, quota: int) -> None:
        """Set a user's quota in bytes."""
        ...

    def quota(self, username: str) -> int:
        """A user's quota (0 if not local)."""
        ...

    def users(self) -> list[str]:
        """Every local username."""
        ...

    def add_writer(self, username: str, writer: bytes) -> None:
        """Record that `writer` belongs to `username` (idempotent)."""
        ...

    def remove_writer(self, writer: bytes) -> None:
        """Forget a writer (its usage no longer counts)."""
        ...

    def writer(self, writer: bytes) -> WriterUsage | None:
        """Usage record of a writer, if it belongs to a local user."""
        ...

    def writers_of(self, username: str) -> list[bytes]:
        """The writers a user owns."""
        ...

    def add_pending(self, writer: bytes, nbytes: int) -> None:
        """Count freshly written bytes against the writer's user."""
        ...

    def set_usage(self, writer: bytes, root: bytes | None, usage: int) -> None:
        """Record the writer's usage as computed at `root`, clearing its pending bytes."""
        ...

    def total_usage(self, username: str) -> int:
        """Σ usage + pending over the user's writers."""
        ...

    def is_errored(self, username: str) -> bool:
        """Whether the user hit the quota (then writes get Peergos' 1 MiB tolerance so deletes work)."""
        ...

    def account(self, username: str) -> tuple[int, int, bool]:
        """(quota, total usage, errored) in one read (the hot path of every block write)."""
        ...

    def set_errored(self, username: str, errored: bool) -> None:
        """Set or clear the over-quota flag."""
        ...


class MemoryUsageStore:
    """In-memory UsageStore."""

    def __init__(self) -> None:
        self._users: dict[str, tuple[bytes, int]] = {}
        self._writers: dict[bytes, WriterUsage] = {}
        self._errored: set[str] = set()
        self._lock = threading.Lock()

    def add_user(self, username: str, identity: bytes, quota: int) -> None:
        with self._lock:
            old = self._users.get(username)
            self._users[username] = (identity, max(quota, old[1]) if old else quota)

    def user_of_identity(self, identity: bytes) -> str | None:
        with self._lock:
            return next((u for u, (i, _) in self._users.items() if i == identity), None)

    def identity_of(self, username: str) -> bytes | None:
        with self._lock:
            row = self._users.get(username)
            return None if row is None else row[0]

    def set_quota(self, username: str, quota: int) -> None:
        with self._lock:
            if username not in self._users:
                raise KeyError(f"unknown user {username!r}")
            self._users[username] = (self._users[username][0], quota)

    def quota(self, username: str) -> int:
        with self._lock:
            row = self._users.get(username)
            return 0 if row is None else row[1]

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._users)

    def add_writer(self, username: str, writer: bytes) -> None:
        with self._lock:
            if writer not in self._writers:
                self._writers[writer] = WriterUsage(username, None, 0, 0)

    def remove_writer(self, writer: bytes) -> None:
        with self._lock:
            self._writers.pop(writer, None)

    def writer(self, writer: bytes) -> WriterUsage | None:
        with self._lock:
            return self._writers.get(writer)

    def writers_of(self, username: str) -> list[bytes]:
        with self._lock:
            return sorted(w for w, u in self._writers.items() if u.username == username)

    def add_pending(self, writer: bytes, nbytes: int) -> None:
        with self._lock:
            u = self._writers.get(writer)
            if u is not None:
                self._writers[writer] = replace(u, pending=u.pending + nbytes)

    def set_usage(self, writer: bytes, root: bytes | None, usage: int) -> None:
        with self._lock:
            u = self._writers.get(writer)
            if u is not None:
                self._writers[writer] = replace(u, root=root, usage=usage, pending=0)

    def total_usage(self, username: str) -> int:
        with self._lock:
            return sum(u.usage + u.pending for u in self._writers.values() if u.username == username)

    def is_errored(self, username: str) -> bool:
        with self._lock:
            return username in self._errored

    def account(self, username: str) -> tuple[int, int, bool]:
        return self.quota(username), self.total_usage(username), self.is_errored(username)

    def set_errored(self, username: str, errored: bool) -> None:
        with self._lock:
            if errored:
                self._errored.add(username)
            else:
                self._errored.discard(username)


class SqlUsageStore:
    """UsageStore in SQLite/PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        t = db.types
        db.execute(
            f"CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, identity {t.blob} NOT NULL,"
            f" quota {t.bigint} NOT NULL, errored {t.bigint} NOT NULL DEFAULT 0)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS users_identity ON users (identity)")
        db.execute(
            f"CREATE TABLE IF NOT EXISTS writer_usage (writer {t.blob} PRIMARY KEY, username TEXT NOT NULL,"
            f" root {t.blob}, usage {t.bigint} NOT NULL, pending {t.bigint} NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS writer_usage_user ON writer_usage (username)")

    def add_user(self, username: str, identity: bytes, quota: int) -> None:
        self._db.execute(
            "INSERT INTO users (username, identity, quota) VALUES (?, ?, ?) ON CONFLICT (username) DO UPDATE"
            " SET identity = excluded.identity,"
            " quota = CASE WHEN excluded.quota > users.quota THEN excluded.quota ELSE users.quota END",
            (username, identity, quota),
        )

    def user_of_identity(self, identity: bytes) -> str | None:
        row = self._db.query_one("SELECT username FROM users WHERE identity = ?", (identity,))
        return None if row is None else str(row[0])

    def identity_of(self, username: str) -> bytes | None:
        row = self._db.query_one("SELECT identity FROM users WHERE username = ?", (username,))
        return None if row is None else bytes(row[0])

    def set_quota(self, username: str, quota: int) -> None:
        if self._db.execute("UPDATE users SET quota = ? WHERE username = ?", (quota, username)) != 1:
            raise KeyError(f"unknown user {username!r}")

    def quota(self, username: str) -> int:
        row = self._db.query_one("SELECT quota FROM users WHERE username = ?", (username,))
        return 0 if row is None else int(row[0])

    def users(self) -> list[str]:
        return [str(r[0]) for r in self._db.query("SELECT username FROM users ORDER BY username")]

    def add_writer(self, username: str, writer: bytes) -> None:
        self._db.execute(
            "INSERT INTO writer_usage (writer, username, root, usage, pending) VALUES (?, ?, NULL, 0, 0)"
            " ON CONFLICT (writer) DO NOTHING",
            (writer, username),
        )

    def remove_writer(self, writer: bytes) -> None:
        self._db.execute("DELETE FROM writer_usage WHERE writer = ?", (writer,))

    def writer(self, writer: bytes) -> WriterUsage | None:
        row = self._db.query_one(
            "SELECT username, root, usage, pending FROM writer_usage WHERE writer = ?", (writer,)
        )
        if row is None:
            return None
        return WriterUsage(str(row[0]), None if row[1] is None else bytes(row[1]), int(row[2]), int(row[3]))

    def writers_of(self, username: str) -> list[bytes]:
        rows = self._db.query(
            "SELECT writer FROM writer_usage WHERE username = ? ORDER BY writer", (username,)
        )
        return [bytes(r[0]) for r in rows]

    def add_pending(self, writer: bytes, nbytes: int) -> None:
        self._db.execute("UPDATE writer_usage SET pending = pending + ? WHERE writer = ?", (nbytes, writer))

    def set_usage(self, writer: bytes, root: bytes | None, usage: int) -> None:
        self._db.execute(
            "UPDATE writer_usage SET root = ?, usage = ?, pending = 0 WHERE writer = ?", (root, usage, writer)
        )

    def total_usage(self, username: str) -> int:
        row = self._db.query_one(
            "SELECT COALESCE(SUM(usage + pending), 0) FROM writer_usage WHERE username = ?", (username,)
        )
        return int(row[0]) if row else 0

    def is_errored(self, username: str) -> bool:
        row = self._db.query_one("SELECT errored FROM users WHERE username = ?", (username,))
        return bool(row and row[0])

    def set_errored(self, username: str, errored: bool) -> None:
        self._db.execute("UPDATE users SET errored = ? WHERE username = ?", (1 if errored else 0, username))

    def account(self, username: str) -> tuple[int, int, bool]:
        row = self._db.query_one(
            "SELECT u.quota, u.errored, (SELECT COALESCE(SUM(w.usage + w.pending), 0) FROM writer_usage w"
            " WHERE w.username = u.username) FROM users u WHERE u.username = ?",
            (username,),
        )
        if row is None:
            return 0, self.total_usage(username), False
        return int(row[0]), int(row[2]), bool(row[1])
