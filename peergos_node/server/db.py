"""One small SQL layer over SQLite (default, WAL) and PostgreSQL (spec/peergos.md §16 `-use-postgres`).

Stores write their SQL once, in a portable subset: `?` placeholders (translated to `%s` for psycopg),
`INSERT ... ON CONFLICT`, and type names from `Database.types` (`BLOB`/`BYTEA`, `BIGINT`). Every call is
synchronous and thread-safe: one connection per `Database`, serialised by a lock; trio code runs the
calls in worker threads.

Durability: SQLite runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives SIGKILL
of the process (the WAL is in the OS page cache) and an uncommitted one leaves no trace; after a power
loss the last commits may be rolled back together, in order, never torn. Pass `synchronous="FULL"`
to also fsync every commit.

Nested `transaction()` calls on the same thread join the outer transaction, so a caller can group
several stores' writes (all on one Database) into one atomic commit. `transaction()` takes the write
lock up front (`BEGIN IMMEDIATE`) so read-modify-write sequences inside it are atomic even against
other processes; PostgreSQL transactions run at SERIALIZABLE isolation for the same reason (a
conflict with another process surfaces as a DatabaseError and the caller's operation fails cleanly,
changing nothing).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Params = Sequence[Any]


class DatabaseError(Exception):
    """The database could not do what was asked (connection lost, constraint broken, ...)."""


@dataclass(frozen=True)
class SqlTypes:
    """Column type names for the active dialect."""

    blob: str
    bigint: str
    text: str = "TEXT"


class Cursorish(Protocol):
    """What stores use inside a transaction."""

    def execute(self, sql: str, params: Params = ()) -> int: ...

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        with self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params))
            return int(cur.rowcount)

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(params))
            return [tuple(_pg_value(v) for v in row) for row in cur.fetchall()]


def _pg_value(v: Any) -> Any:
    return bytes(v) if isinstance(v, memoryview) else v


class Database:
    """A SQLite or PostgreSQL database shared by the server's stores."""

    def __init__(self, dialect: str, conn: Any, types: SqlTypes, describe: str) -> None:
        self.dialect = dialect
        self.types = types
        self._conn = conn
        self._lock = threading.RLock()
        self._describe = describe
        self._closed = False
        self._local = threading.local()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def sqlite(cls, path: str | Path, synchronous: str = "NORMAL") -> Database:
        """Open (creating) a SQLite database file in WAL mode; ':memory:' for a private in-RAM one."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        return cls("sqlite", conn, SqlTypes(blob="BLOB", bigint="INTEGER"), f"sqlite:{path}")

    @classmethod
    def postgres(cls, conninfo: str, schema: str | None = None) -> Database:
        """Connect to PostgreSQL (libpq conninfo string); optionally work inside `schema`."""
        try:
            import psycopg
        except ImportError as e:  # pragma: no cover - psycopg is a declared dependency
            raise DatabaseError("PostgreSQL support needs the psycopg package") from e
        try:
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise DatabaseError(f"cannot connect to PostgreSQL: {e}") from None
        if schema is not None:
            if not schema.replace("_", "").isalnum():
                raise ValueError(f"bad schema name {schema!r}")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"SET search_path TO {schema}")
        return cls("postgres", conn, SqlTypes(blob="BYTEA", bigint="BIGINT"), "postgres")

    # ---- use ----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError("database is closed")

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; return the affected row count."""
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run a read query; return all rows."""
        with self._lock:
            self._check_open()
            try:
                if self.dialect == "sqlite":
                    return _SqliteTx(self._conn).query(sql, params)
                return _PgTx(self._conn).query(sql, params)
            except Exception as e:
                raise self._wrap(e) from None

    def query_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        """Run a read query expected to return at most one row."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursorish]:
        """An atomic read-modify-write transaction (exclusive for SQLite, SERIALIZABLE for PostgreSQL)."""
        with self._lock:
            self._check_open()
            current: Cursorish | None = getattr(self._local, "tx", None)
            if current is not None:
                yield current
                return
            opened = self._sqlite_tx() if self.dialect == "sqlite" else self._pg_tx()
            with opened as tx:
                self._local.tx = tx
                try:
                    yield tx
                finally:
                    self._local.tx = None

    @contextlib.contextmanager
    def _sqlite_tx(self) -> Iterator[Cursorish]:
        conn: sqlite3.Connection = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self._wrap(e) from None
        try:
            yield _SqliteTx(conn)
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise self._wrap(e) from None
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise self._wrap(e) from None

    @contextlib.contextmanager
    def _pg_tx(self) -> Iterator[Cursorish]:
        import psycopg

        try:
            with self._conn.transaction():
                self._conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                yield _PgTx(self._conn)
        except psycopg.Error as e:
            raise self._wrap(e) from None

    def _wrap(self, e: Exception) -> DatabaseError:
        return DatabaseError(f"{self._describe}: {type(e).__name__}: {e}")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def now_millis() -> int:
    """Wall-clock milliseconds since the epoch (the unit Peergos stores)."""
    return int(time.time() * 1000)
