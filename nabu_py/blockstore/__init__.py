"""Block stores: the `Blockstore` protocol and its implementations (spec/nabu.md §5, spec/peergos.md §8).

Theory of operation
-------------------
Everything above this package (bitswap, the Nabu API, the Peergos home server) depends only on the
`Blockstore` protocol documented in `nabu_py.blockstore.base`: synchronous, thread-safe, verified puts,
atomic per block, streaming `list()`, typed errors from `nabu_py.errors`. Implementations:

- `memory`  `MemoryBlockstore`: a dict (tests, caches, ephemeral nodes).
- `rocksdict` `RocksBlockstore`: one RocksDB database; best for small blocks.
- `files`   `FileBlockstore`: one file per block in Nabu's flatfs layout, atomic temp+fsync+rename.
- `hybrid`  `HybridBlockstore`: RocksDB below `threshold` (64 KiB), files above. **The default**
  (`DEFAULT_KIND`) for persistent nodes: rocksdict holds the GIL during RocksDB calls (fsync
  included), so Peergos' 1 MiB fragments go to files, whose I/O leaves the event loop running (see
  `hybrid` and benchmarks/blockstore.py for the measurements).

`open_blockstore(kind, path)` builds any of them from configuration. Decorators (metadata caching,
filters, type limits, providing; spec/nabu.md §5.5 to §5.8) can wrap any `Blockstore`.
"""

from __future__ import annotations

import os
from typing import Final

from nabu_py.blockstore.base import (
    DEFAULT_MAX_BLOCK_SIZE,
    PEERGOS_MAX_BLOCK_SIZE,
    Blockstore,
    BlockstoreBase,
)
from nabu_py.blockstore.files import FileBlockstore
from nabu_py.blockstore.hybrid import DEFAULT_HYBRID_THRESHOLD, HybridBlockstore
from nabu_py.blockstore.memory import MemoryBlockstore
from nabu_py.blockstore.rocks import RocksBlockstore

KINDS: Final = ("memory", "rocksdict", "files", "hybrid")
"""The store kinds `open_blockstore` understands."""

DEFAULT_KIND: Final = "hybrid"
"""The kind a node uses unless configured otherwise."""


def open_blockstore(
    kind: str = DEFAULT_KIND,
    path: str | os.PathLike[str] | None = None,
    *,
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
    sync: bool = True,
    verify: bool = True,
    create: bool = True,
    threshold: int = DEFAULT_HYBRID_THRESHOLD,
) -> Blockstore:
    """Open (or create) a block store of `kind` at `path`.

    `memory` takes no path; the others need one (a directory). `sync`, `verify` and `create` are
    ignored by `memory`; `threshold` is used by `hybrid` only. Raises `ValueError` for an unknown kind
    or a path/kind mismatch and `BlockstoreError` when the store cannot be opened.
    """
    if kind == "memory":
        if path is not None:
            raise ValueError("a memory block store takes no path")
        return MemoryBlockstore(max_block_size=max_block_size)
    if kind not in KINDS:
        raise ValueError(f"unknown block store kind {kind!r}; expected one of {', '.join(KINDS)}")
    if path is None:
        raise ValueError(f"a {kind} block store needs a path")
    if kind == "rocksdict":
        return RocksBlockstore(path, max_block_size=max_block_size, sync=sync, verify=verify, create=create)
    if kind == "files":
        return FileBlockstore(path, max_block_size=max_block_size, sync=sync, verify=verify, create=create)
    return HybridBlockstore(
        path, threshold=threshold, max_block_size=max_block_size, sync=sync, verify=verify, create=create
    )


__all__ = [
    "DEFAULT_HYBRID_THRESHOLD",
    "DEFAULT_KIND",
    "DEFAULT_MAX_BLOCK_SIZE",
    "KINDS",
    "PEERGOS_MAX_BLOCK_SIZE",
    "Blockstore",
    "BlockstoreBase",
    "FileBlockstore",
    "HybridBlockstore",
    "MemoryBlockstore",
    "RocksBlockstore",
    "open_blockstore",
]
