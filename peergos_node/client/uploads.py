"""Resumable uploads: the `FileUploadTransaction` record, finding the first missing chunk, and the chunk
upload pipeline (spec/peergos.md §6.5 "Upload transactions", §8; Java `FileUploadTransaction`,
`TransactionServiceImpl`, `FileWrapper.binarySearchAbsentChunk`, `FileUploader`).

Theory of operation
-------------------
Before the chunks of a multi-chunk file are uploaded, a record of everything needed to finish (or undo)
it — target path, owner, the writer's signing key, base/data/write keys, properties with the stream
secret, first map key and BAT, size and hash tree — is written as a small file under
`/<user>/.transactions`, named by the CID of the path's UTF-8 bytes (Java's naming), in Java's CBOR form
`{type: "FILE_UPLOAD", path, startTimeEpochMs, owner, writer, baseKey, dataKey, writeKey, props,
firstBat?, mapKey, streamSecret, size, hash?}`.

Chunks are then uploaded in order; each is committed into the writer's tree as soon as its fragments
are stored (`ChunkUploader`), so a crashed or killed upload leaves a prefix of the chunks in the tree and
the record says where they are. A later session (any device) finds the first missing chunk with an
8-ary search over the stream-secret chain — 8 presence probes per CHAMP request, O(log8 n) requests
(`first_absent_chunk`) — and continues from there, or deletes every chunk the record names and the record
itself (`cleanup`), after which the server's usage no longer counts them and GC frees their blocks. The
final commit links the file into its directory and removes the record atomically.

The pipeline has three stages — read and encrypt (worker thread), upload fragments, commit the chunk
node — so chunk i+2 is encrypted while chunk i+1's fragments are sent and chunk i is committed; at most
three chunks are in memory whatever the file size. Progress is reported after each commit. Chunk commits
run inside the upload's own server transaction and each builds on the state the previous one left
instead of re-reading the writer's pointer (a concurrent writer only makes the pointer CAS fail, and the
chunk is merged onto the newer state as any batch is): a commit is then a CHAMP edit, one block upload
and one `setPointer`.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Self

import trio

from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_bytes,
    as_int,
    as_str,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.client.network import CommittedWriterData, NetworkAccess
from peergos_node.client.synchronizer import Snapshot, WriteBatch, WriteSynchronizer
from peergos_node.client.tasks import task_group
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.builders import FileEncryptor, LocatedNode
from peergos_node.cryptree.capabilities import MAP_KEY_BYTES, WritableAbsoluteCapability
from peergos_node.cryptree.chunks import ChunkLocation, next_chunk_location
from peergos_node.cryptree.properties import (
    CHUNK_SIZE,
    STREAM_SECRET_BYTES,
    FileProperties,
    HashTree,
    chunk_count,
)
from peergos_node.errors import DecodeError

TRANSACTIONS_DIR = ".transactions"
"""The folder under the user's root holding upload records (Java `TRANSACTIONS_DIR_NAME`)."""
FILE_UPLOAD = "FILE_UPLOAD"
PROBE_COUNT = 8
"""Presence probes per CHAMP request in the search for the first missing chunk (Java `PROBE_COUNT`)."""
MAX_PATH_CHARS = 4096
_KEYS = frozenset(
    {
        "type", "path", "startTimeEpochMs", "owner", "writer", "baseKey", "dataKey", "writeKey", "props",
        "firstBat", "mapKey", "streamSecret", "size", "hash",
    }
)  # fmt: skip


def transaction_name(path: str) -> str:
    """The record's file name for a target path: the raw-codec sha256 CID of the path (Java
    `Transaction.buildFileUploadTransaction`)."""
    return str(Cid.for_block(CODEC_RAW, path.encode("utf-8")))


@dataclass(frozen=True)
class FileUploadTransaction(CborMixin):
    """A pending upload (Java `FileUploadTransaction`); `props` is None for legacy records that can only
    be cleaned up."""

    start_time_ms: int
    path: str
    owner: PublicKeyHash
    writer: SigningPrivateKeyAndPublicHash
    first: ChunkLocation
    size: int
    stream_secret: bytes
    props: FileProperties | None = None
    hash: HashTree | None = None
    base_key: SymmetricKey | None = None
    data_key: SymmetricKey | None = None
    write_key: SymmetricKey | None = None

    @property
    def name(self) -> str:
        """The record's file name in the transactions folder."""
        return transaction_name(self.path)

    @property
    def is_legacy(self) -> bool:
        """True when the record lacks what a resume needs."""
        return self.props is None or self.base_key is None or self.data_key is None or self.write_key is None

    @property
    def chunk_count(self) -> int:
        """Chunks of the file being uploaded."""
        return chunk_count(self.size)

    def write_cap(self) -> WritableAbsoluteCapability:
        """The capability of the file being uploaded."""
        if self.base_key is None or self.write_key is None:
            raise ValueError("legacy upload records hold no keys")
        return WritableAbsoluteCapability(
            self.owner, self.writer.public_key_hash, self.first.map_key, self.first.bat, self.base_key,
            self.write_key,
        )  # fmt: skip

    def locations(self) -> list[ChunkLocation]:
        """Every chunk location the upload may have written."""
        out = []
        loc = self.first
        for _ in range(self.chunk_count):
            out.append(loc)
            loc = next_chunk_location(self.stream_secret, loc)
        return out

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {
            "type": FILE_UPLOAD,
            "path": self.path,
            "startTimeEpochMs": self.start_time_ms,
            "owner": self.owner.to_cbor(),
            "writer": self.writer.to_cbor(),
            "mapKey": self.first.map_key,
            "streamSecret": self.stream_secret,
            "size": self.size,
        }
        if self.props is not None:
            m["props"] = self.props.to_cbor()
        for key, value in (
            ("baseKey", self.base_key),
            ("dataKey", self.data_key),
            ("writeKey", self.write_key),
        ):
            if value is not None:
                m[key] = value.to_cbor()
        if self.first.bat is not None:
            m["firstBat"] = self.first.bat.to_cbor()
        if self.hash is not None:
            m["hash"] = self.hash.to_cbor()
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "FileUploadTransaction"
        m = expect_map(value, ctx)
        only_keys(m, _KEYS, ctx)
        kind = as_str(cbor_field(m, "type", ctx), f"{ctx}.type", max_len=64)
        if kind != FILE_UPLOAD:
            raise DecodeError(f"{ctx}: unknown transaction type {kind!r}")
        owner = PublicKeyHash.from_cbor(cbor_field(m, "owner", ctx))
        writer = SigningPrivateKeyAndPublicHash.from_cbor(cbor_field(m, "writer", ctx))
        map_key = as_bytes(cbor_field(m, "mapKey", ctx), f"{ctx}.mapKey", length=MAP_KEY_BYTES)
        bat = Bat.from_cbor(m["firstBat"]) if "firstBat" in m else None
        secret = as_bytes(
            cbor_field(m, "streamSecret", ctx), f"{ctx}.streamSecret", length=STREAM_SECRET_BYTES
        )

        def key(name: str) -> SymmetricKey | None:
            return SymmetricKey.from_cbor(m[name]) if name in m else None

        try:
            return cls(
                start_time_ms=as_int(cbor_field(m, "startTimeEpochMs", ctx), f"{ctx}.startTimeEpochMs"),
                path=as_str(cbor_field(m, "path", ctx), f"{ctx}.path", max_len=MAX_PATH_CHARS),
                owner=owner,
                writer=writer,
                first=ChunkLocation(map_key, bat),
                size=as_int(cbor_field(m, "size", ctx), f"{ctx}.size", 0, (1 << 63) - 1),
                stream_secret=secret,
                props=FileProperties.from_cbor(m["props"]) if "props" in m else None,
                hash=HashTree.from_cbor(m["hash"]) if "hash" in m else None,
                base_key=key("baseKey"),
                data_key=key("dataKey"),
                write_key=key("writeKey"),
            )
        except ValueError as e:
            raise DecodeError(f"{ctx}: {e}") from None


PresenceLookup = Callable[[Sequence[ChunkLocation]], Awaitable[Sequence[bool]]]


async def first_absent_chunk(
    stream_secret: bytes, first: ChunkLocation, total: int, present: PresenceLookup
) -> int:
    """The index of the first of `total` chunks not yet stored (chunks are stored in order), found with
    an 8-ary search: each round asks about 8 chunks in one lookup and narrows the range ~8x
    (Java `binarySearchAbsentChunk`)."""
    lo, hi, lo_loc = 0, total, first
    while lo < hi:
        span = hi - lo
        count = min(span, PROBE_COUNT)
        indices = [lo + i * span // count for i in range(count)]
        locs = [lo_loc]
        loc = lo_loc
        for prev, idx in itertools.pairwise(indices):
            for _ in range(idx - prev):
                loc = next_chunk_location(stream_secret, loc)
            locs.append(loc)
        flags = list(await present(locs))
        if len(flags) != count:
            raise ValueError("presence lookup answered the wrong number of probes")
        absent = next((i for i, f in enumerate(flags) if not f), None)
        if absent == 0:
            return lo
        if absent is not None:
            lo, hi, lo_loc = indices[absent - 1], indices[absent], locs[absent - 1]
            continue
        if indices[-1] + 1 >= hi:
            return hi
        lo, lo_loc = indices[-1], locs[-1]
    return lo


@dataclass
class UploadProgress:
    """Where an upload is: bytes and chunks committed so far, of the total."""

    path: str
    bytes_done: int
    size: int
    chunks_done: int
    chunks: int


ProgressCallback = Callable[[UploadProgress], Awaitable[None]]


class ChunkUploader:
    """Uploads chunks `start..n-1` of a file, committing each into the writer's tree (module docstring)."""

    def __init__(
        self,
        net: NetworkAccess,
        sync: WriteSynchronizer,
        owner: PublicKeyHash,
        signer: SigningPrivateKeyAndPublicHash,
        encryptor: FileEncryptor,
        read_chunk: Callable[[int], Awaitable[bytes]],
    ) -> None:
        self.net = net
        self.sync = sync
        self.owner = owner
        self.signer = signer
        self.encryptor = encryptor
        self.read_chunk = read_chunk

    async def run(self, start: int, path: str, progress: ProgressCallback | None = None) -> None:
        """Upload and commit every chunk from `start` on."""
        enc = self.encryptor
        total = enc.chunk_count
        if start >= total:
            return
        rng = self.sync.rng
        send, recv = trio.open_memory_channel[LocatedNode](1)

        async def produce() -> None:
            async with send:
                loc = enc.location(start)
                for index in range(start, total):
                    data = await self.read_chunk(index)
                    if len(data) != enc.chunk_length(index):
                        raise ValueError("the data changed size while it was being uploaded")
                    here = loc
                    located = await trio.to_thread.run_sync(enc.encrypt_chunk, index, data, rng, here)
                    del data
                    try:
                        await send.send(located)
                    except trio.BrokenResourceError:  # the upload stage stopped after a failure
                        return
                    loc = next_chunk_location(enc.stream_secret, loc)

        uploaded_send, uploaded_recv = trio.open_memory_channel[LocatedNode](1)

        failure: list[Exception] = []

        async def upload() -> None:  # stage 2: fragments, inside the upload's own server transaction
            async with recv, uploaded_send:
                async for located in recv:
                    frags = located.fragments
                    try:
                        await self.net.put_blocks(
                            self.owner,
                            self.signer,
                            tid,
                            [f.block for f in frags],
                            True,
                            [f.cid for f in frags],
                        )
                    except Exception as e:  # e.g. over quota: commit what is stored, then report it
                        failure.append(e)
                        return
                    await uploaded_send.send(LocatedNode(located.location, located.node))

        tid = await self.net.start_transaction(self.owner)
        try:
            async with task_group() as nursery:
                nursery.start_soon(produce)
                nursery.start_soon(upload)
                async with uploaded_recv:  # stage 3: commit each chunk into the tree, in order
                    index = start
                    # Each commit builds on the state our previous one left (no pointer re-read) inside
                    # the upload's transaction; a concurrent writer only costs a CAS retry and a merge.
                    state: CommittedWriterData | None = None
                    async for located in uploaded_recv:

                        async def commit(
                            batch: WriteBatch, _snap: Snapshot, node: LocatedNode = located
                        ) -> None:
                            batch.put_node(node.location.map_key, node.node)

                        _, state = await self.sync.apply_on(
                            self.owner, self.signer, commit, base=state, tid=tid
                        )
                        index += 1
                        if progress is not None:
                            done = min(enc.properties.size, index * CHUNK_SIZE)
                            await progress(UploadProgress(path, done, enc.properties.size, index, total))
        finally:
            await self.net.close_transaction(self.owner, tid)
        if failure:
            raise failure[0]


__all__ = [
    "FILE_UPLOAD",
    "PROBE_COUNT",
    "TRANSACTIONS_DIR",
    "ChunkUploader",
    "FileUploadTransaction",
    "UploadProgress",
    "first_absent_chunk",
    "transaction_name",
]
