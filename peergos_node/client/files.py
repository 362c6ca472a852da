"""File contents: data sources, streamed reading with seeking, and rewriting chunks (spec/peergos.md §6.3,
§6.5; Java `FileUploader`, `FileWrapper.getInputStream`, `overwriteSection`, `truncate`).

Theory of operation
-------------------
**Sources.** Uploads read from a `DataSource`: bytes in memory, or a seekable binary file (a path or an
open file object) read one 5 MiB chunk at a time in a worker thread, so a file of any size is uploaded
in bounded memory. The hash tree (§6.3: sha256 of every chunk, 1024-way levels) is computed in one
streaming pass first; it is stored with the first chunk and in the upload transaction record, so a
resumed upload can check it is given the same data.

**Reading.** `FileReader` reads a file through one snapshot of its writer's tree. Seeking to byte X costs
X // 5 MiB local hashes (the stream-secret chain, §6.5) and then one CHAMP lookup plus the fragments of
the chunk holding X: earlier chunks are never fetched. One decrypted chunk is kept. `download` streams a
whole file with the next two chunks fetched and decrypted in parallel (decryption and hashing release
the GIL) while the previous one is written out, handed on in file order.

**Writing inside a file.** `FileEditor` rewrites chunks in place under the file's existing keys and
locations (fresh nonces and fragment BATs): a write at an offset re-encrypts only the chunks it touches
(reading the untouched part of a partly covered chunk first), zero-fills a gap after the old end,
truncation rewrites the new last chunk and removes the chunks after it. The first chunk's properties
(size, modified time) are the file's, as in Peergos; they are updated in the same commit as the data.
"""

from __future__ import annotations

import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import trio

from peergos_node.client.errors import IsADirectory, TamperedData
from peergos_node.client.nodes import (
    Node,
    chunk_data,
    decrypt_chunk,
    load_chunk,
    load_node,
    now,
    payload_blocks,
)
from peergos_node.client.synchronizer import Snapshot, WriteBatch
from peergos_node.client.tasks import task_group
from peergos_node.crypto.hashes import sha256
from peergos_node.cryptree.builders import FileEncryptor
from peergos_node.cryptree.chunks import ChunkLocation, next_chunk_location
from peergos_node.cryptree.properties import CHUNK_SIZE, FileProperties, HashTree, chunk_count

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO
"""What an upload or write accepts: bytes, a local file path, or a seekable binary file object."""


class DataSource(Protocol):
    """Random access to the bytes being written (blocking reads: call them from a worker thread)."""

    @property
    def size(self) -> int:
        """Total bytes."""
        ...

    def read_at(self, offset: int, n: int) -> bytes:
        """Exactly `n` bytes at `offset` (fewer only at the end)."""
        ...

    def close(self) -> None:
        """Release the source (files opened by path are closed)."""
        ...


class BytesSource:
    """A source over bytes in memory."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")

    @property
    def size(self) -> int:
        return len(self._view)

    def read_at(self, offset: int, n: int) -> bytes:
        return bytes(self._view[offset : offset + n])

    def close(self) -> None:
        """Nothing to release."""


class FileSource:
    """A source over a seekable binary file (opened here when given a path)."""

    def __init__(self, f: BinaryIO, owned: bool) -> None:
        if not f.seekable():
            raise ValueError("uploads need a seekable file (or bytes)")
        self._f = f
        self._owned = owned
        self._size = f.seek(0, io.SEEK_END)

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, n: int) -> bytes:
        self._f.seek(offset)
        out = self._f.read(n)
        return out if isinstance(out, bytes) else bytes(out)

    def close(self) -> None:
        if self._owned:
            self._f.close()


class ZeroSource:
    """`size` zero bytes (extending a file by truncating it upwards)."""

    def __init__(self, size: int) -> None:
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, n: int) -> bytes:
        return bytes(max(0, min(n, self._size - offset)))

    def close(self) -> None:
        """Nothing to release."""


def open_source(data: Source) -> DataSource:
    """A DataSource for bytes, a path or a seekable binary file."""
    if isinstance(data, bytes | bytearray | memoryview):
        return BytesSource(data)
    if isinstance(data, str | os.PathLike):
        return FileSource(open(Path(data), "rb"), owned=True)
    return FileSource(data, owned=False)


async def read_chunk(source: DataSource, index: int) -> bytes:
    """Chunk `index` of a source (read in a worker thread)."""
    return await trio.to_thread.run_sync(source.read_at, index * CHUNK_SIZE, CHUNK_SIZE)


async def hash_tree(source: DataSource) -> HashTree:
    """The file's hash tree, from one streaming pass over the source."""

    def run() -> HashTree:
        hashes = []
        for i in range(chunk_count(source.size)):
            hashes.append(sha256(source.read_at(i * CHUNK_SIZE, CHUNK_SIZE)))
        return HashTree.build(hashes)

    return await trio.to_thread.run_sync(run)


# ---- reading -------------------------------------------------------------------------------------
FETCH_AHEAD = 2
"""Chunks `FileReader.stream` fetches and decrypts at the same time (decryption and hashing release the
GIL, so two chunks decrypt on two cores while the next fragments arrive)."""


class _Slot:
    """A chunk being fetched: set `done` once `result` holds its decrypted bytes."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: bytes | None = None


class FileReader:
    """Streamed, seekable reading of one file (see the module docstring). Not safe for concurrent use."""

    def __init__(self, snap: Snapshot, first: Node) -> None:
        if first.is_dir:
            raise IsADirectory(f"{first.name!r} is a directory")
        self._snap = snap
        self._first = first
        self.size = first.props.size
        self._pos = 0
        self._loc_index = 0
        self._loc = first.location
        self._chunk_index = -1
        self._chunk = b""
        self.chunks_fetched = 0

    @property
    def properties(self) -> FileProperties:
        """The file's properties."""
        return self._first.props

    def tell(self) -> int:
        """The current offset."""
        return self._pos

    async def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to an offset (no data is read until the next `read`)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError("negative seek position")
        self._pos = target
        return target

    async def _location(self, index: int) -> ChunkLocation:
        secret = self._first.props.stream_secret
        if index < self._loc_index:
            self._loc_index, self._loc = 0, self._first.location
        while self._loc_index < index:
            if secret is not None:
                self._loc = next_chunk_location(secret, self._loc)
            else:  # legacy file: follow each chunk's next link
                node = await load_chunk(self._snap, self._first, self._loc)
                self._loc = node.read.next_chunk_location(self._loc, None)
            self._loc_index += 1
        return self._loc

    async def _fetch(self, index: int) -> tuple[Node, list[bytes]]:
        """Chunk `index`'s node and fragment blocks (verified, still encrypted)."""
        return await self._fetch_at(await self._location(index))

    async def _fetch_at(self, location: ChunkLocation) -> tuple[Node, list[bytes]]:
        node = await load_chunk(self._snap, self._first, location)
        self.chunks_fetched += 1
        return node, await payload_blocks(self._snap, node)

    async def _open(self, index: int, node: Node, blocks: list[bytes]) -> bytes:
        data = await decrypt_chunk(node, blocks)
        expected = min(CHUNK_SIZE, self.size - index * CHUNK_SIZE)
        if len(data) < expected:
            raise TamperedData(f"chunk {index} of {self._first.name!r} holds less data than the file's size")
        return data[:expected] if len(data) > expected else data

    async def fetch_chunk(self, index: int) -> bytes:
        """The decrypted bytes of chunk `index` (without changing the position)."""
        node, blocks = await self._fetch(index)
        return await self._open(index, node, blocks)

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes from the current position (all that is left when `n` < 0)."""
        end = self.size if n < 0 else min(self.size, self._pos + n)
        parts: list[bytes] = []
        while self._pos < end:
            index = self._pos // CHUNK_SIZE
            if index != self._chunk_index:
                self._chunk = await self.fetch_chunk(index)
                self._chunk_index = index
            start = self._pos - index * CHUNK_SIZE
            take = min(end - self._pos, len(self._chunk) - start)
            if take <= 0:
                break
            parts.append(self._chunk[start : start + take])
            self._pos += take
        return b"".join(parts)

    async def stream(self, write: Callable[[bytes], Awaitable[None]]) -> int:
        """Pass the rest of the file to `write` one chunk at a time; the next chunks are fetched and
        decrypted (up to `FETCH_AHEAD` at once, each in its own task, so the server always has requests to
        answer and decryption runs in parallel) while the current one is written, and handed on in order.
        Returns the number of bytes written."""
        first_index = self._pos // CHUNK_SIZE
        last_index = (self.size - 1) // CHUNK_SIZE if self.size else -1
        skip = self._pos - first_index * CHUNK_SIZE
        written = 0
        opened_send, opened_recv = trio.open_memory_channel[bytes](1)
        started_send, started_recv = trio.open_memory_channel[tuple[int, _Slot]](FETCH_AHEAD)

        async def fetch_one(index: int, location: ChunkLocation, slot: _Slot) -> None:
            node, blocks = await self._fetch_at(location)
            slot.result = await self._open(index, node, blocks)
            slot.done.set()

        async def launch(nursery: trio.Nursery) -> None:  # stage 1: fetch and decrypt, a few at once
            async with started_send:
                for index in range(first_index, last_index + 1):
                    slot = _Slot()
                    location = await self._location(index)
                    await started_send.send((index, slot))  # blocks while FETCH_AHEAD are pending
                    nursery.start_soon(fetch_one, index, location, slot)

        async def in_order() -> None:  # stage 2: hand the decrypted chunks on in order
            async with opened_send, started_recv:
                async for _index, slot in started_recv:
                    await slot.done.wait()
                    assert slot.result is not None
                    data, slot.result = slot.result, None
                    await opened_send.send(data)

        async with task_group() as nursery:
            nursery.start_soon(launch, nursery)
            nursery.start_soon(in_order)
            async with opened_recv:
                async for data in opened_recv:
                    if skip:
                        data, skip = data[skip:], 0
                    await write(data)
                    written += len(data)
        self._pos = self.size
        return written


# ---- writing inside a file -------------------------------------------------------------------------
@dataclass
class FileEditor:
    """Rewrites chunks of one existing file inside write batches (see the module docstring)."""

    first: Node

    def encryptor(self, props: FileProperties) -> FileEncryptor:
        """An encryptor for this file's chunks with the given properties."""
        cap, _ = self.first.writable()
        return FileEncryptor(
            base_key=cap.rbase_key,
            data_key=self.first.read.data_key,
            properties=props,
            first=self.first.location,
            parent_link=self.first.read.parent_link,
            mirror_bat_id=self.first.node.mirror_bat_id,
        )

    def location(self, index: int) -> ChunkLocation:
        """Where chunk `index` is stored."""
        secret = self.first.props.stream_secret
        if secret is None:
            raise ValueError("files without a stream secret (legacy) cannot be edited")
        loc = self.first.location
        for _ in range(index):
            loc = next_chunk_location(secret, loc)
        return loc

    async def old_chunk(self, snap: Snapshot, index: int, old_size: int) -> bytes:
        """The current bytes of chunk `index` (empty past the old end)."""
        if index * CHUNK_SIZE >= old_size:
            return b""
        node = await load_chunk(snap, self.first, self.location(index))
        data = await chunk_data(snap, node)
        return data[: min(CHUNK_SIZE, old_size - index * CHUNK_SIZE)]

    async def write_chunk(
        self,
        batch: WriteBatch,
        snap: Snapshot,
        index: int,
        props: FileProperties,
        patch: Callable[[bytearray], None],
        old_size: int,
    ) -> None:
        """Rewrite chunk `index` for a file of `props.size` bytes: its old bytes (zero-extended or cut to
        the new length) changed by `patch`."""
        length = min(CHUNK_SIZE, props.size - index * CHUNK_SIZE)
        old = await self.old_chunk(snap, index, old_size)
        buf = bytearray(old[:length])
        buf.extend(bytes(length - len(buf)))
        patch(buf)
        enc = self.encryptor(props)
        located = await trio.to_thread.run_sync(
            enc.encrypt_chunk, index, bytes(buf), batch.rng, self.location(index)
        )
        batch.put_node(located.location.map_key, located.node, located.fragments)

    async def set_properties(self, batch: WriteBatch, snap: Snapshot, props: FileProperties) -> None:
        """Store new properties in the first chunk (as it is in this batch)."""
        cap, _ = self.first.writable()
        current = await load_node(snap, cap, self.first.signer)
        if current is None:
            raise IsADirectory("the file disappeared")
        node = current.node.with_properties(cap.rbase_key, props, batch.rng)
        batch.put_node(cap.map_key, node)


def resized(props: FileProperties, size: int) -> FileProperties:
    """Properties after a content change: new size, modified now, no (stale) hash branch."""
    return props.with_size(size).with_modified(now())


__all__ = [
    "BytesSource",
    "DataSource",
    "FileEditor",
    "FileReader",
    "FileSource",
    "Source",
    "ZeroSource",
    "hash_tree",
    "open_source",
    "read_chunk",
    "resized",
]
