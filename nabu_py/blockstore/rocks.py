"""RocksDB block store through `rocksdict` (the embedded default backend; spec/nabu.md §5).

Theory of operation
-------------------
One RocksDB database; key = the CID's binary form, value = the block. RocksDB makes every write
atomic (a torn write-ahead-log record is discarded on recovery: `point_in_time` recovery mode) and
checksums every SST block, so damaged data surfaces as a RocksDB "Corruption" status, which we report
as `CorruptBlock`; with `verify=True` (default) every read is also re-hashed against its CID.

Options are chosen for Peergos' data: blocks are encrypted, so **compression is off** (it would only
burn CPU); a 10-bit **bloom filter** makes the common "don't have it" answer (bitswap and DHT queries
for absent blocks) cheap; the block cache, open files, write buffers, WAL size and info-log files are
all **bounded**; two background jobs (this class of machine has two cores). `put_many` writes through a
**`WriteBatch`** (one WAL record, one fsync with `sync=True`), split into batches of at most
`_BATCH_BYTES` so the batch copy stays bounded. `sync=True` (default) fsyncs the WAL before a write
returns; `sync=False` still survives a process crash (the WAL record is in the OS before `put`
returns) but not a power failure.

`put` first checks the key (bloom filter plus a pinned read, no copy) and skips existing blocks:
receiving a block twice is common in bitswap and rewriting 1 MiB would cost a WAL write and later
compaction. `size` has to read the value (RocksDB keeps no separate length). `list` walks the keys in
order, re-opening an iterator after the last key for each chunk of `_LIST_CHUNK`.

Measured on this machine (benchmarks/blockstore.py): RocksDB is far better than files for small blocks
(one WAL append instead of creating and renaming a file); for 1 MiB values the two are within a small
factor of each other, which way round depending on the run. But **rocksdict holds the GIL for the whole
RocksDB call, fsync included**: while a worker thread puts 1 MiB blocks with `sync=True`, every other
Python thread, including a trio event loop waiting on `to_thread`, stalls (a 1 ms timer woke 5-12 ms
late at the median, against 0.1 ms while the file store wrote). Even a small `sync=True` put holds the
GIL for one WAL fsync; batch with `put_many` (one fsync per batch) where latency matters.
`HybridBlockstore` keeps large blocks in files for this reason.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import rocksdict

from nabu_py.blockstore.base import (
    DEFAULT_MAX_BLOCK_SIZE,
    BlockstoreBase,
    CidList,
    Guard,
    verify_stored,
)
from nabu_py.errors import BlockstoreError, CorruptBlock, DecodeError
from nabu_py.multiformats.cid import Cid

_log = logging.getLogger(__name__)

_BATCH_BYTES = 32 * 1024 * 1024
_LIST_CHUNK = 1024
_DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
_DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024


def _failure(action: str, e: Exception) -> BlockstoreError:
    """Translate a rocksdict exception into our error tree (RocksDB statuses arrive as message text)."""
    msg = str(e)
    if "Corruption" in msg or "checksum mismatch" in msg:
        return CorruptBlock(f"RocksDB {action}: {msg}")
    return BlockstoreError(f"RocksDB {action}: {msg}")


def rocksdb_options(
    *,
    create: bool = True,
    cache_bytes: int = _DEFAULT_CACHE_BYTES,
    write_buffer_bytes: int = _DEFAULT_WRITE_BUFFER_BYTES,
) -> rocksdict.Options:
    """The tuned RocksDB options used by `RocksBlockstore` (also used by the benchmark's baseline)."""
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(create)
    opts.set_compression_type(rocksdict.DBCompressionType.none())
    opts.set_bottommost_compression_type(rocksdict.DBCompressionType.none())
    opts.set_wal_recovery_mode(rocksdict.DBRecoveryMode.point_in_time())
    opts.set_paranoid_checks(True)
    opts.set_max_background_jobs(2)
    opts.set_max_open_files(512)
    opts.set_keep_log_file_num(4)
    opts.set_max_log_file_size(4 * 1024 * 1024)
    opts.set_write_buffer_size(write_buffer_bytes)
    opts.set_max_write_buffer_number(3)
    opts.set_max_total_wal_size(4 * write_buffer_bytes)
    opts.set_level_compaction_dynamic_level_bytes(True)
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(10, False)
    table.set_block_cache(rocksdict.Cache(cache_bytes))
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_block_size(16 * 1024)
    opts.set_block_based_table_factory(table)
    return opts


class RocksBlockstore(BlockstoreBase):
    """A `Blockstore` in one RocksDB database at `path` (a directory; created unless `create=False`).

    `sync`: fsync the WAL before a write returns (durable against power loss). `verify`: re-hash every
    block read. RocksDB's memory stays below about `cache_bytes + 3 * write_buffer_bytes` (block cache,
    up to three memtables) plus index and filter blocks, which live in the cache.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
        sync: bool = True,
        verify: bool = True,
        create: bool = True,
        cache_bytes: int = _DEFAULT_CACHE_BYTES,
        write_buffer_bytes: int = _DEFAULT_WRITE_BUFFER_BYTES,
    ) -> None:
        super().__init__(max_block_size)
        self._path = Path(path)
        self._verify = verify
        self._write_opts = rocksdict.WriteOptions()
        self._write_opts.sync = sync
        if not create and not (self._path / "CURRENT").exists():
            raise BlockstoreError(f"no RocksDB block store at {self._path}")
        opts = rocksdb_options(create=create, cache_bytes=cache_bytes, write_buffer_bytes=write_buffer_bytes)
        try:
            self._db = rocksdict.Rdict(str(self._path), opts)
        except Exception as e:
            raise _failure(f"cannot open {self._path}", e) from e

    @property
    def path(self) -> Path:
        """The database directory."""
        return self._path

    def _lookup(self, cid: Cid) -> bytes | None:
        try:
            data = self._db.get(bytes(cid))
        except Exception as e:
            raise _failure(f"get {cid}", e) from e
        if data is None:
            return None
        if self._verify:
            verify_stored(cid, data)
        return bytes(data)

    def _has(self, cid: Cid) -> bool:
        try:
            return bytes(cid) in self._db
        except Exception as e:
            raise _failure(f"has {cid}", e) from e

    def _size(self, cid: Cid) -> int | None:
        try:
            data = self._db.get(bytes(cid))
        except Exception as e:
            raise _failure(f"size {cid}", e) from e
        return None if data is None else len(data)

    def _put(self, cid: Cid, data: bytes) -> None:
        key = bytes(cid)
        try:
            if key in self._db:
                return
            self._db.put(key, data, self._write_opts)
        except Exception as e:
            raise _failure(f"put {cid}", e) from e

    def _put_many(self, blocks: list[tuple[Cid, bytes]]) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        pending = 0
        try:
            for cid, data in blocks:
                key = bytes(cid)
                if key in self._db:
                    continue
                batch.put(key, data)
                pending += len(key) + len(data)
                if pending >= _BATCH_BYTES:
                    self._db.write(batch, self._write_opts)
                    batch = rocksdict.WriteBatch(raw_mode=True)
                    pending = 0
            if pending:
                self._db.write(batch, self._write_opts)
        except Exception as e:
            raise _failure("batch put", e) from e

    def _rm(self, cid: Cid) -> bool:
        key = bytes(cid)
        try:
            if key not in self._db:
                return False
            self._db.delete(key, self._write_opts)
        except Exception as e:
            raise _failure(f"rm {cid}", e) from e
        return True

    def _chunk_after(self, after: bytes | None) -> tuple[CidList, bytes | None]:
        """Up to `_LIST_CHUNK` CIDs with keys greater than `after`, and the last key seen (None at end).

        Uses a raw iterator so that an I/O error or corruption met while walking is raised
        (`status()`), not mistaken for the end of the data.
        """
        out: CidList = []
        try:
            it = self._db.iter()
            if after is None:
                it.seek_to_first()
            else:
                it.seek(after)
                if it.valid() and it.key() == after:
                    it.next()
            while it.valid():
                key = it.key()
                if not isinstance(key, bytes):
                    raise CorruptBlock(f"RocksDB block store {self._path} holds a non-bytes key")
                try:
                    out.append(Cid.decode(key))
                except DecodeError:
                    _log.warning("ignoring a key that is not a CID in %s: %s", self._path, key.hex()[:80])
                if len(out) >= _LIST_CHUNK:
                    return out, key
                it.next()
            it.status()
        except BlockstoreError:
            raise
        except Exception as e:
            raise _failure("list", e) from e
        return out, None

    def _chunks(self, guard: Guard) -> Iterator[CidList]:
        after: bytes | None = None
        while True:
            chunk, after = guard(functools.partial(self._chunk_after, after))
            if chunk:
                yield chunk
            if after is None:
                return

    def _close(self) -> None:
        try:
            self._db.close()
        except Exception as e:
            raise _failure("close", e) from e
