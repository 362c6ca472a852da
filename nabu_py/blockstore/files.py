"""One file per block, flatfs-style, with atomic durable writes (spec/nabu.md §5.3, fixing §10.21).

Theory of operation
-------------------
Layout (Nabu's `FileBlockstore`, so an existing Nabu/Peergos `blocks/` directory can be opened):
`<root>/<KEY[-3:-1]>/<KEY>.data`, where KEY is RFC 4648 base32, upper case, unpadded, of the **whole
CID's bytes** ("next-to-last/2" sharding: 1024 shard directories; the last character is skipped because
it carries padding bits). Keying by CID rather than by multihash (modern kubo) keeps Nabu's layout; the
price, as in Nabu, is that the same bytes under two codecs are two files. `<root>/SHARDING` records the
shard function like kubo's flatfs and is checked on open.

Writes never expose a partial block (Nabu truncates and writes in place): the block goes to a unique
temporary file in `<root>/.tmp/`, is fsynced, then renamed over the final name (atomic on POSIX), and
the shard directory is fsynced so the new name survives a power failure; `put_many` fsyncs each touched
directory once. New shard directories are fsynced into the root. With `sync=False` the fsyncs are
skipped: still atomic against a process crash (rename is atomic and the kernel keeps the data), but a
power failure may lose recent blocks or leave one that fails verification (reported as `CorruptBlock`,
and repaired by the next `put` of that block, which rewrites any file of the wrong size). Removals are
not fsynced: a block that reappears after a power failure is harmless in a content-addressed store.

An exclusive `flock` on `<root>/.lock` keeps a second process (or a second instance in this process)
out, which makes it safe to empty `.tmp/` (leftovers of a crash) on open. Reads are bounded by
`max_block_size` and verified against the CID (`verify=True`); names in the tree that are not
canonical block keys are ignored by `list()` with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import itertools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from nabu_py.blockstore.base import (
    DEFAULT_MAX_BLOCK_SIZE,
    BlockstoreBase,
    CidList,
    Guard,
    verify_stored,
)
from nabu_py.errors import BlockstoreError, CorruptBlock, DecodeError
from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import Cid

_log = logging.getLogger(__name__)

SHARDING = "/repo/flatfs/shard/v1/next-to-last/2"
"""Contents of `<root>/SHARDING` (kubo flatfs notation for Nabu's shard function)."""

_SUFFIX = ".data"
_TMP_DIR = ".tmp"
_LOCK_FILE = ".lock"
_B32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_OPEN_FLAGS_RD = os.O_RDONLY | os.O_CLOEXEC
_OPEN_FLAGS_WR = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


_B32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_PAIRS = [a + b for a in _B32_ALPHABET for b in _B32_ALPHABET]  # one entry per 10 bits


def block_key(cid: Cid) -> str:
    """Nabu's `hashToKey`: upper-case unpadded RFC 4648 base32 of the CID bytes.

    On every operation's path, so encoded through one big int and a 10-bit table: about twice as fast
    as `base64.b32encode`, which is pure Python.
    """
    raw = bytes(cid)
    n = len(raw)
    pad = -n % 5
    v = int.from_bytes(raw + bytes(pad), "big")
    top = 10 * ((n + pad) // 5 * 4 - 1)
    pairs = _B32_PAIRS
    return "".join([pairs[(v >> shift) & 1023] for shift in range(top, -10, -10)])[: (n * 8 + 4) // 5]


def block_relpath(cid: Cid) -> str:
    """The block's path relative to the store root, e.g. `SC/AFKREI...SCA.data`."""
    key = block_key(cid)
    return f"{key[-3:-1]}/{key}{_SUFFIX}"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FileBlockstore(BlockstoreBase):
    """A `Blockstore` keeping each block in its own file under `root` (created unless `create=False`).

    `sync`: fsync data and directories before a write returns (durable against power loss).
    `verify`: re-hash every block read.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
        sync: bool = True,
        verify: bool = True,
        create: bool = True,
    ) -> None:
        super().__init__(max_block_size)
        self._root = os.fspath(Path(root).absolute())
        self._sync = sync
        self._verify = verify
        self._tmp = os.path.join(self._root, _TMP_DIR)
        self._seq = itertools.count()
        self._lock_fd = -1
        try:
            self._open(create)
        except OSError as e:
            self._release_lock()
            raise BlockstoreError(f"cannot open file block store {self._root}: {e}") from e
        except BaseException:
            self._release_lock()
            raise

    def _open(self, create: bool) -> None:
        if not os.path.isdir(self._root):
            if not create:
                raise BlockstoreError(f"no file block store at {self._root}")
            self._makedirs(self._root)
        self._lock_fd = os.open(
            os.path.join(self._root, _LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BlockstoreError(f"file block store {self._root} is in use by another opener") from None
            raise
        sharding = os.path.join(self._root, "SHARDING")
        try:
            with open(sharding, encoding="utf-8", errors="replace") as f:
                found = f.read(256).strip()
            if found != SHARDING:
                raise BlockstoreError(f"{self._root} uses shard function {found!r}, not {SHARDING!r}")
        except FileNotFoundError:
            self._write_small(sharding, (SHARDING + "\n").encode())
        if os.path.isdir(self._tmp):
            for name in os.listdir(self._tmp):  # leftovers of a crashed writer; nobody else holds the lock
                os.unlink(os.path.join(self._tmp, name))
        else:
            self._makedirs(self._tmp)

    def _makedirs(self, path: str) -> None:
        """Create `path` (and parents), fsyncing each new entry into its parent."""
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            self._makedirs(parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            return
        if self._sync:
            _fsync_dir(parent)

    def _write_small(self, path: str, data: bytes) -> None:
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, data)
            if self._sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if self._sync:
            _fsync_dir(os.path.dirname(path))

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    @property
    def root(self) -> Path:
        """The store's root directory."""
        return Path(self._root)

    def path_of(self, cid: Cid) -> Path:
        """Where the block with this CID lives (whether or not it is present)."""
        return Path(self._root, block_relpath(cid))

    # ---- hooks ------------------------------------------------------------------------------------
    def _path(self, cid: Cid) -> tuple[str, str]:
        key = block_key(cid)
        shard = key[-3:-1]
        return shard, f"{self._root}/{shard}/{key}{_SUFFIX}"

    def _lookup(self, cid: Cid) -> bytes | None:
        _, path = self._path(cid)
        try:
            fd = os.open(path, _OPEN_FLAGS_RD)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BlockstoreError(f"cannot open block {cid}: {e}") from e
        try:
            size = os.fstat(fd).st_size
            if size > self._max_block_size:
                raise CorruptBlock(
                    f"stored block {cid} has {size} bytes, more than the limit of {self._max_block_size}"
                )
            parts = []
            remaining = size
            while remaining > 0:
                part = os.read(fd, remaining)
                if not part:
                    break
                parts.append(part)
                remaining -= len(part)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        except OSError as e:
            raise CorruptBlock(f"cannot read stored block {cid}: {e}") from e
        finally:
            os.close(fd)
        if self._verify:
            verify_stored(cid, data)
        elif len(data) != size:
            raise CorruptBlock(f"stored block {cid} changed size while being read")
        return data

    def _stat_size(self, path: str, cid: Cid) -> int | None:
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BlockstoreError(f"cannot stat block {cid}: {e}") from e

    def _has(self, cid: Cid) -> bool:
        return self._stat_size(self._path(cid)[1], cid) is not None

    def _size(self, cid: Cid) -> int | None:
        return self._stat_size(self._path(cid)[1], cid)

    def _write_one(self, cid: Cid, data: bytes) -> str | None:
        """Atomically place one block; return its shard directory if it was written, None if present."""
        shard, path = self._path(cid)
        if self._stat_size(path, cid) == len(data):
            return None  # already stored (a wrong-size file is a torn write after power loss: replace it)
        shard_dir = f"{self._root}/{shard}"
        tmp = f"{self._tmp}/{os.path.basename(path)}.{next(self._seq)}"
        try:
            fd = os.open(tmp, _OPEN_FLAGS_WR, 0o644)
            try:
                _write_all(fd, data)
                if self._sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(tmp, path)
            except FileNotFoundError:  # first block of this shard: create the directory, then retry
                self._makedirs(shard_dir)
                os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return shard_dir

    def _put(self, cid: Cid, data: bytes) -> None:
        try:
            shard_dir = self._write_one(cid, data)
            if shard_dir is not None and self._sync:
                _fsync_dir(shard_dir)
        except OSError as e:
            raise BlockstoreError(f"cannot store block {cid}: {e}") from e

    def _put_many(self, blocks: list[tuple[Cid, bytes]]) -> None:
        touched: set[str] = set()
        try:
            for cid, data in blocks:
                shard_dir = self._write_one(cid, data)
                if shard_dir is not None:
                    touched.add(shard_dir)
            if self._sync:
                for shard_dir in sorted(touched):
                    _fsync_dir(shard_dir)
        except OSError as e:
            raise BlockstoreError(f"cannot store blocks: {e}") from e

    def _rm(self, cid: Cid) -> bool:
        try:
            os.unlink(self._path(cid)[1])
        except FileNotFoundError:
            return False
        except OSError as e:
            raise BlockstoreError(f"cannot remove block {cid}: {e}") from e
        return True

    def _shard_chunk(self, shard: str) -> CidList:
        out: CidList = []
        try:
            names = os.listdir(f"{self._root}/{shard}")
        except (FileNotFoundError, NotADirectoryError):
            return out
        except OSError as e:
            raise BlockstoreError(f"cannot list {self._root}/{shard}: {e}") from e
        for name in names:
            if not name.endswith(_SUFFIX):
                _log.warning("ignoring %s/%s/%s: not a block file", self._root, shard, name)
                continue
            key = name[: -len(_SUFFIX)]
            try:
                if len(key) < 3 or key[-3:-1] != shard or not _B32.issuperset(key):
                    raise DecodeError("not a canonical block key")
                cid = Cid.decode(multibase.b32decode(key))
                if block_key(cid) != key:
                    raise DecodeError("not a canonical block key")
            except DecodeError:
                _log.warning("ignoring %s/%s/%s: not a block key", self._root, shard, name)
                continue
            out.append(cid)
        return out

    def _shards(self) -> list[str]:
        try:
            names = os.listdir(self._root)
        except OSError as e:
            raise BlockstoreError(f"cannot list {self._root}: {e}") from e
        return sorted(n for n in names if len(n) == 2 and _B32.issuperset(n))

    def _chunks(self, guard: Guard) -> Iterator[CidList]:
        for shard in guard(self._shards):
            chunk = guard(functools.partial(self._shard_chunk, shard))
            if chunk:
                yield chunk

    def _close(self) -> None:
        self._release_lock()
