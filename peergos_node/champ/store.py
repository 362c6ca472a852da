"""The block interface the CHAMP is written against (spec/peergos.md §5.2, §8).

The CHAMP only needs to fetch a node by CID and to store a new node block. Peergos writes every node as a
dag-cbor block named by CIDv1(dag-cbor, sha2-256), signed by the writer and tagged with a transaction;
signing, transactions and hash verification belong to whatever implements these protocols (a client's
buffered network access, a server's block store, or a hash-verifying decorator), not to the tree.

`MemoryBlockStore` is the in-memory implementation used by tests, vectors and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid


@runtime_checkable
class BlockGetter(Protocol):
    """Read access to blocks."""

    def get(self, cid: Cid) -> bytes | None:
        """The block's bytes, or None when the store does not have it."""
        ...


@runtime_checkable
class BlockStore(BlockGetter, Protocol):
    """Read and write access to dag-cbor blocks."""

    def put(self, data: bytes) -> Cid:
        """Store a dag-cbor block and return its CID (CIDv1 dag-cbor sha2-256)."""
        ...


class MemoryBlockStore:
    """A dict of blocks keyed by CID; `puts` counts put calls (benchmarks and tests read it)."""

    __slots__ = ("blocks", "puts")

    def __init__(self) -> None:
        self.blocks: dict[Cid, bytes] = {}
        self.puts = 0

    def get(self, cid: Cid) -> bytes | None:
        """The block, or None."""
        return self.blocks.get(cid)

    def put(self, data: bytes) -> Cid:
        """Store `data` under CIDv1(dag-cbor, sha2-256(data))."""
        cid = Cid.for_block(CODEC_DAG_CBOR, data)
        self.blocks[cid] = bytes(data)
        self.puts += 1
        return cid

    def __len__(self) -> int:
        return len(self.blocks)

    def __contains__(self, cid: object) -> bool:
        return cid in self.blocks

    def __iter__(self) -> Iterator[Cid]:
        return iter(self.blocks)


__all__ = ["BlockGetter", "BlockStore", "MemoryBlockStore"]
