"""Block metadata (spec/peergos.md §8 "Block metadata DB", nabu.md §5.5): per block its size, the CIDs it
links to (dag-cbor tag-42 links) and the BAT ids it carries, so that authorisation, GC marking and usage
accounting never need to read or parse the block itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

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

    def remove(self, cid: bytes) -> None:
        """Forget a block's metadata."""
        ...

    def cids(self) -> Iterator[bytes]:
        """Every block with metadata."""
        ...


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
        return BlockMetadata(
            int(row[0]), tuple(dag_cbor.decode(bytes(row[1]))), tuple(dag_cbor.decode(bytes(row[2])))
        )

    def remove(self, cid: bytes) -> None:
        self._db.execute("DELETE FROM block_metadata WHERE cid = ?", (cid,))

    def cids(self) -> Iterator[bytes]:
        return iter([bytes(r[0]) for r in self._db.query("SELECT cid FROM block_metadata ORDER BY cid")])
