"""Trust-free network access for the filesystem client (spec/peergos.md §4, §5.3, §7, §8, §11.5).

Theory of operation
-------------------
`NetworkAccess` is everything the filesystem layer asks of a home server, with every answer verified
before it is used, so a server can withhold or delay data but never make the client read or commit
forged state (§11.5):

* **Pointers.** `writer_data(owner, writer)` fetches the writer's signed pointer, checks the signature
  against the writer key (inlined in its hash), and refuses a *rollback*: the highest sequence seen per
  writer is remembered (also from our own commits), and an older sequence, a different target under the
  same sequence, or "no pointer" after one was seen is a `PointerRollback`. The WriterData block it names
  is hash-verified and must have the writer as its `controller`.
* **Blocks.** Every block is checked against its CID (`TamperedData` otherwise). Blocks guarded by BATs
  (cryptree nodes, fragments) are fetched with `bat=` (§7). Verified small blocks (CHAMP nodes, cryptree
  nodes, WriterData) go into a bounded cache; since blocks are content addressed it never goes stale.
* **CHAMP lookups** (§5.3) use `champ/get/bulk` (at most 20 keys per request): the returned blocks are
  re-walked locally as `champ.verify_paths` does (each block used only under the CID it hashes to, and
  nodes decoded in earlier answers taken from the shared decoded-node cache), so the answer is what the
  tree rooted at the signed pointer's WriterData really holds; value blocks are picked out of the answer
  by their hash, and a lookup whose path is already cached (e.g. right after our own commit) costs no
  request at all.
* **Writes** (§8): blocks are signed by the writer (attached signature over sha256(block)) and sent in
  groups of at most 1 MiB + 100 bytes per request inside a server transaction, which protects them from
  garbage collection until the transaction closes; pointer updates are signed and committed with one
  `setPointer` (or `setPointers` for several writers at once, atomically). A quota refusal becomes a
  `StorageQuotaExceeded`; a CAS refusal stays a `RemotePointerCas` for the synchroniser to merge.

Merging concurrent writes and serialising them per writer live in `synchronizer.py`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import trio

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ import Champ, MissingBlock, NodeCache, identity_hasher
from peergos_node.champ.tree import MAX_PROOF_BLOCKS
from peergos_node.client.account import Network
from peergos_node.client.errors import PointerRollback, StorageQuotaExceeded, TamperedData
from peergos_node.client.http import HttpSpace, RemoteError, RemoteQuotaExceeded
from peergos_node.client.tasks import task_group
from peergos_node.crypto.bat import Bat, BatWithId
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.cryptree.capabilities import AbsoluteCapability
from peergos_node.cryptree.fragments import MAX_FRAGMENT_BLOCK_SIZE
from peergos_node.cryptree.node import CryptreeNode, ReadNode
from peergos_node.cryptree.relative import ChildrenLinks
from peergos_node.errors import BadSignature
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import SignedPointerUpdate, verify_signed_pointer
from peergos_node.mutable.writer_data import WriterData

MAX_REQUEST_BYTES = MAX_FRAGMENT_BLOCK_SIZE
"""Most block bytes in one `block/put/bulk` request (Peergos `MAX_BLOCK_SIZE`: 1 MiB + 100)."""
MAX_BLOCKS_PER_REQUEST = 500
MAX_CHAMP_KEYS_PER_REQUEST = 20
"""`champ/get/bulk` accepts at most 20 lookups (`MAX_CHAMP_GETS`)."""
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
MAX_CACHED_BLOCK = 256 * 1024
"""Blocks larger than this (file fragments) are not cached."""
PARALLEL_REQUESTS = 4
"""Concurrent block requests for one call (fragments of a chunk)."""
DECODED_CACHE_BYTES = 128 * 1024 * 1024
"""Bound on the decoded-node cache (entries weighed by their approximate memory)."""
DECODED_NODE_OVERHEAD = 2048
"""Approximate memory of a decoded node besides its block's size."""


def bat_with_id(bat: Bat | None) -> BatWithId | None:
    """The `BatWithId` a server checks a BAT-guarded read against."""
    return None if bat is None else BatWithId.calculated(bat)


@dataclass(frozen=True)
class CommittedWriterData:
    """A writer's state as committed: the WriterData, its CID and the pointer sequence (None when the
    writer has no pointer yet)."""

    writer: PublicKeyHash
    cid: Cid | None
    data: WriterData
    sequence: int | None

    @property
    def tree(self) -> Cid | None:
        """Root of the writer's filesystem CHAMP."""
        return self.data.tree


@dataclass(frozen=True)
class Lookup:
    """One verified CHAMP lookup: the value (a node CID, or None when absent) and, when the server sent
    it (the BAT allowed), the value block."""

    value: Cid | None
    block: bytes | None


class BlockCache:
    """Verified blocks by CID, bounded by total bytes (least recently used evicted first)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[Cid, bytes] = OrderedDict()
        self._size = 0

    def get(self, cid: Cid) -> bytes | None:
        """The block, or None."""
        data = self._blocks.get(cid)
        if data is not None:
            self._blocks.move_to_end(cid)
        return data

    def put_verified(self, cid: Cid, data: bytes) -> None:
        """Remember a block already checked against `cid` (large blocks are skipped)."""
        if len(data) > MAX_CACHED_BLOCK or cid in self._blocks:
            return
        self._blocks[cid] = data
        self._size += len(data)
        while self._size > self.max_bytes and self._blocks:
            _, old = self._blocks.popitem(last=False)
            self._size -= len(old)

    def clear(self) -> None:
        """Forget every block."""
        self._blocks.clear()
        self._size = 0

    def __contains__(self, cid: object) -> bool:
        return cid in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)


DecodedKey = tuple[Cid, bytes, bytes | None]
"""(node CID, read key, write key or a tag) of a decoded-cache entry."""
Decoded = (
    tuple[CryptreeNode, ReadNode, SigningPrivateKeyAndPublicHash | None] | ChildrenLinks | AbsoluteCapability
)
"""A decoded-cache entry: a parsed and opened node with its writer-link signer, a child list, or a
child's capability opened from its link."""


class DecodedCache:
    """Parsed and decrypted node blocks and child lists by (CID, keys): a node block is content addressed
    and decryption is a pure function of block and keys, so an entry never goes stale, and a hit needs
    the keys. Spares re-parsing and re-decrypting every node on each listing or path walk (the filesystem
    code in `nodes.py` fills it). LRU, bounded by `max_bytes` (the sum of the weights given, which
    approximate each entry's memory: a folder of 10,000 small files takes about 80 MiB)."""

    def __init__(self, max_bytes: int = DECODED_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[DecodedKey, tuple[Decoded, int]] = OrderedDict()
        self._size = 0

    def get(self, key: DecodedKey) -> Decoded | None:
        """The cached value, or None."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        self._entries.move_to_end(key)
        return hit[0]

    def put(self, key: DecodedKey, value: Decoded, weight: int) -> None:
        """Remember a value of about `weight` bytes (evicting the least recently used beyond the bound)."""
        if weight > self.max_bytes or key in self._entries:
            return
        self._entries[key] = (value, weight)
        self._size += weight
        while self._size > self.max_bytes:
            _, (_, w) = self._entries.popitem(last=False)
            self._size -= w

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._size = 0

    def __len__(self) -> int:
        return len(self._entries)


_SHA256_PREFIX = b"\x12\x20"


class _ProofStore:
    """Blocks of a CHAMP proof by sha2-256 digest: a block is only ever returned for the CID it hashes to."""

    def __init__(self, by_digest: dict[bytes, bytes]) -> None:
        self._by_digest = by_digest

    def get(self, cid: Cid) -> bytes | None:
        mh = cid.multihash
        if len(mh) != 34 or mh[:2] != _SHA256_PREFIX:
            return None
        return self._by_digest.get(mh[2:])


class _CacheStore:
    """The block cache as a CHAMP block getter (reads only)."""

    def __init__(self, cache: BlockCache) -> None:
        self._cache = cache

    def get(self, cid: Cid) -> bytes | None:
        return self._cache.get(cid)


@dataclass
class NetworkStats:
    """Counters for tests, benchmarks and the shell."""

    champ_requests: int = 0
    block_requests: int = 0
    block_puts: int = 0
    pointer_commits: int = 0
    merges: int = 0


class NetworkAccess:
    """Verified reads and signed writes against one home server (see the module docstring)."""

    def __init__(
        self, net: Network, *, space: HttpSpace | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.net = net
        self.space = space if space is not None else HttpSpace(net.storage.http)
        self.cache = BlockCache(cache_bytes)
        self.node_cache = NodeCache()
        self.decoded = DecodedCache()
        self.stats = NetworkStats()
        self._seen: dict[PublicKeyHash, tuple[int | None, Cid | None]] = {}
        self._limit = trio.CapacityLimiter(PARALLEL_REQUESTS)

    def clear_caches(self) -> None:
        """Drop cached blocks and decoded nodes (pointer sequences seen are kept: they guard rollbacks)."""
        self.cache.clear()
        self.node_cache.clear()
        self.decoded.clear()

    # ---- pointers and WriterData -----------------------------------------------------------------
    def note_pointer(self, writer: PublicKeyHash, update: PointerUpdate) -> None:
        """Record a pointer state as seen (after verifying it, or after our own commit)."""
        current = self._seen.get(writer)
        if current is None or current[0] is None or (update.sequence or 0) >= current[0]:
            self._seen[writer] = (update.sequence, update.updated)

    @staticmethod
    def _check_rollback(
        writer: PublicKeyHash, seen: tuple[int | None, Cid | None] | None, update: PointerUpdate | None
    ) -> None:
        """Refuse an answer older than `seen`, the state known before the request was sent (a later
        commit of our own may overtake a request in flight, so the check cannot use the newest state)."""
        if seen is None:
            return
        seen_seq, seen_target = seen
        if update is None:
            raise PointerRollback(f"the server reports no pointer for writer {writer}, which had one")
        seq = update.sequence
        if seen_seq is not None and (seq is None or seq < seen_seq):
            raise PointerRollback(
                f"the server sent pointer sequence {seq} for writer {writer} after {seen_seq}"
            )
        if seq == seen_seq and update.updated != seen_target:
            raise PointerRollback(f"the server sent two different pointers with sequence {seq}")

    async def get_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> PointerUpdate | None:
        """The writer's current pointer update, signature verified and checked against rollback."""
        seen = self._seen.get(writer)
        signed = await self.net.pointers.get_pointer(owner, writer)
        if signed is None:
            self._check_rollback(writer, seen, None)
            return None
        try:
            update = verify_signed_pointer(writer, signed)
        except (BadSignature, DecodeError, ValueError) as e:
            raise TamperedData(f"pointer of writer {writer} does not verify: {e}") from None
        self._check_rollback(writer, seen, update)
        self.note_pointer(writer, update)
        return update

    async def writer_data(self, owner: PublicKeyHash, writer: PublicKeyHash) -> CommittedWriterData:
        """The writer's committed state (an empty WriterData if it has no pointer yet)."""
        update = await self.get_pointer(owner, writer)
        if update is None or update.updated is None:
            return CommittedWriterData(writer, None, WriterData(controller=writer), None)
        data = await self.get_block(owner, update.updated)
        try:
            wd = WriterData.deserialize(data)
        except (DecodeError, ValueError) as e:
            raise TamperedData(f"WriterData {update.updated} is malformed: {e}") from None
        if wd.controller != writer:
            raise TamperedData(f"WriterData {update.updated} is not controlled by writer {writer}")
        return CommittedWriterData(writer, update.updated, wd, update.sequence)

    # ---- blocks ----------------------------------------------------------------------------------
    def cached(self, cid: Cid) -> bytes | None:
        """A verified block from the cache."""
        return self.cache.get(cid)

    def remember(self, cid: Cid, data: bytes) -> None:
        """Cache a block we built ourselves (its CID computed from the bytes)."""
        self.cache.put_verified(cid, data)

    async def get_block(self, owner: PublicKeyHash, cid: Cid, bat: Bat | None = None) -> bytes:
        """A hash-verified block (TamperedData if the server lacks it or sends other bytes)."""
        data = self.cache.get(cid)
        if data is not None:
            return data
        self.stats.block_requests += 1
        try:
            got = await self.net.storage.get_block(owner, cid, bat_with_id(bat))
        except DecodeError as e:
            raise TamperedData(f"block {cid} does not match its hash: {e}") from None
        if got is None:
            raise TamperedData(f"the server does not have block {cid}, which the tree links to")
        self.cache.put_verified(cid, got)
        return got

    async def get_blocks(self, owner: PublicKeyHash, wanted: Sequence[tuple[Cid, Bat | None]]) -> list[bytes]:
        """Several hash-verified blocks in order (cached ones from the cache). The others go out in up to
        `PARALLEL_REQUESTS` runs of consecutive blocks, each run one `HttpStorage.get_blocks` call (one
        worker thread for the run instead of one hand-off per block)."""
        out: list[bytes] = [b""] * len(wanted)
        missing: list[int] = []
        for i, (cid, _) in enumerate(wanted):
            data = self.cache.get(cid)
            if data is None:
                missing.append(i)
            else:
                out[i] = data
        if len(missing) == 1:
            i = missing[0]
            out[i] = await self.get_block(owner, wanted[i][0], wanted[i][1])
            return out

        async def run(indices: list[int]) -> None:
            async with self._limit:
                self.stats.block_requests += len(indices)
                asked = [(wanted[i][0], bat_with_id(wanted[i][1])) for i in indices]
                try:
                    got = await self.net.storage.get_blocks(owner, asked, parallel=1)
                except DecodeError as e:
                    raise TamperedData(f"a block does not match its hash: {e}") from None
            for i, data in zip(indices, got, strict=True):
                cid = wanted[i][0]
                if data is None:
                    raise TamperedData(f"the server does not have block {cid}, which the tree links to")
                self.cache.put_verified(cid, data)
                out[i] = data

        if missing:
            size = -(-len(missing) // min(PARALLEL_REQUESTS, len(missing)))
            async with task_group() as nursery:
                for lo in range(0, len(missing), size):
                    nursery.start_soon(run, missing[lo : lo + size])
        return out

    async def fetch_champ_node(self, owner: PublicKeyHash, cid: Cid) -> None:
        """Make sure a CHAMP node is in the cache (CHAMP nodes are public blocks)."""
        if cid not in self.cache:
            await self.get_block(owner, cid)

    def local_champ(self) -> Champ:
        """A read-only CHAMP view over the verified cache (MissingBlock for anything not cached)."""
        return Champ(_CacheStore(self.cache), identity_hasher, cache=self.node_cache)

    async def champ_lookup(
        self, owner: PublicKeyHash, root: Cid, keys: Sequence[tuple[bytes, Bat | None]]
    ) -> dict[bytes, Lookup]:
        """Verified lookups of map keys in the filesystem CHAMP `root` (see the module docstring).

        A key looked up with its BAT also yields its value block if the server holds it; keys looked up
        with None only report presence.
        """
        out: dict[bytes, Lookup] = {}
        remote: list[tuple[bytes, Bat | None]] = []
        local = self.local_champ()
        for key, bat in keys:
            try:
                value = local.get(root, key)
            except MissingBlock:
                remote.append((key, bat))
                continue
            cid = _as_link(value, key)
            block = None
            if cid is not None and bat is not None:
                block = self.cache.get(cid)
                if block is None:
                    remote.append((key, bat))
                    continue
            out[key] = Lookup(cid, block)
        for start in range(0, len(remote), MAX_CHAMP_KEYS_PER_REQUEST):
            part = remote[start : start + MAX_CHAMP_KEYS_PER_REQUEST]
            out.update(await self._remote_lookup(owner, root, part))
        return out

    async def _remote_lookup(
        self, owner: PublicKeyHash, root: Cid, keys: Sequence[tuple[bytes, Bat | None]]
    ) -> dict[bytes, Lookup]:
        self.stats.champ_requests += 1
        try:
            blocks = await self.net.storage.champ_lookup(owner, root, [(k, bat_with_id(b)) for k, b in keys])
        except DecodeError as e:
            raise TamperedData(f"malformed champ/get/bulk answer: {e}") from None
        if len(blocks) > MAX_PROOF_BLOCKS:
            raise TamperedData(f"more than {MAX_PROOF_BLOCKS} blocks in a CHAMP proof")
        by_digest: dict[bytes, bytes] = {}
        for data in blocks:
            by_digest[hashlib.sha256(data).digest()] = data
        # Walk the answer as `champ.verify_paths` does (each block used only under the CID it hashes to),
        # sharing the decoded-node cache: nodes met in earlier answers (the top levels) are not decoded
        # again.
        proof = Champ(_ProofStore(by_digest), identity_hasher, cache=self.node_cache)
        values: dict[bytes, object] = {}
        try:
            for key, _ in keys:
                values[key] = proof.get(root, key)
        except MissingBlock as e:
            raise TamperedData(f"the server's CHAMP proof lacks node {e.cid}") from None
        except DecodeError as e:
            raise TamperedData(f"the server's CHAMP proof does not verify: {e}") from None
        out: dict[bytes, Lookup] = {}
        for key, bat in keys:
            cid = _as_link(values[key], key)
            block = None
            if cid is not None and bat is not None:
                mh = cid.multihash
                block = by_digest.get(mh[2:]) if mh[:2] == b"\x12\x20" else None
                if block is None:  # withheld from the bulk answer: ask for the block itself
                    block = await self.get_block(owner, cid, bat)
                else:
                    self.cache.put_verified(cid, block)
            out[key] = Lookup(cid, block)
        # the path nodes are verified (each was used only under the CID it hashes to): cache them
        for digest, data in by_digest.items():
            if len(data) <= MAX_CACHED_BLOCK:
                self.cache.put_verified(Cid.v1(CODEC_DAG_CBOR, _SHA256_PREFIX + digest), data)
        return out

    # ---- writes ----------------------------------------------------------------------------------
    async def start_transaction(self, owner: PublicKeyHash) -> str:
        """Open a server transaction (its blocks are safe from GC until it is closed)."""
        return await self.net.storage.start_transaction(owner)

    async def close_transaction(self, owner: PublicKeyHash, tid: str) -> None:
        """Close a server transaction (best effort: a lost close expires after 24 h)."""
        try:
            await self.net.storage.close_transaction(owner, tid)
        except RemoteError:
            pass

    async def put_blocks(
        self,
        owner: PublicKeyHash,
        signer: SigningPrivateKeyAndPublicHash,
        tid: str,
        blocks: Sequence[bytes],
        raw: bool,
        cids: Sequence[Cid] | None = None,
    ) -> None:
        """Sign and upload blocks, grouped into requests of at most 1 MiB + 100 bytes (`cids`, when the
        caller has them, spare hashing each block again for its signature)."""
        digests = [c.digest for c in cids] if cids is not None else [None] * len(blocks)
        groups: list[list[tuple[bytes, bytes | None]]] = []
        size = 0
        for block, digest in zip(blocks, digests, strict=True):
            if len(block) > MAX_REQUEST_BYTES:
                raise ValueError(f"a block of {len(block)} bytes exceeds the 1 MiB block limit")
            if (
                not groups
                or size + len(block) > MAX_REQUEST_BYTES
                or len(groups[-1]) >= MAX_BLOCKS_PER_REQUEST
            ):
                groups.append([])
                size = 0
            groups[-1].append((block, digest))
            size += len(block)

        async def send(group: list[tuple[bytes, bytes | None]]) -> None:
            sigs = [signer.secret.sign(d if d is not None else hashlib.sha256(b).digest()) for b, d in group]
            async with self._limit:
                self.stats.block_puts += 1
                try:
                    await self.net.storage.put_blocks(
                        owner, signer.public_key_hash, sigs, [b for b, _ in group], tid, raw
                    )
                except RemoteQuotaExceeded as e:
                    raise StorageQuotaExceeded(e.message) from None

        if len(groups) == 1:
            await send(groups[0])
            return
        async with task_group() as nursery:
            for group in groups:
                nursery.start_soon(send, group)

    async def set_pointer(
        self, owner: PublicKeyHash, signer: SigningPrivateKeyAndPublicHash, update: PointerUpdate
    ) -> None:
        """Sign and commit one pointer update (RemotePointerCas when the server's target differs)."""
        signed = signer.secret.sign(update.serialize())
        self.stats.pointer_commits += 1
        await self.net.pointers.set_pointer(owner, signer.public_key_hash, signed)
        self.note_pointer(signer.public_key_hash, update)

    async def set_pointers(
        self, owner: PublicKeyHash, updates: Sequence[tuple[SigningPrivateKeyAndPublicHash, PointerUpdate]]
    ) -> None:
        """Commit several writers' pointer updates atomically (`setPointers`)."""
        signed = [SignedPointerUpdate(s.public_key_hash, s.secret.sign(u.serialize())) for s, u in updates]
        self.stats.pointer_commits += 1
        await self.net.pointers.set_pointers(owner, signed)
        for s, u in updates:
            self.note_pointer(s.public_key_hash, u)


def _as_link(value: object, key: bytes) -> Cid | None:
    if value is None:
        return None
    if type(value) is not Cid:
        raise TamperedData(f"filesystem CHAMP maps key {key.hex()[:16]}.. to a non-link value")
    return value


def reachable_new_blocks(
    root: Cid, dag_blocks: dict[Cid, bytes], raw_blocks: dict[Cid, bytes]
) -> tuple[list[Cid], list[Cid]]:
    """The buffered dag-cbor and raw blocks reachable from `root` through buffered blocks (the rest were
    superseded within the batch and need not be uploaded)."""
    dag: list[Cid] = []
    raw: list[Cid] = []
    seen: set[Cid] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        if cid in raw_blocks:
            raw.append(cid)
            continue
        data = dag_blocks.get(cid)
        if data is None:
            continue
        dag.append(cid)
        stack.extend(_links(dag_cbor.decode(data)))
    return dag, raw


def _links(value: object) -> Iterable[Cid]:
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is Cid:
            yield v
        elif type(v) is list:
            stack.extend(v)
        elif type(v) is dict:
            stack.extend(v.values())


__all__ = [
    "DEFAULT_CACHE_BYTES",
    "MAX_CHAMP_KEYS_PER_REQUEST",
    "MAX_REQUEST_BYTES",
    "BlockCache",
    "CommittedWriterData",
    "DECODED_NODE_OVERHEAD",
    "DecodedCache",
    "Lookup",
    "NetworkAccess",
    "NetworkStats",
    "bat_with_id",
    "task_group",
    "reachable_new_blocks",
]
