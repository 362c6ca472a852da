"""Login data and second factors (spec/peergos.md §2.2, §2.5, §2.6; Java `JdbcAccount`).

Per user: the encrypted login data (UserStaticData) with the login public key allowed to read it, an
optional *pending* row for a password change in flight (new login data + the identity WriterData CID
whose publication makes it live), and second factors (type, name, credential id, created day, enabled,
secret bytes: a TOTP key or backup-code hashes). Backup-code redemption is a compare-and-set on the
factor's secret so two concurrent logins cannot spend one code twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Protocol

from peergos_node.server.db import Database


@dataclass(frozen=True)
class LoginRow:
    """Stored login data: the serialized UserStaticData and the CBOR of the authorised reader key."""

    entry: bytes
    reader: bytes


@dataclass(frozen=True)
class PendingLogin:
    """A staged password change: live once `writer`'s pointer targets `writer_data`."""

    entry: bytes
    reader: bytes
    writer: bytes
    writer_data: bytes


@dataclass(frozen=True)
class FactorRow:
    """One second factor."""

    credential_id: bytes
    name: str
    type: int
    created_day: int
    enabled: bool
    secret: bytes


class AccountStore(Protocol):
    """Login rows, pending password changes and second factors."""

    def get_login(self, username: str) -> LoginRow | None:
        """The live login data."""
        ...

    def set_login(self, username: str, row: LoginRow) -> None:
        """Replace the live login data (and drop any pending change)."""
        ...

    def get_pending(self, username: str) -> PendingLogin | None:
        """A staged password change, if any."""
        ...

    def set_pending(self, username: str, pending: PendingLogin) -> None:
        """Stage a password change."""
        ...

    def promote_pending(self, username: str) -> bool:
        """Make the pending login data live (atomically); False if there was none."""
        ...

    def factors(self, username: str) -> list[FactorRow]:
        """A user's second factors, oldest first."""
        ...

    def add_factor(self, username: str, factor: FactorRow) -> None:
        """Add a factor (credential ids are unique per user)."""
        ...

    def set_enabled(self, username: str, credential_id: bytes, enabled: bool) -> bool:
        """Enable or disable a factor; False if unknown."""
        ...

    def replace_secret(self, username: str, credential_id: bytes, old: bytes, new: bytes, name: str) -> bool:
        """Compare-and-set a factor's secret (and name); False if it changed meanwhile."""
        ...

    def delete_factor(self, username: str, credential_id: bytes) -> bool:
        """Remove a factor; False if unknown."""
        ...


class MemoryAccountStore:
    """In-memory AccountStore."""

    def __init__(self) -> None:
        self._login: dict[str, LoginRow] = {}
        self._pending: dict[str, PendingLogin] = {}
        self._factors: dict[str, list[FactorRow]] = {}
        self._lock = threading.Lock()

    def get_login(self, username: str) -> LoginRow | None:
        with self._lock:
            return self._login.get(username)

    def set_login(self, username: str, row: LoginRow) -> None:
        with self._lock:
            self._login[username] = row
            self._pending.pop(username, None)

    def get_pending(self, username: str) -> PendingLogin | None:
        with self._lock:
            return self._pending.get(username)

    def set_pending(self, username: str, pending: PendingLogin) -> None:
        with self._lock:
            self._pending[username] = pending

    def promote_pending(self, username: str) -> bool:
        with self._lock:
            p = self._pending.pop(username, None)
            if p is None:
                return False
            self._login[username] = LoginRow(p.entry, p.reader)
            return True

    def factors(self, username: str) -> list[FactorRow]:
        with self._lock:
            return list(self._factors.get(username, []))

    def add_factor(self, username: str, factor: FactorRow) -> None:
        with self._lock:
            rows = self._factors.setdefault(username, [])
            if any(f.credential_id == factor.credential_id for f in rows):
                raise ValueError("duplicate credential id")
            rows.append(factor)

    def _update(self, username: str, credential_id: bytes, fn: object) -> bool:
        rows = self._factors.get(username, [])
        for i, f in enumerate(rows):
            if f.credential_id == credential_id:
                new = fn(f)  # type: ignore[operator]
                if new is None:
                    return False
                rows[i] = new
                return True
        return False

    def set_enabled(self, username: str, credential_id: bytes, enabled: bool) -> bool:
        with self._lock:
            return self._update(username, credential_id, lambda f: replace(f, enabled=enabled))

    def replace_secret(self, username: str, credential_id: bytes, old: bytes, new: bytes, name: str) -> bool:
        with self._lock:
            return self._update(
                username,
                credential_id,
                lambda f: replace(f, secret=new, name=name) if f.secret == old else None,
            )

    def delete_factor(self, username: str, credential_id: bytes) -> bool:
        with self._lock:
            rows = self._factors.get(username, [])
            kept = [f for f in rows if f.credential_id != credential_id]
            self._factors[username] = kept
            return len(kept) != len(rows)


class SqlAccountStore:
    """AccountStore in SQLite/PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        t = db.types
        db.execute(
            f"CREATE TABLE IF NOT EXISTS login (username TEXT PRIMARY KEY, entry {t.blob} NOT NULL,"
            f" reader {t.blob} NOT NULL)"
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS login_pending (username TEXT PRIMARY KEY, entry {t.blob} NOT NULL,"
            f" reader {t.blob} NOT NULL, writer {t.blob} NOT NULL, writer_data {t.blob} NOT NULL)"
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS mfa (username TEXT NOT NULL, credid {t.blob} NOT NULL,"
            " name TEXT NOT NULL,"
            f" type {t.bigint} NOT NULL, created {t.bigint} NOT NULL, enabled {t.bigint} NOT NULL,"
            f" secret {t.blob} NOT NULL, seq {t.bigint} NOT NULL, PRIMARY KEY (username, credid))"
        )

    def get_login(self, username: str) -> LoginRow | None:
        row = self._db.query_one("SELECT entry, reader FROM login WHERE username = ?", (username,))
        return None if row is None else LoginRow(bytes(row[0]), bytes(row[1]))

    def set_login(self, username: str, row: LoginRow) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO login (username, entry, reader) VALUES (?, ?, ?) ON CONFLICT (username)"
                " DO UPDATE SET entry = excluded.entry, reader = excluded.reader",
                (username, row.entry, row.reader),
            )
            tx.execute("DELETE FROM login_pending WHERE username = ?", (username,))

    def get_pending(self, username: str) -> PendingLogin | None:
        row = self._db.query_one(
            "SELECT entry, reader, writer, writer_data FROM login_pending WHERE username = ?", (username,)
        )
        return None if row is None else PendingLogin(*(bytes(v) for v in row))

    def set_pending(self, username: str, pending: PendingLogin) -> None:
        self._db.execute(
            "INSERT INTO login_pending (username, entry, reader, writer, writer_data) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (username) DO UPDATE SET entry = excluded.entry, reader = excluded.reader,"
            " writer = excluded.writer, writer_data = excluded.writer_data",
            (username, pending.entry, pending.reader, pending.writer, pending.writer_data),
        )

    def promote_pending(self, username: str) -> bool:
        with self._db.transaction() as tx:
            rows = tx.query("SELECT entry, reader FROM login_pending WHERE username = ?", (username,))
            if not rows:
                return False
            entry, reader = rows[0]
            tx.execute(
                "INSERT INTO login (username, entry, reader) VALUES (?, ?, ?) ON CONFLICT (username)"
                " DO UPDATE SET entry = excluded.entry, reader = excluded.reader",
                (username, entry, reader),
            )
            tx.execute("DELETE FROM login_pending WHERE username = ?", (username,))
            return True

    def factors(self, username: str) -> list[FactorRow]:
        rows = self._db.query(
            "SELECT credid, name, type, created, enabled, secret FROM mfa WHERE username = ? ORDER BY seq",
            (username,),
        )
        return [FactorRow(bytes(c), str(n), int(t), int(d), bool(e), bytes(s)) for c, n, t, d, e, s in rows]

    def add_factor(self, username: str, factor: FactorRow) -> None:
        with self._db.transaction() as tx:
            if tx.query(
                "SELECT 1 FROM mfa WHERE username = ? AND credid = ?", (username, factor.credential_id)
            ):
                raise ValueError("duplicate credential id")
            (seq,) = tx.query("SELECT COALESCE(MAX(seq), 0) + 1 FROM mfa WHERE username = ?", (username,))[0]
            tx.execute(
                "INSERT INTO mfa (username, credid, name, type, created, enabled, secret, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    username,
                    factor.credential_id,
                    factor.name,
                    factor.type,
                    factor.created_day,
                    1 if factor.enabled else 0,
                    factor.secret,
                    seq,
                ),
            )

    def set_enabled(self, username: str, credential_id: bytes, enabled: bool) -> bool:
        n = self._db.execute(
            "UPDATE mfa SET enabled = ? WHERE username = ? AND credid = ?",
            (1 if enabled else 0, username, credential_id),
        )
        return n == 1

    def replace_secret(self, username: str, credential_id: bytes, old: bytes, new: bytes, name: str) -> bool:
        n = self._db.execute(
            "UPDATE mfa SET secret = ?, name = ? WHERE username = ? AND credid = ? AND secret = ?",
            (new, name, username, credential_id, old),
        )
        return n == 1

    def delete_factor(self, username: str, credential_id: bytes) -> bool:
        return (
            self._db.execute("DELETE FROM mfa WHERE username = ? AND credid = ?", (username, credential_id))
            == 1
        )
