"""Single-use signup tokens (spec/peergos.md §13, `peergos quota token create|list`, Peergos
`SignUpFilter`): 32 random bytes printed as hex; consuming one is atomic, so a token admits one signup.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Protocol

from peergos_node.server.db import Database


@dataclass(frozen=True)
class SignupToken:
    """A token, when it was created, and who used it (None while unused)."""

    token: str
    created_ms: int
    used_by: str | None


class TokenStore(Protocol):
    """Signup tokens."""

    def create(self, now_ms: int, count: int = 1) -> list[str]:
        """Create `count` fresh tokens."""
        ...

    def list(self) -> list[SignupToken]:
        """All tokens, oldest first."""
        ...

    def is_valid(self, token: str) -> bool:
        """True if the token exists and is unused."""
        ...

    def consume(self, token: str, username: str) -> bool:
        """Mark an unused token used by `username`; False if unknown or already used."""
        ...


def new_token() -> str:
    """A fresh token: hex of 32 random bytes."""
    return secrets.token_hex(32)


class MemoryTokenStore:
    """In-memory TokenStore."""

    def __init__(self) -> None:
        self._rows: dict[str, SignupToken] = {}
        self._lock = threading.Lock()

    def create(self, now_ms: int, count: int = 1) -> list[str]:
        out = [new_token() for _ in range(count)]
        with self._lock:
            for t in out:
                self._rows[t] = SignupToken(t, now_ms, None)
        return out

    def list(self) -> list[SignupToken]:
        with self._lock:
            return sorted(self._rows.values(), key=lambda t: (t.created_ms, t.token))

    def is_valid(self, token: str) -> bool:
        with self._lock:
            row = self._rows.get(token)
            return row is not None and row.used_by is None

    def consume(self, token: str, username: str) -> bool:
        with self._lock:
            row = self._rows.get(token)
            if row is None or row.used_by is not None:
                return False
            self._rows[token] = SignupToken(token, row.created_ms, username)
            return True


class SqlTokenStore:
    """TokenStore in SQLite/PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS signup_tokens (token TEXT PRIMARY KEY,"
            f" created {db.types.bigint} NOT NULL, used_by TEXT)"
        )

    def create(self, now_ms: int, count: int = 1) -> list[str]:
        out = [new_token() for _ in range(count)]
        with self._db.transaction() as tx:
            for t in out:
                tx.execute(
                    "INSERT INTO signup_tokens (token, created, used_by) VALUES (?, ?, NULL)", (t, now_ms)
                )
        return out

    def list(self) -> list[SignupToken]:
        rows = self._db.query("SELECT token, created, used_by FROM signup_tokens ORDER BY created, token")
        return [SignupToken(str(t), int(c), None if u is None else str(u)) for t, c, u in rows]

    def is_valid(self, token: str) -> bool:
        row = self._db.query_one("SELECT used_by FROM signup_tokens WHERE token = ?", (token,))
        return row is not None and row[0] is None

    def consume(self, token: str, username: str) -> bool:
        n = self._db.execute(
            "UPDATE signup_tokens SET used_by = ? WHERE token = ? AND used_by IS NULL", (username, token)
        )
        return n == 1
