"""Where the chunks of a file or directory live (spec/peergos.md §6.5, §6.6, §18 item 12; vectors README
"cryptree.json" `stream_secret_chain`, "Directory overflow chunks").

Theory of operation
-------------------
A file is cut into 5 MiB chunks, each its own cryptree node in the writer's CHAMP. Chunk 0 sits at a
random map key with a random BAT; every later location is derived from the file's 32-byte **stream
secret** (kept in the encrypted properties):

    map_key[i+1] = sha256(stream_secret || map_key[i])
    bat[i+1]     = sha256(stream_secret || bat[i].secret)     (no BAT stays no BAT)

so a reader seeks to byte X with X // 5 MiB local hashes and one CHAMP lookup (Java
`FileProperties.calculateMapKey`), and the server cannot link the chunks of one file. When a file has a
stream secret this chain **must** be used even though each node's FromBase also names a next chunk
(a writer could otherwise make the two disagree); directories and legacy files follow FromBase.

Directories hold at most 500 child links per chunk (`MAX_CHILD_LINKS_PER_BLOB`); the rest overflow into
further chunks reached through FromBase's next-chunk pointer (random map key and BAT, same keys, name
`.subsequent-dir-chunk`), see `builders.create_directory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from peergos_node.crypto.bat import Bat
from peergos_node.crypto.hashes import sha256
from peergos_node.cryptree.capabilities import MAP_KEY_BYTES
from peergos_node.cryptree.properties import CHUNK_SIZE, STREAM_SECRET_BYTES

MAX_CHILD_LINKS_PER_CHUNK = 500
"""Children per directory chunk before overflowing (Java `MAX_CHILD_LINKS_PER_BLOB`)."""

T = TypeVar("T")


@dataclass(frozen=True)
class ChunkLocation:
    """A chunk's map key in the writer's CHAMP and the BAT that reads it (None on legacy data)."""

    map_key: bytes
    bat: Bat | None

    def __post_init__(self) -> None:
        if type(self.map_key) is not bytes or len(self.map_key) != MAP_KEY_BYTES:
            raise ValueError("a map key is exactly 32 bytes")


def _check_secret(stream_secret: bytes) -> None:
    if type(stream_secret) is not bytes or len(stream_secret) != STREAM_SECRET_BYTES:
        raise ValueError("a stream secret is 32 bytes")


def next_chunk_location(stream_secret: bytes, current: ChunkLocation) -> ChunkLocation:
    """The next chunk's location (Java `FileProperties.calculateNextMapKey`)."""
    _check_secret(stream_secret)
    bat = None if current.bat is None else Bat(sha256(stream_secret + current.bat.secret))
    return ChunkLocation(sha256(stream_secret + current.map_key), bat)


def chunk_location(stream_secret: bytes, first: ChunkLocation, offset: int) -> ChunkLocation:
    """The location of the chunk holding byte `offset` (Java `FileProperties.calculateMapKey`)."""
    if offset < 0:
        raise ValueError("offset must be non-negative")
    location = first
    for _ in range(offset // CHUNK_SIZE):
        location = next_chunk_location(stream_secret, location)
    return location


def chunk_locations(stream_secret: bytes, first: ChunkLocation, count: int) -> list[ChunkLocation]:
    """The locations of chunks 0 .. count-1."""
    if count < 0:
        raise ValueError("count must be non-negative")
    out: list[ChunkLocation] = []
    location = first
    for _ in range(count):
        out.append(location)
        location = next_chunk_location(stream_secret, location)
    return out


def split_children(children: Sequence[T], per_chunk: int = MAX_CHILD_LINKS_PER_CHUNK) -> list[list[T]]:
    """A directory's children cut into chunk-sized lists (one empty list for no children)."""
    if per_chunk < 1:
        raise ValueError("per_chunk must be positive")
    return [list(children[i : i + per_chunk]) for i in range(0, len(children), per_chunk)] or [[]]


__all__ = [
    "MAX_CHILD_LINKS_PER_CHUNK",
    "ChunkLocation",
    "chunk_location",
    "chunk_locations",
    "next_chunk_location",
    "split_children",
]
