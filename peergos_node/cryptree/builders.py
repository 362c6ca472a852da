"""Whole files and directories as located cryptree nodes (spec/peergos.md §6.5, §6.6; Java
`FileUploader.encryptChunk`, `CryptreeNode.addChildrenAndCommit`).

Theory of operation
-------------------
`FileEncryptor` holds what every chunk of one file shares — base key (= the capability's read key and
the file's parent key), data key, properties with the stream secret, the first chunk's location, the link
to the parent directory, the hash tree, the owner's mirror BAT id — and turns chunk `i`'s bytes into the
node to store at chunk `i`'s location, exactly as `FileUploader.encryptChunk` does: every chunk carries
the parent link and the full properties (a chunk whose index is a multiple of 1024 gets the hash-tree
branch covering it), FromBase points at the next chunk derived from the stream secret, and the random
draws follow Java's order (including the one base-key nonce Java draws and never uses, so that recorded
traces replay exactly).

`create_directory` writes a directory with any number of children: the first chunk holds up to 500
and each further chunk (`.subsequent-dir-chunk`, `FileProperties.EMPTY`, no writer link) sits at its
predecessor's FromBase next-chunk location with that BAT, under the same base and parent keys, and
points on to a fresh random location — what Peergos' `addChildrenAndCommit` produces when a directory
overflows.

Nothing here does I/O: the caller stores each `LocatedNode`'s block at its map key (signed by the
writer) and its fragment blocks in the block store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.public_key_hash import SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.capabilities import MAP_KEY_BYTES
from peergos_node.cryptree.chunks import (
    MAX_CHILD_LINKS_PER_CHUNK,
    ChunkLocation,
    chunk_location,
    next_chunk_location,
    split_children,
)
from peergos_node.cryptree.fragments import Fragment
from peergos_node.cryptree.node import (
    CryptreeNode,
    NodeWithFragments,
    SymmetricLinkToSigner,
    create_dir,
    create_file_chunk,
)
from peergos_node.cryptree.properties import CHUNK_SIZE, EMPTY, FileProperties, HashTree
from peergos_node.cryptree.relative import NamedRelativeCapability, RelativeCapability

HASH_BRANCH_EVERY = 1024
"""Chunks whose index is a multiple of this carry their hash-tree branch."""


@dataclass(frozen=True)
class LocatedNode:
    """A node to store at `location` in the writer's CHAMP, with its fragment blocks."""

    location: ChunkLocation
    node: CryptreeNode
    fragments: tuple[Fragment, ...] = ()

    @classmethod
    def of(cls, location: ChunkLocation, built: NodeWithFragments) -> LocatedNode:
        """Place a freshly built node."""
        return cls(location, built.node, built.fragments)

    @property
    def block(self) -> bytes:
        """The node's dag-cbor block."""
        return self.node.serialize()

    @property
    def cid(self) -> Cid:
        """The node block's CID."""
        return self.node.cid()


@dataclass(frozen=True)
class FileEncryptor:
    """Encrypts the chunks of one file (Java `FileUploader`); pure, so chunks may be done in any order."""

    base_key: SymmetricKey = dc_field(repr=False)
    data_key: SymmetricKey = dc_field(repr=False)
    properties: FileProperties
    first: ChunkLocation
    parent_link: RelativeCapability | None
    hash_tree: HashTree | None = None
    mirror_bat_id: BatId | None = None
    signer_link: SymmetricLinkToSigner | None = None

    def __post_init__(self) -> None:
        if self.properties.stream_secret is None or self.properties.is_directory:
            raise ValueError("a file written in chunks needs properties with a stream secret")
        if self.base_key.key == self.data_key.key:
            raise ValueError("a file's base key and data key must differ")

    @property
    def stream_secret(self) -> bytes:
        """The secret that chains chunk locations."""
        secret = self.properties.stream_secret
        if secret is None:  # excluded by __post_init__
            raise ValueError("no stream secret")
        return secret

    @property
    def chunk_count(self) -> int:
        """Number of chunks (at least 1)."""
        return self.properties.chunk_count

    def location(self, index: int) -> ChunkLocation:
        """Where chunk `index` is stored."""
        return chunk_location(self.stream_secret, self.first, index * CHUNK_SIZE)

    def chunk_length(self, index: int) -> int:
        """How many bytes chunk `index` holds."""
        if not 0 <= index < self.chunk_count:
            raise ValueError(f"chunk {index} is outside a file of {self.chunk_count} chunks")
        return min(CHUNK_SIZE, self.properties.size - index * CHUNK_SIZE)

    def chunk_properties(self, index: int) -> FileProperties:
        """The properties stored with chunk `index` (with its hash branch every 1024 chunks)."""
        if index % HASH_BRANCH_EVERY:
            return self.properties
        return self.properties.with_hash(None if self.hash_tree is None else self.hash_tree.branch(index))

    def encrypt_chunk(
        self,
        index: int,
        data: bytes | memoryview,
        rng: Rng = SYSTEM_RNG,
        location: ChunkLocation | None = None,
    ) -> LocatedNode:
        """The node (and fragments) of chunk `index`; pass `location` when the caller already chained it."""
        if len(data) != self.chunk_length(index):
            raise ValueError(f"chunk {index} must hold {self.chunk_length(index)} bytes, not {len(data)}")
        self.base_key.create_nonce(rng)  # FileUploader.encryptChunk draws a nonce it never uses
        here = location or self.location(index)
        nxt = next_chunk_location(self.stream_secret, here)
        built = create_file_chunk(
            base_key=self.base_key,
            data_key=self.data_key,
            properties=self.chunk_properties(index),
            data=data,
            next_chunk=RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, self.base_key),
            parent_link=self.parent_link,
            inline_bat=here.bat,
            mirror_bat_id=self.mirror_bat_id,
            signer_link=self.signer_link,
            rng=rng,
        )
        return LocatedNode.of(here, built)

    def encrypt_all(self, data: bytes | memoryview, rng: Rng = SYSTEM_RNG) -> Iterator[LocatedNode]:
        """Every chunk of the file's bytes, in order (each chunk built when the iterator reaches it)."""
        if len(data) != self.properties.size:
            raise ValueError("data length differs from the properties' size")
        view = memoryview(data)
        location = self.first
        for index in range(self.chunk_count):
            piece = view[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
            yield self.encrypt_chunk(index, piece, rng, location)
            location = next_chunk_location(self.stream_secret, location)


def random_location(rng: Rng = SYSTEM_RNG) -> ChunkLocation:
    """A fresh random map key and BAT (drawn in that order, as Peergos does)."""
    map_key = rng.random_bytes(MAP_KEY_BYTES)
    return ChunkLocation(map_key, Bat.random(rng))


def create_overflow_chunk(
    *,
    rbase_key: SymmetricKey,
    parent_key: SymmetricKey,
    parent_link: RelativeCapability | None,
    children: Sequence[NamedRelativeCapability],
    location: ChunkLocation,
    mirror_bat_id: BatId | None = None,
    rng: Rng = SYSTEM_RNG,
) -> LocatedNode:
    """A `.subsequent-dir-chunk` holding more children of a full directory, stored at `location` (the
    previous chunk's next-chunk location). Draws its own next location first, as Peergos does."""
    return _overflow_chunk(rbase_key, parent_key, parent_link, children, location, mirror_bat_id, rng)[0]


def _overflow_chunk(
    rbase_key: SymmetricKey,
    parent_key: SymmetricKey,
    parent_link: RelativeCapability | None,
    children: Sequence[NamedRelativeCapability],
    location: ChunkLocation,
    mirror_bat_id: BatId | None,
    rng: Rng,
) -> tuple[LocatedNode, ChunkLocation]:
    nxt = random_location(rng)
    built = create_dir(
        rbase_key=rbase_key,
        parent_key=parent_key,
        properties=EMPTY,
        children=children,
        next_chunk=RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, rbase_key),
        parent_link=parent_link,
        inline_bat=location.bat,
        mirror_bat_id=mirror_bat_id,
        rng=rng,
    )
    return LocatedNode.of(location, built), nxt


def create_directory(
    *,
    rbase_key: SymmetricKey,
    parent_key: SymmetricKey,
    properties: FileProperties,
    children: Sequence[NamedRelativeCapability],
    location: ChunkLocation,
    next_chunk: ChunkLocation,
    parent_link: RelativeCapability | None,
    mirror_bat_id: BatId | None = None,
    wbase_key: SymmetricKey | None = None,
    signer: SigningPrivateKeyAndPublicHash | None = None,
    rng: Rng = SYSTEM_RNG,
    per_chunk: int = MAX_CHILD_LINKS_PER_CHUNK,
) -> list[LocatedNode]:
    """A directory as its chunks: the first at `location` pointing to `next_chunk`, then one overflow chunk
    per further 500 children."""
    groups = split_children(children, per_chunk)
    first = create_dir(
        rbase_key=rbase_key,
        parent_key=parent_key,
        properties=properties,
        children=groups[0],
        next_chunk=RelativeCapability.subsequent_chunk(next_chunk.map_key, next_chunk.bat, rbase_key),
        parent_link=parent_link,
        inline_bat=location.bat,
        mirror_bat_id=mirror_bat_id,
        wbase_key=wbase_key,
        signer=signer,
        rng=rng,
    )
    chunks = [LocatedNode.of(location, first)]
    here = next_chunk
    for group in groups[1:]:
        overflow, here = _overflow_chunk(rbase_key, parent_key, parent_link, group, here, mirror_bat_id, rng)
        chunks.append(overflow)
    return chunks


__all__ = [
    "HASH_BRANCH_EVERY",
    "FileEncryptor",
    "LocatedNode",
    "create_directory",
    "create_overflow_chunk",
    "random_location",
]
