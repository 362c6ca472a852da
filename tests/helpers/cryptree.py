"""Fixtures for cryptree tests: deterministic keys, sample files and directories, a recording Rng."""

from __future__ import annotations

from dataclasses import dataclass

from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng, Rng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey, SymmetricLink
from peergos_node.cryptree.chunks import ChunkLocation
from peergos_node.cryptree.node import NodeWithFragments, create_dir, create_file_chunk
from peergos_node.cryptree.properties import FileProperties, Timestamp
from peergos_node.cryptree.relative import NamedRelativeCapability, RelativeCapability

SEED = DeterministicRng("cryptree-fixtures")
OWNER_PAIR = SigningKeyPair.random(SEED)
WRITER_PAIR = SigningKeyPair.random(SEED)
OTHER_PAIR = SigningKeyPair.random(SEED)
OWNER = PublicKeyHash.of(OWNER_PAIR.public)
WRITER = PublicKeyHash.of(WRITER_PAIR.public)
OTHER = PublicKeyHash.of(OTHER_PAIR.public)
SIGNER = SigningPrivateKeyAndPublicHash.of(WRITER_PAIR)
MIRROR = BatId.sha256(Bat.random(SEED))
MODIFIED = Timestamp.parse("2024-03-04T05:06:07.123456789")
CREATED = Timestamp.parse("2023-01-02T03:04:05")


class RecordingRng:
    """A deterministic Rng that remembers every draw, in order (to write vector files)."""

    def __init__(self, seed: str) -> None:
        self._inner = DeterministicRng(seed)
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        out = self._inner.random_bytes(n)
        self.draws.append(out)
        return out


def keys(rng: Rng, n: int) -> list[SymmetricKey]:
    """`n` fresh symmetric keys."""
    return [SymmetricKey.random(rng) for _ in range(n)]


def location(rng: Rng) -> ChunkLocation:
    """A random map key and BAT."""
    return ChunkLocation(rng.random_bytes(32), Bat.random(rng))


def file_props(size: int, stream_secret: bytes | None, name: str = "data.bin") -> FileProperties:
    """Properties of a test file."""
    return FileProperties.file(
        name, size, MODIFIED, "application/octet-stream", stream_secret, created=CREATED
    )


def children(
    rng: Rng, dir_write_key: SymmetricKey, count: int, prefix: str = "file"
) -> list[NamedRelativeCapability]:
    """`count` child links with write links from `dir_write_key` (every third a directory, every fifth in
    another writer's space, every seventh without a creation time)."""
    out = []
    for i in range(count):
        read, write = SymmetricKey.random(rng), SymmetricKey.random(rng)
        link = SymmetricLink.from_pair(dir_write_key, write, rng)
        loc = location(rng)
        writer = OTHER if i % 5 == 4 else None
        cap = RelativeCapability(loc.map_key, read, loc.bat, writer, link)
        created = None if i % 7 == 6 else CREATED.seconds + i
        is_dir = i % 3 == 2
        out.append(
            NamedRelativeCapability(f"{prefix}-{i:04d}", cap, is_dir, "" if is_dir else "text/plain", created)
        )
    return out


@dataclass(frozen=True)
class SampleFile:
    """A first file chunk and what it was made from."""

    built: NodeWithFragments
    base_key: SymmetricKey
    data_key: SymmetricKey
    props: FileProperties
    parent_link: RelativeCapability
    next_chunk: RelativeCapability
    location: ChunkLocation

    @property
    def blocks(self) -> list[bytes]:
        """The fragment blocks, in order."""
        return [f.block for f in self.built.fragments]


@dataclass(frozen=True)
class SampleDir:
    """A directory chunk and what it was made from."""

    built: NodeWithFragments
    rbase_key: SymmetricKey
    wbase_key: SymmetricKey
    parent_key: SymmetricKey
    props: FileProperties
    parent_link: RelativeCapability
    next_chunk: RelativeCapability
    children: list[NamedRelativeCapability]
    location: ChunkLocation

    @property
    def blocks(self) -> list[bytes]:
        """The fragment blocks, in order."""
        return [f.block for f in self.built.fragments]


def sample_file(rng: Rng, data: bytes, mirror: BatId | None = MIRROR) -> SampleFile:
    """A first file chunk holding `data`."""
    base, data_key, parent_parent = keys(rng, 3)
    here, nxt, parent = location(rng), location(rng), location(rng)
    props = file_props(len(data), rng.random_bytes(32))
    parent_link = RelativeCapability(parent.map_key, parent_parent, parent.bat)
    next_cap = RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, base)
    built = create_file_chunk(
        base_key=base,
        data_key=data_key,
        properties=props,
        data=data,
        next_chunk=next_cap,
        parent_link=parent_link,
        inline_bat=here.bat,
        mirror_bat_id=mirror,
        rng=rng,
    )
    return SampleFile(built, base, data_key, props, parent_link, next_cap, here)


def sample_dir(
    rng: Rng,
    count: int,
    signer: SigningPrivateKeyAndPublicHash | None = SIGNER,
    mirror: BatId | None = MIRROR,
) -> SampleDir:
    """A directory chunk with `count` children."""
    rbase, wbase, parent_key, parent_parent = keys(rng, 4)
    here, nxt, parent = location(rng), location(rng), location(rng)
    kids = children(rng, wbase, count)
    props = FileProperties.directory("Documents", MODIFIED)
    parent_link = RelativeCapability(parent.map_key, parent_parent, parent.bat)
    next_cap = RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, rbase)
    built = create_dir(
        rbase_key=rbase,
        parent_key=parent_key,
        properties=props,
        children=kids,
        next_chunk=next_cap,
        parent_link=parent_link,
        inline_bat=here.bat,
        mirror_bat_id=mirror,
        wbase_key=wbase,
        signer=signer,
        rng=rng,
    )
    return SampleDir(built, rbase, wbase, parent_key, props, parent_link, next_cap, kids, here)
