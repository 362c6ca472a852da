"""Cryptree nodes as the filesystem sees them: retrieving, listing and editing directories and finding
file chunks (spec/peergos.md §6.1-6.8; Java `FileWrapper`, `CryptreeNode.addChildrenAndCommit`,
`removeChildren`, `updateChildLinks`, `mkdir`, `deleteAllChunks`).

Theory of operation
-------------------
A capability names a node by (owner, writer, map key) plus BAT and keys (§6.1). `load_nodes` looks the
map keys up in the writers' CHAMPs through a `Snapshot` (verified lookups, batched 20 per request, or the
write batch's own changes) and decrypts each first chunk into a `Node`: capability, CID, parsed node,
decrypted FromBase/FromParent and, for writable capabilities, the key that signs writes to it (from the
node's writer link, else inherited from its parent — §6.2). Parsed and decrypted nodes and directory
child lists are kept in the client's `DecodedCache` by (CID, keys), so listing or walking the same
folders again costs lookups only.

A **directory** is a chain of chunks: the first at the capability's location, each next one at its
predecessor's FromBase next-chunk location, until a location is empty (§6.6). Each chunk lists at most
500 named child links; `add_child` puts a new entry into the first chunk with room or creates an overflow
chunk (`.subsequent-dir-chunk`, same keys, no writer link) at the last chunk's next location;
`remove_child` / `replace_child` rewrite only the chunk holding the name. Every rewritten chunk is
recorded with its key and BAT (`DirHint`), so a concurrent change to the same chunk can be merged by name.
Names are unique across all chunks of a directory.

A **file** is `chunk_count(size)` chunks whose locations chain from the first by the stream secret
(§6.5): chunk *i* is found with *i* local hashes and one lookup, never reading earlier chunks. The first
chunk's properties are authoritative (size, name, times), as in Peergos. Legacy files without a stream
secret follow FromBase next-chunk links.

`delete_keys` collects every map key of a subtree — all chunks of every file (plus any chunk found past
the recorded size) and all chunks of every directory — so a recursive delete removes them from the tree
in one commit; the server's usage follows the tree and its GC frees the blocks (§8, §13).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid
from peergos_node.client.errors import AlreadyExists, NotWritable, PathNotFound, TamperedData
from peergos_node.client.network import DECODED_NODE_OVERHEAD, DecodedCache
from peergos_node.client.synchronizer import DirHint, Snapshot, WriteBatch
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import Rng
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.builders import create_overflow_chunk, random_location
from peergos_node.cryptree.capabilities import AbsoluteCapability, WritableAbsoluteCapability
from peergos_node.cryptree.chunks import MAX_CHILD_LINKS_PER_CHUNK, ChunkLocation, next_chunk_location
from peergos_node.cryptree.node import CryptreeNode, ReadNode, create_dir
from peergos_node.cryptree.properties import FileProperties, Timestamp
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from peergos_node.errors import BadCiphertext

MAX_DIR_CHUNKS = 100_000
"""Longest directory chunk chain followed (50 million entries; guards against a looping chain)."""
INLINE_DECRYPT_LIMIT = 64 * 1024
"""Payloads larger than this are decrypted in a worker thread."""


def now() -> Timestamp:
    """The current UTC time with millisecond precision (as Java's `LocalDateTime.now(UTC)` in practice)."""
    return Timestamp.from_epoch_millis(time.time_ns() // 1_000_000)


@dataclass(frozen=True)
class Node:
    """A retrieved node (usually a first chunk) with its decrypted header."""

    cap: AbsoluteCapability
    cid: Cid
    node: CryptreeNode
    read: ReadNode
    signer: SigningPrivateKeyAndPublicHash | None = None

    @property
    def props(self) -> FileProperties:
        """The node's properties."""
        return self.read.properties

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.read.is_directory

    @property
    def name(self) -> str:
        """The node's name (from its properties)."""
        return self.props.name

    @property
    def location(self) -> ChunkLocation:
        """Map key and BAT of this chunk."""
        return ChunkLocation(self.cap.map_key, self.cap.bat)

    @property
    def owner(self) -> PublicKeyHash:
        """Owner of the tree this node is in."""
        return self.cap.owner

    @property
    def writer(self) -> PublicKeyHash:
        """Writer whose CHAMP holds this node."""
        return self.cap.writer

    def writable(self) -> tuple[WritableAbsoluteCapability, SigningPrivateKeyAndPublicHash]:
        """The writable capability and signer, or NotWritable."""
        if not isinstance(self.cap, WritableAbsoluteCapability) or self.signer is None:
            raise NotWritable(f"no write access to {self.name!r}")
        return self.cap, self.signer

    def at(self, location: ChunkLocation) -> AbsoluteCapability:
        """This node's capability moved to another chunk location."""
        return self.cap.with_map_key(location.map_key, location.bat)


def _decode(
    snap: Snapshot,
    cap: AbsoluteCapability,
    cid: Cid,
    block: bytes,
    parent_signer: SigningPrivateKeyAndPublicHash | None,
) -> Node:
    wkey = cap.wbase_key.key if isinstance(cap, WritableAbsoluteCapability) else None
    ckey = (cid, cap.rbase_key.key, wkey)
    hit = snap.net.decoded.get(ckey)
    if isinstance(hit, tuple):
        node, read, link_signer = hit
    else:
        node, read, link_signer = _decode_block(cap, cid, block)
        snap.net.decoded.put(ckey, (node, read, link_signer), len(block) + DECODED_NODE_OVERHEAD)
    signer = None
    if isinstance(cap, WritableAbsoluteCapability):
        signer = link_signer if read.signer_link is not None else parent_signer
        if signer is not None and signer.public_key_hash != cap.writer:
            signer = None
    return Node(cap, cid, node, read, signer)


def _decode_block(
    cap: AbsoluteCapability, cid: Cid, block: bytes
) -> tuple[CryptreeNode, ReadNode, SigningPrivateKeyAndPublicHash | None]:
    try:
        node = CryptreeNode.parse(block)
        read = node.read(cap.rbase_key)
    except (DecodeError, BadCiphertext) as e:
        raise TamperedData(f"node {cid} does not decrypt with its capability: {e}") from None
    link_signer = None
    if isinstance(cap, WritableAbsoluteCapability) and read.signer_link is not None:
        try:
            link_signer = read.signer_link.target(cap.wbase_key)
        except (DecodeError, BadCiphertext) as e:
            raise TamperedData(f"node {cid} has an unreadable writer link: {e}") from None
    return node, read, link_signer


async def load_nodes(
    snap: Snapshot,
    caps: Sequence[AbsoluteCapability],
    parent_signer: SigningPrivateKeyAndPublicHash | None = None,
) -> list[Node | None]:
    """The nodes at several capabilities (None where a location is empty), with batched lookups."""
    out: list[Node | None] = [None] * len(caps)
    groups: dict[tuple[PublicKeyHash, PublicKeyHash], list[int]] = {}
    for i, cap in enumerate(caps):
        groups.setdefault((cap.owner, cap.writer), []).append(i)
    for (owner, writer), idxs in groups.items():
        found = await snap.lookup(owner, writer, [(caps[i].map_key, caps[i].bat) for i in idxs])
        for i in idxs:
            got = found[caps[i].map_key]
            if got.value is None:
                continue
            if got.block is None:
                raise TamperedData(f"the server withheld node {got.value}")
            out[i] = _decode(snap, caps[i], got.value, got.block, parent_signer)
    return out


async def load_node(
    snap: Snapshot, cap: AbsoluteCapability, parent_signer: SigningPrivateKeyAndPublicHash | None = None
) -> Node | None:
    """The node at a capability, or None if its location is empty."""
    return (await load_nodes(snap, [cap], parent_signer))[0]


async def payload_blocks(snap: Snapshot, node: Node) -> list[bytes]:
    """The fragment blocks of a node's payload."""
    if not node.node.fragments:
        return []
    return await snap.fragment_blocks(node.owner, node.writer, node.node)


# ---- directories -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DirEntry:
    """A child link and the directory chunk (index and node) it is listed in."""

    link: NamedRelativeCapability
    chunk: Node

    @property
    def name(self) -> str:
        """The child's name."""
        return self.link.name


async def dir_chunks(
    snap: Snapshot, first: Node, on_chunk: Callable[[Node], object] | None = None
) -> list[Node]:
    """Every chunk of a directory, first to last. `on_chunk` is called with each chunk as soon as it is
    read (before the next one is fetched), so a caller can start on a chunk's children while the chain
    is followed."""
    if not first.is_dir:
        raise ValueError("not a directory")
    chunks = [first]
    if on_chunk is not None:
        on_chunk(first)
    seen = {first.cap.map_key}
    current = first
    while len(chunks) < MAX_DIR_CHUNKS:
        nxt = current.read.next_chunk_location(current.location, None)
        if nxt.map_key in seen:
            raise TamperedData("a directory's chunk chain loops")
        node = await load_node(snap, current.at(nxt), first.signer)
        if node is None:
            return chunks
        if not node.is_dir:
            raise TamperedData("a directory chunk is not a directory")
        chunks.append(node)
        if on_chunk is not None:
            on_chunk(node)
        seen.add(nxt.map_key)
        current = node
    raise TamperedData("a directory's chunk chain is too long")


async def chunk_children(snap: Snapshot, chunk: Node) -> list[NamedRelativeCapability]:
    """The named child links of one directory chunk (legacy unnamed links are named from the child)."""
    ckey = (chunk.cid, chunk.cap.rbase_key.key, b"children")
    hit = snap.net.decoded.get(ckey)
    if isinstance(hit, ChildrenLinks):
        links = hit
    else:
        blocks = await payload_blocks(snap, chunk)
        size = sum(len(b) for b in blocks)
        try:
            if size > INLINE_DECRYPT_LIMIT:
                links = await trio.to_thread.run_sync(chunk.read.children, blocks)
            else:
                links = chunk.read.children(blocks)
        except (DecodeError, BadCiphertext) as e:
            raise TamperedData(f"directory chunk {chunk.cid} does not decrypt: {e}") from None
        # parsed links take more memory than their ciphertext
        snap.net.decoded.put(ckey, links, 4 * size + DECODED_NODE_OVERHEAD)
    if not links.legacy:
        return list(links.named)
    caps = [rel.to_absolute(chunk.cap) for rel in links.legacy]
    nodes = await load_nodes(snap, caps)
    return [
        NamedRelativeCapability.for_child(rel, n.props)
        for rel, n in zip(links.legacy, nodes, strict=True)
        if n is not None
    ]


async def list_entries(snap: Snapshot, first: Node) -> list[DirEntry]:
    """All child links of a directory with the chunk each is in."""
    out: list[DirEntry] = []
    for chunk in await dir_chunks(snap, first):
        out.extend(DirEntry(link, chunk) for link in await chunk_children(snap, chunk))
    return out


async def find_entry(snap: Snapshot, first: Node, name: str) -> DirEntry | None:
    """The entry with this name, reading chunks only until it is found."""
    for chunk in await dir_chunks(snap, first):
        for link in await chunk_children(snap, chunk):
            if link.name == name:
                return DirEntry(link, chunk)
    return None


def child_cap(entry: DirEntry, decoded: DecodedCache | None = None) -> AbsoluteCapability:
    """The absolute capability of a listed child (writable if the directory's is and the link allows);
    with `decoded`, remembered there (opening a child's write-key link is a decryption)."""
    source = entry.chunk.cap
    if decoded is None:
        return entry.link.to_absolute(source)
    wkey = source.wbase_key.key if isinstance(source, WritableAbsoluteCapability) else b""
    tag = b"".join((b"cap", wkey, source.owner.to_bytes(), source.writer.to_bytes(), entry.name.encode()))
    key = (entry.chunk.cid, source.rbase_key.key, tag)
    hit = decoded.get(key)
    if isinstance(hit, AbsoluteCapability):
        return hit
    cap = entry.link.to_absolute(source)
    decoded.put(key, cap, len(tag) + 256)
    return cap


def _rewrite_chunk(batch: WriteBatch, chunk: Node, children: Sequence[NamedRelativeCapability]) -> None:
    built = chunk.node.with_children(chunk.cap.rbase_key, children, batch.rng)
    batch.put_node(
        chunk.cap.map_key, built.node, built.fragments, dir_hint=DirHint(chunk.cap.bat, chunk.cap.rbase_key)
    )


async def add_children(
    batch: WriteBatch, snap: Snapshot, first: Node, entries: Sequence[NamedRelativeCapability]
) -> None:
    """Add child links to a directory (AlreadyExists on a name clash; overflow chunks as needed)."""
    first.writable()
    chunks = await dir_chunks(snap, first)
    lists = [await chunk_children(snap, c) for c in chunks]
    taken = {link.name for links in lists for link in links}
    new_names: set[str] = set()
    for e in entries:
        if e.name in taken or e.name in new_names:
            raise AlreadyExists(f"Child already exists with name: {e.name}")
        new_names.add(e.name)
    pending = list(entries)
    for chunk, links in zip(chunks, lists, strict=True):
        room = MAX_CHILD_LINKS_PER_CHUNK - len(links)
        if room > 0 and pending:
            _rewrite_chunk(batch, chunk, [*links, *pending[:room]])
            pending = pending[room:]
    last = chunks[-1]
    while pending:
        location = last.read.next_chunk_location(last.location, None)
        group, pending = pending[:MAX_CHILD_LINKS_PER_CHUNK], pending[MAX_CHILD_LINKS_PER_CHUNK:]
        located = create_overflow_chunk(
            rbase_key=first.cap.rbase_key,
            parent_key=first.read.parent_key,
            parent_link=first.read.parent_link,
            children=group,
            location=location,
            mirror_bat_id=first.node.mirror_bat_id,
            rng=batch.rng,
        )
        cid = batch.put_node(location.map_key, located.node, located.fragments,
                             dir_hint=DirHint(location.bat, first.cap.rbase_key))  # fmt: skip
        read = located.node.read(first.cap.rbase_key)
        last = Node(last.at(location), cid, located.node, read, first.signer)


async def remove_child(batch: WriteBatch, snap: Snapshot, first: Node, name: str) -> DirEntry:
    """Remove the entry with this name from a directory (PathNotFound if absent); returns it."""
    first.writable()
    for chunk in await dir_chunks(snap, first):
        links = await chunk_children(snap, chunk)
        for link in links:
            if link.name == name:
                _rewrite_chunk(batch, chunk, [x for x in links if x.name != name])
                return DirEntry(link, chunk)
    raise PathNotFound(f"no child named {name!r}")


async def remove_and_delete(
    batches: dict[PublicKeyHash, WriteBatch], snap: Snapshot, folder: Node, name: str
) -> DirEntry:
    """Unlink `name` from a folder and remove every chunk of what it named from the tree (subtrees of
    writers this write holds no batch for are only unlinked)."""
    removed = await remove_child(batches[folder.writer], snap, folder, name)
    node = await load_node(snap, child_cap(removed), folder.signer)
    if node is not None and node.writer in batches:
        batch = batches[node.writer]
        for key in await delete_keys(snap, node):
            batch.remove(key)
    return removed


async def replace_child(
    batch: WriteBatch, snap: Snapshot, first: Node, name: str, new: NamedRelativeCapability
) -> None:
    """Replace the entry `name` by `new` in place (AlreadyExists if `new` takes another existing name)."""
    first.writable()
    chunks = await dir_chunks(snap, first)
    target: tuple[Node, list[NamedRelativeCapability]] | None = None
    for chunk in chunks:
        links = await chunk_children(snap, chunk)
        if new.name != name and any(x.name == new.name for x in links):
            raise AlreadyExists(f"Child already exists with name: {new.name}")
        if any(x.name == name for x in links):
            target = (chunk, links)
    if target is None:
        raise PathNotFound(f"no child named {name!r}")
    chunk, links = target
    _rewrite_chunk(batch, chunk, [new if x.name == name else x for x in links])


def new_directory(
    batch: WriteBatch,
    parent: Node,
    name: str,
    *,
    hidden: bool = False,
    rng: Rng,
) -> tuple[NamedRelativeCapability, WritableAbsoluteCapability]:
    """Create an empty directory node under `parent` (Java `CryptreeNode.mkdir`); returns the link to
    add to the parent and the new directory's capability."""
    parent_cap, _ = parent.writable()
    rkey, wkey, parent_key = SymmetricKey.random(rng), SymmetricKey.random(rng), SymmetricKey.random(rng)
    here = random_location(rng)
    nxt = random_location(rng)
    ts = now()
    built = create_dir(
        rbase_key=rkey,
        parent_key=parent_key,
        properties=FileProperties.directory(name, ts, is_hidden=hidden),
        children=[],
        next_chunk=RelativeCapability.subsequent_chunk(nxt.map_key, nxt.bat, rkey),
        parent_link=RelativeCapability.to_parent(parent_cap, parent.read.parent_key, parent_cap.writer),
        inline_bat=here.bat,
        mirror_bat_id=parent.node.mirror_bat_id,
        rng=rng,
    )
    batch.put_node(here.map_key, built.node, built.fragments)
    cap = WritableAbsoluteCapability(parent_cap.owner, parent_cap.writer, here.map_key, here.bat, rkey, wkey)
    link = NamedRelativeCapability(
        name, RelativeCapability.relativise(parent_cap, cap, rng), True, "", ts.seconds
    )
    return link, cap


def parent_link_for(parent: Node) -> RelativeCapability:
    """The FromParent link a child of `parent` carries (the parent's location with its parent key)."""
    return RelativeCapability.to_parent(parent.cap, parent.read.parent_key, parent.cap.writer)


def entry_for(parent_cap: WritableAbsoluteCapability, child: AbsoluteCapability, props: FileProperties,
              rng: Rng) -> NamedRelativeCapability:  # fmt: skip
    """The named link a directory stores for a child with these properties."""
    return NamedRelativeCapability.for_child(RelativeCapability.relativise(parent_cap, child, rng), props)


# ---- files -----------------------------------------------------------------------------------------
def file_locations(node: Node, count: int | None = None) -> list[ChunkLocation]:
    """Locations of a (stream-secret) file's chunks: all of them, or the first `count`."""
    secret = node.props.stream_secret
    if secret is None:
        raise ValueError("legacy file without a stream secret")
    n = node.props.chunk_count if count is None else count
    out: list[ChunkLocation] = []
    loc = node.location
    for _ in range(n):
        out.append(loc)
        loc = next_chunk_location(secret, loc)
    return out


async def load_chunk(snap: Snapshot, first: Node, location: ChunkLocation) -> Node:
    """The file chunk at a location (TamperedData if a chunk within the file's size is missing)."""
    node = await load_node(snap, first.at(location), first.signer)
    if node is None:
        raise TamperedData(f"a chunk of {first.name!r} is missing")
    if node.is_dir:
        raise TamperedData(f"a chunk of {first.name!r} is a directory")
    return node


async def chunk_data(snap: Snapshot, chunk: Node) -> bytes:
    """The decrypted bytes of a file chunk (fragments fetched with their BATs, decrypted off-thread)."""
    return await decrypt_chunk(chunk, await payload_blocks(snap, chunk))


async def decrypt_chunk(chunk: Node, blocks: list[bytes]) -> bytes:
    """Decrypt a file chunk from its fragment blocks (in a worker thread when it has any)."""
    try:
        if blocks:
            return await trio.to_thread.run_sync(chunk.read.data, blocks)
        return chunk.read.data(blocks)
    except (DecodeError, BadCiphertext) as e:
        raise TamperedData(f"file chunk {chunk.cid} does not decrypt: {e}") from None


async def legacy_chunk_locations(snap: Snapshot, first: Node) -> list[ChunkLocation]:
    """Chunk locations of a file without a stream secret, following FromBase links."""
    out = [first.location]
    current = first
    for _ in range(first.props.chunk_count - 1):
        nxt = current.read.next_chunk_location(current.location, None)
        node = await load_node(snap, first.at(nxt), first.signer)
        if node is None:
            break
        out.append(nxt)
        current = node
    return out


async def file_chunk_keys(snap: Snapshot, files: Sequence[Node]) -> list[bytes]:
    """Map keys of every chunk of these files, including chunks found beyond the recorded size."""
    keys: list[bytes] = []
    probes: list[tuple[Node, ChunkLocation]] = []
    for f in files:
        secret = f.props.stream_secret
        if secret is None:
            keys.extend(loc.map_key for loc in await legacy_chunk_locations(snap, f))
            continue
        locs = file_locations(f)
        keys.extend(loc.map_key for loc in locs)
        probes.append((f, next_chunk_location(secret, locs[-1])))
    while probes:
        present = await present_locations(snap, [(f.owner, f.writer, loc) for f, loc in probes])
        nxt: list[tuple[Node, ChunkLocation]] = []
        for (f, loc), here in zip(probes, present, strict=True):
            if here:
                keys.append(loc.map_key)
                secret = f.props.stream_secret
                assert secret is not None
                nxt.append((f, next_chunk_location(secret, loc)))
        probes = nxt
    return keys


async def present_locations(
    snap: Snapshot, where: Sequence[tuple[PublicKeyHash, PublicKeyHash, ChunkLocation]]
) -> list[bool]:
    """Whether each location holds a node (presence only: no node block is fetched)."""
    out = [False] * len(where)
    groups: dict[tuple[PublicKeyHash, PublicKeyHash], list[int]] = {}
    for i, (owner, writer, _) in enumerate(where):
        groups.setdefault((owner, writer), []).append(i)
    for (owner, writer), idxs in groups.items():
        keys: list[tuple[bytes, Bat | None]] = [(where[i][2].map_key, None) for i in idxs]
        found = await snap.lookup(owner, writer, keys)
        for i in idxs:
            out[i] = found[where[i][2].map_key].value is not None
    return out


async def delete_keys(snap: Snapshot, root: Node) -> list[bytes]:
    """Every map key of the subtree at `root` in `root`'s writer (chunks of files and directories)."""
    keys: list[bytes] = []
    files: list[Node] = []
    frontier = [root]
    while frontier:
        dirs = [n for n in frontier if n.is_dir]
        files.extend(n for n in frontier if not n.is_dir and n.writer == root.writer)
        frontier = []
        for d in dirs:
            if d.writer != root.writer:
                continue
            chunks = await dir_chunks(snap, d)
            keys.extend(c.cap.map_key for c in chunks)
            caps: list[AbsoluteCapability] = []
            for c in chunks:
                caps.extend(link.to_absolute(c.cap) for link in await chunk_children(snap, c))
            for start in range(0, len(caps), 200):
                got = await load_nodes(snap, caps[start : start + 200], d.signer)
                frontier.extend(n for n in got if n is not None)
    keys.extend(await file_chunk_keys(snap, files))
    return keys


__all__ = [
    "DirEntry",
    "Node",
    "add_children",
    "child_cap",
    "chunk_children",
    "chunk_data",
    "decrypt_chunk",
    "delete_keys",
    "dir_chunks",
    "entry_for",
    "file_chunk_keys",
    "file_locations",
    "find_entry",
    "list_entries",
    "load_chunk",
    "load_node",
    "load_nodes",
    "new_directory",
    "now",
    "parent_link_for",
    "present_locations",
    "remove_and_delete",
    "remove_child",
    "replace_child",
]
