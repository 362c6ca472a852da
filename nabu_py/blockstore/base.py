"""The block store contract and the machinery every implementation shares (spec/nabu.md §5).

Theory of operation
-------------------
A block store maps CIDs to immutable blocks. `Blockstore` is the `typing.Protocol` the rest of nabu_py
and peergos_node program against; `BlockstoreBase` implements everything that is the same in every
store so that the concrete stores (`memory`, `rocks`, `files`, `hybrid`) only supply a handful of
storage hooks (`_lookup`, `_has`, `_put`, `_put_many`, `_rm`, `_size`, `_chunks`, `_close`):

- **Validation before storage.** `put`/`put_many` check the size limit (`BlockTooLarge`) and the CID's
  hash (`HashMismatch`, a `DecodeError`: a peer or client sent the wrong bytes) *before* anything is
  written, outside any lock. `put_block` computes the CIDv1 sha2-256 itself, like Nabu's `put(bytes,
  codec)`, so it skips the re-hash.
- **Identity CIDs** carry their content inline: they are always present, never stored, never listed;
  `rm` of one returns False.
- **Lifecycle.** Every operation registers itself as in flight under a condition variable; `close()`
  marks the store closed (new operations raise `BlockstoreClosed`), waits for the in-flight ones, then
  releases the backend exactly once. So a trio task that calls `close()` while worker threads are still
  inside `get` never pulls a database out from under them. `list()` is a generator that holds no
  registration while it is suspended: it fetches bounded chunks (one registration per chunk), so an
  abandoned iterator cannot block `close()` and a closed store ends the iteration with
  `BlockstoreClosed`.
- **Reads are verified** (persistent stores, `verify=True` by default): a block that no longer hashes to
  its CID, or that the backend reports as damaged, raises `CorruptBlock` (never a backend's own
  exception type), so bit rot and torn writes are reported rather than served.

Threading: every method may be called from any thread concurrently with any other (trio code calls
small operations directly and large ones through `trio.to_thread.run_sync`). Operations are
synchronous; none of them blocks on another store operation except `close()`. Beware that rocksdict
keeps the GIL during RocksDB calls (fsync included), so RocksDB work stalls the event loop even from a
worker thread; file I/O and hashing release the GIL (measurements in `rocks` and `hybrid`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Protocol, Self, TypeVar, runtime_checkable

from nabu_py.errors import BlockNotFound, BlockstoreClosed, BlockTooLarge, CorruptBlock, DecodeError
from nabu_py.multiformats.cid import Cid

DEFAULT_MAX_BLOCK_SIZE = 2 * 1024 * 1024
"""Nabu's limit for API puts and bitswap blocks (spec/nabu.md §5.9)."""

PEERGOS_MAX_BLOCK_SIZE = 1024 * 1024 + 100
"""Peergos' own block limit: 1 MiB of fragment plus the BAT prefix (spec/peergos.md §8)."""

BytesLike = bytes | bytearray | memoryview
CidList = list[Cid]
"""A bounded chunk of CIDs, as produced by the `_chunks` hook."""

T = TypeVar("T")


class Guard(Protocol):
    """Runs `fetch()` while it is registered as an operation in flight (`BlockstoreBase._guarded`)."""

    def __call__(self, fetch: Callable[[], T], /) -> T: ...


@runtime_checkable
class Blockstore(Protocol):
    """A thread-safe, synchronous store of immutable content-addressed blocks.

    Contract (every implementation passes `tests/unit/nabu_py/blockstore/test_conformance.py`):

    - `put(cid, data)` stores `data` under `cid` after checking `len(data) <= max_block_size`
      (`BlockTooLarge`) and that `data` hashes to `cid` (`HashMismatch`; unsupported hash functions
      raise `DecodeError`). It is idempotent and atomic: a reader, or a process reopening the store
      after a crash, sees either the whole block or no block, never a prefix. Persistent stores opened
      with `sync=True` (the default) return only once the block is durable on disk; with `sync=False`
      it survives a process crash, but after a power failure it may be lost or (file stores) read
      back as `CorruptBlock` — never served wrong while reads are verified.
    - `put_many(blocks)` validates every block first, so nothing is written if any block is invalid;
      each block is then stored atomically (the batch as a whole need not be).
    - `put_block(codec, data)` stores a block under its CIDv1 sha2-256 and returns that CID.
    - `get(cid)` returns the block or raises `BlockNotFound`; damaged stored data raises `CorruptBlock`.
    - `has(cid)`, `size(cid)` (`None` when absent) and `rm(cid)` (True when a block was removed) are
      cheap: none of them reads a whole block unless the backend has no other way (see each store).
    - Identity-multihash CIDs are always present with their inline content and never stored or listed.
    - `list()` streams the stored CIDs in bounded chunks without materialising the store. A block
      present for the whole iteration is yielded exactly once; blocks added or removed meanwhile may
      or may not be.
    - Every method is safe to call from several threads at once. `close()` is idempotent, waits for
      operations in flight and makes later calls raise `BlockstoreClosed`. Stores are context managers.
    """

    @property
    def max_block_size(self) -> int:
        """The largest block (in bytes) this store accepts."""
        ...

    @property
    def closed(self) -> bool:
        """True once `close()` has been called."""
        ...

    def has(self, cid: Cid) -> bool:
        """True if the block is present."""
        ...

    def get(self, cid: Cid) -> bytes:
        """The block's bytes; `BlockNotFound` if absent, `CorruptBlock` if damaged."""
        ...

    def size(self, cid: Cid) -> int | None:
        """The block's size in bytes, or None if absent."""
        ...

    def put(self, cid: Cid, data: BytesLike) -> None:
        """Verify and store one block (idempotent, atomic)."""
        ...

    def put_block(self, codec: int, data: BytesLike) -> Cid:
        """Store `data` under its CIDv1 sha2-256 with `codec`; return the CID."""
        ...

    def put_many(self, blocks: Iterable[tuple[Cid, BytesLike]]) -> None:
        """Verify every block, then store them all (each atomically)."""
        ...

    def rm(self, cid: Cid) -> bool:
        """Remove a block; True if it was present."""
        ...

    def list(self) -> Iterator[Cid]:
        """Stream the CIDs of the stored blocks (identity CIDs excluded)."""
        ...

    def close(self) -> None:
        """Release the backend after operations in flight finish; idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _as_bytes(data: BytesLike) -> bytes:
    """Return immutable bytes (a copy for bytearray/memoryview, so callers cannot mutate after checks)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"block data must be bytes-like, not {type(data).__name__}")


def _require_cid(cid: object) -> Cid:
    if not isinstance(cid, Cid):
        raise TypeError(f"expected a Cid, not {type(cid).__name__}")
    return cid


def verify_stored(cid: Cid, data: bytes) -> bytes:
    """Check data read back from a backend; raise `CorruptBlock` if it no longer matches its CID."""
    try:
        cid.verify(data)
    except DecodeError as e:  # HashMismatch, or a multihash we could not have stored
        raise CorruptBlock(f"stored block {cid} is corrupt: {e}") from None
    return data


class BlockstoreBase:
    """Shared implementation of the `Blockstore` contract; subclasses provide the storage hooks."""

    def __init__(self, max_block_size: int = DEFAULT_MAX_BLOCK_SIZE) -> None:
        if not isinstance(max_block_size, int) or max_block_size < 1:
            raise ValueError("max_block_size must be a positive int")
        self._max_block_size = max_block_size
        self._state = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._closed = False
        self._released = threading.Event()

    # ---- storage hooks (called with the operation registered; CIDs are never identity) ------------
    def _lookup(self, cid: Cid) -> bytes | None:
        raise NotImplementedError

    def _has(self, cid: Cid) -> bool:
        raise NotImplementedError

    def _size(self, cid: Cid) -> int | None:
        raise NotImplementedError

    def _put(self, cid: Cid, data: bytes) -> None:
        raise NotImplementedError

    def _put_many(self, blocks: list[tuple[Cid, bytes]]) -> None:
        for cid, data in blocks:
            self._put(cid, data)

    def _rm(self, cid: Cid) -> bool:
        raise NotImplementedError

    def _chunks(self, guard: Guard) -> Iterator[CidList]:
        """Yield the stored CIDs in bounded chunks, fetching each chunk through `guard`."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release backend resources; called once, after every operation in flight has finished."""

    # ---- lifecycle ------------------------------------------------------------------------------------
    @property
    def max_block_size(self) -> int:
        """The largest block (in bytes) this store accepts."""
        return self._max_block_size

    @property
    def closed(self) -> bool:
        """True once `close()` has been called."""
        return self._closed

    def _enter(self) -> None:
        with self._state:
            if self._closed:
                raise BlockstoreClosed(f"{type(self).__name__} is closed")
            self._in_flight += 1

    def _leave(self) -> None:
        with self._state:
            self._in_flight -= 1
            if self._in_flight == 0 and self._closed:
                self._state.notify_all()

    def _guarded(self, fetch: Callable[[], T]) -> T:
        self._enter()
        try:
            return fetch()
        finally:
            self._leave()

    def _check_open(self) -> None:
        if self._closed:
            raise BlockstoreClosed(f"{type(self).__name__} is closed")

    def close(self) -> None:
        """Refuse new operations, wait for those in flight, release the backend; idempotent."""
        with self._state:
            first = not self._closed
            self._closed = True
            while self._in_flight:
                self._state.wait()
        if first:
            try:
                self._close()
            finally:
                self._released.set()
        else:
            self._released.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- validation -----------------------------------------------------------------------------------
    def _checked(self, cid: Cid, data: BytesLike) -> bytes:
        _require_cid(cid)
        block = _as_bytes(data)
        if len(block) > self._max_block_size:
            raise BlockTooLarge(
                f"block of {len(block)} bytes exceeds this store's limit of {self._max_block_size} bytes"
            )
        cid.verify(block)
        return block

    # ---- public API -------------------------------------------------------------------------------------
    def has(self, cid: Cid) -> bool:
        """True if the block is present (identity CIDs always are)."""
        _require_cid(cid)
        self._enter()
        try:
            return True if cid.is_identity else self._has(cid)
        finally:
            self._leave()

    def get(self, cid: Cid) -> bytes:
        """The block's bytes; `BlockNotFound` if absent, `CorruptBlock` if damaged."""
        _require_cid(cid)
        self._enter()
        try:
            data = cid.digest if cid.is_identity else self._lookup(cid)
        finally:
            self._leave()
        if data is None:
            raise BlockNotFound(str(cid))
        return data

    def size(self, cid: Cid) -> int | None:
        """The block's size in bytes, or None if absent."""
        _require_cid(cid)
        self._enter()
        try:
            return len(cid.digest) if cid.is_identity else self._size(cid)
        finally:
            self._leave()

    def put(self, cid: Cid, data: BytesLike) -> None:
        """Verify and store one block; idempotent and atomic (see the `Blockstore` contract)."""
        block = self._checked(cid, data)
        self._enter()
        try:
            if not cid.is_identity:
                self._put(cid, block)
        finally:
            self._leave()

    def put_block(self, codec: int, data: BytesLike) -> Cid:
        """Store `data` under its CIDv1 sha2-256 with `codec` (Nabu's `put(bytes, codec)`)."""
        block = _as_bytes(data)
        if len(block) > self._max_block_size:
            raise BlockTooLarge(
                f"block of {len(block)} bytes exceeds this store's limit of {self._max_block_size} bytes"
            )
        cid = Cid.for_block(codec, block)
        self._enter()
        try:
            self._put(cid, block)
        finally:
            self._leave()
        return cid

    def put_many(self, blocks: Iterable[tuple[Cid, BytesLike]]) -> None:
        """Verify every block, then store them (each atomically; duplicates and identity CIDs skipped).

        The argument is materialised as a list of references: callers bound their batches (Peergos
        requests carry at most 1 MiB + 100 bytes of blocks).
        """
        checked: dict[Cid, bytes] = {}
        for cid, data in blocks:
            block = self._checked(cid, data)
            if not cid.is_identity:
                checked[cid] = block
        self._enter()
        try:
            if checked:
                self._put_many(list(checked.items()))
        finally:
            self._leave()

    def rm(self, cid: Cid) -> bool:
        """Remove a block; True if it was present (identity CIDs are never stored: False)."""
        _require_cid(cid)
        self._enter()
        try:
            return False if cid.is_identity else self._rm(cid)
        finally:
            self._leave()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {state}>"

    def list(self) -> Iterator[Cid]:
        """Stream the stored CIDs in bounded chunks (identity CIDs are never stored, so never listed)."""
        self._check_open()
        for chunk in self._chunks(self._guarded):
            yield from chunk
