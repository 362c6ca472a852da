"""Databases for store conformance tests: SQLite files and, when PEERGOS_TEST_POSTGRES is set (as
.ci/run does after starting PostgreSQL), a private schema in a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from peergos_node.server.db import Database

POSTGRES_ENV = "PEERGOS_TEST_POSTGRES"
KINDS = ["memory", "sqlite", "postgres"]


def postgres_conninfo() -> str:
    conninfo = os.environ.get(POSTGRES_ENV)
    if not conninfo:
        pytest.skip(f"{POSTGRES_ENV} is not set; .ci/run starts PostgreSQL and sets it")
    return conninfo


@contextmanager
def open_database(kind: str, tmp_path: Path) -> Iterator[Database | None]:
    """None for the in-memory twin, else a fresh SQLite file or PostgreSQL schema (dropped after)."""
    if kind == "memory":
        yield None
    elif kind == "sqlite":
        db = Database.sqlite(tmp_path / f"{uuid.uuid4().hex}.sqlite")
        try:
            yield db
        finally:
            db.close()
    elif kind == "postgres":
        conninfo = postgres_conninfo()
        schema = f"t_{uuid.uuid4().hex[:16]}"
        db = Database.postgres(conninfo, schema=schema)
        try:
            yield db
        finally:
            db.close()
            admin = Database.postgres(conninfo)
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.close()
    else:
        raise ValueError(kind)
