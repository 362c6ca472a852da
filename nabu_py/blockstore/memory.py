"""In-memory block store (Nabu's `RamBlockstore`, spec/nabu.md §5.2).

Theory of operation: a dict from CID to bytes behind one lock, with an optional byte budget
(`max_total_bytes`) so a cache or a test node cannot grow without bound; a put that would exceed it
raises `BlockstoreError`. Blocks were verified on the way in and live only in this process, so reads
are not re-hashed. `list()` snapshots the keys (references only, no block data) and yields them in
chunks: a dict cannot be iterated while other threads mutate it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

from nabu_py.blockstore.base import DEFAULT_MAX_BLOCK_SIZE, BlockstoreBase, CidList, Guard
from nabu_py.errors import BlockstoreError
from nabu_py.multiformats.cid import Cid

_CHUNK = 1024


class MemoryBlockstore(BlockstoreBase):
    """A thread-safe in-memory `Blockstore` for tests, caches and ephemeral nodes."""

    def __init__(
        self, *, max_block_size: int = DEFAULT_MAX_BLOCK_SIZE, max_total_bytes: int | None = None
    ) -> None:
        super().__init__(max_block_size)
        if max_total_bytes is not None and max_total_bytes < 0:
            raise ValueError("max_total_bytes must be >= 0")
        self._blocks: dict[Cid, bytes] = {}
        self._total = 0
        self._budget = max_total_bytes
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        """Bytes of block data currently held."""
        return self._total

    def _lookup(self, cid: Cid) -> bytes | None:
        return self._blocks.get(cid)

    def _has(self, cid: Cid) -> bool:
        return cid in self._blocks

    def _size(self, cid: Cid) -> int | None:
        data = self._blocks.get(cid)
        return None if data is None else len(data)

    def _put(self, cid: Cid, data: bytes) -> None:
        self._put_many([(cid, data)])

    def _put_many(self, blocks: list[tuple[Cid, bytes]]) -> None:
        with self._lock:
            new = [(cid, data) for cid, data in blocks if cid not in self._blocks]
            added = sum(len(data) for _, data in new)
            if self._budget is not None and self._total + added > self._budget:
                raise BlockstoreError(
                    f"memory block store full: {self._total} + {added} bytes exceeds {self._budget}"
                )
            for cid, data in new:
                self._blocks[cid] = data
            self._total += added

    def _rm(self, cid: Cid) -> bool:
        with self._lock:
            data = self._blocks.pop(cid, None)
            if data is None:
                return False
            self._total -= len(data)
            return True

    def _chunks(self, guard: Guard) -> Iterator[CidList]:
        def snapshot() -> CidList:
            with self._lock:
                return list(self._blocks)

        keys = guard(snapshot)

        def window(start: int) -> CidList:
            return keys[start : start + _CHUNK]

        for start in range(0, len(keys), _CHUNK):
            yield guard(functools.partial(window, start))

    def _close(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._total = 0
