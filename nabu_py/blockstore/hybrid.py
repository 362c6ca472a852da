"""Small blocks in RocksDB, large blocks as files (design.md §5: "plain files for large raw blocks and
rocksdict for small blocks is a sensible split; measure").

Theory of operation
-------------------
`<root>/rocksdb/` is a `RocksBlockstore`, `<root>/blocks/` a `FileBlockstore`. A block of at least
`threshold` bytes goes to the file store, anything smaller to RocksDB. In Peergos the large blocks are
the ~1 MiB raw fragments of file chunks and the small ones are CHAMP and cryptree nodes (spec/peergos.md
§6.4), but the rule is by size only: the storage cost depends on the size, not the codec.

Why (measured by benchmarks/blockstore.py on this machine; see the module docstring of `rocks`):
rocksdict holds the GIL for the whole RocksDB call, fsync included, so a 1 MiB put into RocksDB stalls
every other Python thread: a 1 ms timer in the main thread (think: a trio event loop waiting on
`to_thread`) woke 5-12 ms late at the median while a worker put 1 MiB blocks into RocksDB with
`sync=True`, and 0.1 ms late (as when idle) while it wrote them as files, because file I/O and
hashlib release the GIL. That result held in every run; raw throughput did not: for 1 MiB puts, files
and RocksDB came out within about 2.5x of each other either way between runs, because creating files
is the part of this shared disk whose latency swings most (30 us to 5 ms). Verified reads are on par
(sha2-256 dominates), unverified file reads are faster. For small blocks RocksDB wins by one to two
orders of magnitude. Beyond the benchmark, large values in RocksDB are rewritten by every compaction
that passes over them and `list()` has to read them to walk the keys; as files, they are written once.

Each put goes to one backend, which writes it atomically, so the hybrid is atomic too. A large put
first checks RocksDB (a bloom-filtered lookup, microseconds), so lowering `threshold` between runs
never duplicates a block. A small put does not check the file store (that costs a base32 key and a
`stat`, as much again as the RocksDB put itself): after *raising* the threshold, re-putting a block
that was stored as a file stores a second copy in RocksDB. That is harmless: `get`/`has`/`size` ask
RocksDB first and then the file store, `rm` removes from both, and `list()` walks RocksDB and then
the files, skipping any CID also in RocksDB, so every stored block is listed exactly once. The two
backends are owned and closed by the hybrid; their own lifecycle guards are bypassed in favour of the
hybrid's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

from nabu_py.blockstore.base import DEFAULT_MAX_BLOCK_SIZE, BlockstoreBase, CidList, Guard
from nabu_py.blockstore.files import FileBlockstore
from nabu_py.blockstore.rocks import RocksBlockstore
from nabu_py.errors import BlockstoreError
from nabu_py.multiformats.cid import Cid

DEFAULT_HYBRID_THRESHOLD = 64 * 1024
"""Blocks of at least this many bytes are stored as files.

Peergos blocks are either small nodes (up to a few KiB) or ~1 MiB fragments, so any value between
~16 KiB and ~512 KiB splits them the same way. 64 KiB is where puts crossed over (RocksDB ahead below,
files ahead above) when the disk was quiet; under contention file creation costs milliseconds and the
crossover moves up (the benchmark's size sweep shows the current state).
"""


class HybridBlockstore(BlockstoreBase):
    """A `Blockstore` keeping blocks smaller than `threshold` in RocksDB and larger ones in files.

    `sync` / `verify` / `create` apply to both backends (see `RocksBlockstore` and `FileBlockstore`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        threshold: int = DEFAULT_HYBRID_THRESHOLD,
        max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
        sync: bool = True,
        verify: bool = True,
        create: bool = True,
    ) -> None:
        super().__init__(max_block_size)
        if threshold < 0:
            raise ValueError("threshold must be >= 0")
        self._root = Path(root)
        self._threshold = threshold
        if not self._root.is_dir():
            if not create:
                raise BlockstoreError(f"no hybrid block store at {self._root}")
            try:
                self._root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BlockstoreError(f"cannot create {self._root}: {e}") from e
        self._small = RocksBlockstore(
            self._root / "rocksdb", max_block_size=max_block_size, sync=sync, verify=verify, create=create
        )
        try:
            self._large = FileBlockstore(
                self._root / "blocks", max_block_size=max_block_size, sync=sync, verify=verify, create=create
            )
        except BaseException:
            self._small.close()
            raise

    @property
    def root(self) -> Path:
        """The store's root directory (holding `rocksdb/` and `blocks/`)."""
        return self._root

    @property
    def threshold(self) -> int:
        """Blocks of at least this many bytes are kept as files."""
        return self._threshold

    def _lookup(self, cid: Cid) -> bytes | None:
        data = self._small._lookup(cid)
        return data if data is not None else self._large._lookup(cid)

    def _has(self, cid: Cid) -> bool:
        return self._small._has(cid) or self._large._has(cid)

    def _size(self, cid: Cid) -> int | None:
        size = self._small._size(cid)
        return size if size is not None else self._large._size(cid)

    def _put(self, cid: Cid, data: bytes) -> None:
        if len(data) < self._threshold:
            self._small._put(cid, data)
        elif not self._small._has(cid):
            self._large._put(cid, data)

    def _put_many(self, blocks: list[tuple[Cid, bytes]]) -> None:
        small = [(c, d) for c, d in blocks if len(d) < self._threshold]
        large = [(c, d) for c, d in blocks if len(d) >= self._threshold and not self._small._has(c)]
        if small:
            self._small._put_many(small)
        if large:
            self._large._put_many(large)

    def _rm(self, cid: Cid) -> bool:
        in_small = self._small._rm(cid)
        in_large = self._large._rm(cid)
        return in_small or in_large

    def _not_small(self, chunk: CidList) -> CidList:
        return [cid for cid in chunk if not self._small._has(cid)]

    def _chunks(self, guard: Guard) -> Iterator[CidList]:
        yield from self._small._chunks(guard)
        for chunk in self._large._chunks(guard):
            rest = guard(functools.partial(self._not_small, chunk))
            if rest:
                yield rest

    def _close(self) -> None:
        try:
            self._small.close()
        finally:
            self._large.close()
