"""The home server's trust-free storage: verified block writes, BAT-checked reads, signed pointer CAS,
transactions, usage and quota, garbage collection (spec/peergos.md §4.3, §5, §7, §8, §13).

Every write is checked before anything is stored:

- **blocks** (`put_blocks`): each block ≤ `MAX_BLOCK_SIZE` (1 MiB + 100 bytes of BAT prefix), the group
  ≤ the request limit, each signature = the writer's attached Ed25519 signature over sha256(block)
  (the sha256 is computed once and reused for the CID), dag-cbor blocks parse strictly; the writer must
  belong to a local user (its identity key, or a key provably owned through OwnerProofs, registered on
  pointer commits or "self-healed" by walking the owner's owned-key CHAMPs) and the owner must be that
  user's identity; the transaction must be open for the owner; the user must have space
  (`Storage quota reached!`, with Peergos' 1 MiB tolerance once over quota so deletes keep working).
  The transaction record, the blocks, their metadata (size, links, BAT ids) and the pending usage are
  written under the shared side of the GC lock.
- **pointers** (`set_pointer`, `set_pointers`): size ≤ 147 bytes, the writer's signature, CAS against the
  stored target (else `PointerCAS:<existing>,<seq>,<claimed>` as Peergos reports it), strictly
  increasing sequence (no rollback or replay), and a non-empty target must be a WriterData block
  present here whose `controller` is the writer (no pointing one writer at another's root). The store
  compare-and-sets on the stored signed bytes, so concurrent commits cannot both win. After a commit
  the writer's usage follows the DAG difference and keys its WriterData owns are registered.
- **reads** (`get_block`, `champ_lookup`): blocks whose metadata lists BAT ids need a `BatWithId` that
  matches one of them, or an S3-V4 block auth bound to the requesting peer; other blocks are public.
  `champ_lookup` walks through bounded caches of CHAMP node bytes and decoded nodes shared by all
  requests (listing a big folder asks for the same top levels of a tree in every 20-key request), and
  fetches the metadata of all its value blocks at once. Block metadata goes through a bounded in-memory
  cache (`CachingBlockMetadataStore`), so repeated reads of a block cost no database query.

All methods are synchronous and thread-safe; the HTTP layer runs them in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from nabu_py.blockstore.base import Blockstore
from nabu_py.codec import dag_cbor
from nabu_py.errors import BlockNotFound, DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.champ import Champ, ChampError, ChampNode, ChampPath, NodeCache, identity_hasher
from peergos_node.champ.hashers import owned_key_from_map_key
from peergos_node.crypto.bat import BatId, BatWithId, block_bat_ids
from peergos_node.crypto.block_auth import allow_read
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import PublicSigningKey
from peergos_node.errors import AuthError, BadSignature, PeergosError
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.pointer_update import MAX_SIGNED_POINTER_SIZE, PointerUpdate
from peergos_node.mutable.signed_pointer import SignedPointerUpdate, verify_signed_pointer
from peergos_node.mutable.writer_data import WriterData
from peergos_node.server.dag import contained_size_change
from peergos_node.server.gc import BlockDeleter, GcLock, GcReport, collect_garbage
from peergos_node.server.stores.metadata import (
    METADATA_CACHE_BYTES,
    BlockMetadata,
    BlockMetadataStore,
    CachingBlockMetadataStore,
)
from peergos_node.server.stores.pointers import PointerCas, PointerStore
from peergos_node.server.stores.transactions import TransactionError, TransactionStore
from peergos_node.server.stores.usage import UsageStore

log = logging.getLogger(__name__)

MAX_BLOCK_SIZE = 1024 * 1024 + 100
"""Peergos `ContentAddressedStorage.MAX_BLOCK_SIZE`: a 1 MiB fragment plus its BAT prefix."""
MAX_GROUP_SIZE = 2 * MAX_BLOCK_SIZE
"""Largest bulk write accepted in one request (Peergos reads the body with this limit)."""
MAX_BLOCKS_PER_PUT = 1000
MAX_CHAMP_GETS = 20
LOOKUP_CACHE_BYTES = 16 * 1024 * 1024
"""Bound on the CHAMP node blocks `champ_lookup` keeps in memory between requests."""
LOOKUP_CACHE_MAX_BLOCK = 16 * 1024
"""Larger blocks (not CHAMP nodes in practice) are not kept."""
LOOKUP_CACHE_NODES = 16_384
"""Decoded CHAMP nodes `champ_lookup` keeps between requests."""
USAGE_TOLERANCE = 1024 * 1024
MAX_OWNED_KEYS_WALK = 10_000


class StorageError(PeergosError):
    """A storage request was refused (bad input, not allowed, over quota, ...)."""


class QuotaExceeded(StorageError):
    """The write would take the user over quota (message as Peergos: 'Storage quota reached! ...')."""


class PointerCasError(StorageError):
    """The pointer's current target is not the one the update expects (message as Peergos' PointerCAS)."""

    def __init__(self, existing: Cid | None, sequence: int | None, claimed: Cid | None) -> None:
        self.existing = existing
        self.sequence = sequence
        self.claimed = claimed
        super().__init__(
            f"PointerCAS:{existing if existing else 'EMPTY'},{'' if sequence is None else sequence},"
            f"{claimed if claimed else 'EMPTY'}"
        )


@dataclass(frozen=True)
class ChunkMirrorCap:
    """A CHAMP lookup request of `champ/get/bulk`: map key plus an optional BAT for the value block."""

    map_key: bytes
    bat: BatWithId | None

    def to_cbor(self) -> dict[str, object]:
        out: dict[str, object] = {"m": self.map_key}
        if self.bat is not None:
            out["b"] = self.bat.to_cbor()
        return out

    @classmethod
    def from_cbor(cls, value: object) -> ChunkMirrorCap:
        if type(value) is not dict or type(value.get("m")) is not bytes or len(value["m"]) > 64:
            raise DecodeError("ChunkMirrorCap: expected {m: bytes, b?: BatWithId}")
        return cls(value["m"], BatWithId.from_cbor(value["b"]) if "b" in value else None)


def block_links(data: bytes) -> tuple[bytes, ...]:
    """Every tag-42 link in a dag-cbor block (as CID bytes)."""
    out: list[bytes] = []
    stack = [dag_cbor.decode(data)]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is Cid:
            out.append(v.to_bytes())
        elif t is list:
            stack.extend(v)
        elif t is dict:
            stack.extend(v.values())
    return tuple(out)


class _BlockGetter:
    """CHAMP reads straight from the block store."""

    def __init__(self, blocks: Blockstore) -> None:
        self._blocks = blocks

    def get(self, cid: Cid) -> bytes | None:
        try:
            return self._blocks.get(cid)
        except BlockNotFound:
            return None


class _CachingBlockGetter(_BlockGetter):
    """CHAMP reads through a bounded cache of small blocks (CHAMP nodes), shared by worker threads.

    `champ/get/bulk` answers carry the lookup path of every key, so listing a big folder reads the top
    levels of the same tree once per request; blocks are content addressed, so a cached copy never goes
    stale (at worst it outlives a garbage-collected block that no present root links to any more)."""

    def __init__(self, blocks: Blockstore, max_bytes: int, max_block: int) -> None:
        super().__init__(blocks)
        self._cache: OrderedDict[Cid, bytes] = OrderedDict()
        self._bytes = 0
        self._max_bytes, self._max_block = max_bytes, max_block
        self._lock = threading.Lock()

    def get(self, cid: Cid) -> bytes | None:
        data = self._cache.get(cid)  # one dict read: atomic under the GIL
        if data is not None:
            return data
        data = super().get(cid)
        if data is not None and len(data) <= self._max_block:
            with self._lock:
                if cid not in self._cache:
                    self._cache[cid] = data
                    self._bytes += len(data)
                    while self._bytes > self._max_bytes:
                        self._bytes -= len(self._cache.popitem(last=False)[1])
        return data


class _SharedNodeCache(NodeCache):
    """A NodeCache shared by worker threads: reads are single dict reads, writes are serialised."""

    __slots__ = ("_lock",)

    def __init__(self, max_nodes: int) -> None:
        super().__init__(max_nodes)
        self._lock = threading.Lock()

    def put(self, cid: Cid, node: ChampNode) -> None:
        with self._lock:
            super().put(cid, node)


class HomeStorage:
    """Everything the home server stores for its users, with every check in front of it."""

    def __init__(
        self,
        peer_id: Cid,
        blocks: Blockstore,
        metadata: BlockMetadataStore,
        transactions: TransactionStore,
        pointers: PointerStore,
        usage: UsageStore,
        clock: Callable[[], float] = time.time,
        atomic: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
        metadata_cache_bytes: int = METADATA_CACHE_BYTES,
    ) -> None:
        """`atomic` groups several stores' writes into one commit (the SQL stores' `Database.transaction`
        when they share one database). `metadata` is used through a `CachingBlockMetadataStore` of
        `metadata_cache_bytes` (0: none) unless it is one already."""
        self.peer_id = peer_id
        self.blocks = blocks
        if metadata_cache_bytes > 0 and not isinstance(metadata, CachingBlockMetadataStore):
            metadata = CachingBlockMetadataStore(metadata, metadata_cache_bytes)
        self.metadata: BlockMetadataStore = metadata
        self.transactions = transactions
        self.pointers = pointers
        self.usage = usage
        self.clock = clock
        self.gc_lock = GcLock()
        self._gc_written: set[bytes] | None = None
        self._pointer_lock = threading.Lock()
        self._getter = _BlockGetter(blocks)
        self._lookup_getter = _CachingBlockGetter(blocks, LOOKUP_CACHE_BYTES, LOOKUP_CACHE_MAX_BLOCK)
        self._lookup_nodes = _SharedNodeCache(LOOKUP_CACHE_NODES)
        self.atomic = atomic
        self._owner_cache: dict[bytes, str] = {}
        self._writer_cache: dict[bytes, str] = {}

    def now_ms(self) -> int:
        """The injected clock in milliseconds."""
        return int(self.clock() * 1000)

    # ---- users -----------------------------------------------------------------------------------
    def register_user(self, username: str, identity: PublicKeyHash, quota: int) -> None:
        """Make `username` a local user (signup, admin tools, tests)."""
        with self.atomic():
            self.usage.add_user(username, identity.to_bytes(), quota)
            self.usage.add_writer(username, identity.to_bytes())
        self._owner_cache.clear()

    def _local_user_of_owner(self, owner: PublicKeyHash) -> str:
        key = owner.to_bytes()
        username = self._owner_cache.get(key)
        if username is None:
            username = self.usage.user_of_identity(key)
            if username is None:
                raise StorageError(f"owner {owner} is not a user of this server")
            if len(self._owner_cache) > 10_000:
                self._owner_cache.clear()
            self._owner_cache[key] = username
        return username

    def _user_of_writer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> str:
        username = self._local_user_of_owner(owner)
        key = writer.to_bytes()
        if self._writer_cache.get(key) == username:
            return username
        rec = self.usage.writer(key)
        if rec is None and self._register_missed_writer(username, owner, writer):
            rec = self.usage.writer(key)
        if rec is None or rec.username != username:
            raise StorageError(f"Key not allowed to write to this server: {writer}")
        if len(self._writer_cache) > 100_000:
            self._writer_cache.clear()
        self._writer_cache[key] = username
        return username

    def _register_missed_writer(self, username: str, owner: PublicKeyHash, writer: PublicKeyHash) -> bool:
        """Peergos' self-healing: accept a writer provably owned (via OwnerProofs) by the owner."""
        if writer == owner:
            return False
        target = writer.to_bytes()
        seen: set[bytes] = set()
        frontier = [owner]
        while frontier and len(seen) < MAX_OWNED_KEYS_WALK:
            parent = frontier.pop()
            if parent.to_bytes() in seen:
                continue
            seen.add(parent.to_bytes())
            for owned in self._owned_keys(parent):
                if owned.to_bytes() == target:
                    self.usage.add_writer(username, target)
                    return True
                frontier.append(owned)
        return False

    def _writer_data(self, writer: PublicKeyHash) -> WriterData | None:
        signed = self.pointers.get(writer.to_bytes())
        if signed is None:
            return None
        target = PointerUpdate.from_signed_unverified(signed).updated
        if target is None:
            return None
        return self._load_writer_data(target)

    def _load_writer_data(self, cid: Cid) -> WriterData | None:
        try:
            return WriterData.deserialize(self.blocks.get(cid))
        except (BlockNotFound, DecodeError):
            return None

    def _owned_keys(self, parent: PublicKeyHash, wd: WriterData | None = None) -> list[PublicKeyHash]:
        """Keys `parent`'s WriterData proves it owns (owned-key CHAMP and named keys)."""
        wd = wd if wd is not None else self._writer_data(parent)
        if wd is None:
            return []
        proofs: list[OwnerProof] = list(wd.named.values())
        if wd.owned is not None:
            champ = Champ(self._getter, identity_hasher)
            try:
                for key, value in champ.items(wd.owned):
                    if type(value) is not Cid:
                        continue
                    try:
                        proof = OwnerProof.deserialize(self.blocks.get(value))
                    except (BlockNotFound, DecodeError):
                        continue
                    if proof.owned.cid != owned_key_from_map_key(key):
                        continue
                    proofs.append(proof)
                    if len(proofs) > MAX_OWNED_KEYS_WALK:
                        break
            except (ChampError, DecodeError):
                log.warning("unreadable owned-key CHAMP of %s", parent)
        out: list[PublicKeyHash] = []
        for proof in proofs:
            try:
                proof.verify(parent)
            except (BadSignature, DecodeError):
                continue
            out.append(proof.owned)
        return out

    # ---- transactions ----------------------------------------------------------------------------
    def start_transaction(self, owner: PublicKeyHash) -> str:
        """Open a write transaction for a local owner."""
        self._local_user_of_owner(owner)
        try:
            return self.transactions.start(owner.to_bytes(), self.now_ms())
        except TransactionError as e:
            raise StorageError(str(e)) from None

    def close_transaction(self, owner: PublicKeyHash, tid: str) -> bool:
        """Close a transaction; False if it was not open for this owner."""
        return self.transactions.close(tid, owner.to_bytes())

    # ---- blocks ----------------------------------------------------------------------------------
    def put_blocks(
        self,
        owner: PublicKeyHash,
        writer: PublicKeyHash,
        signatures: Sequence[bytes],
        blocks: Sequence[bytes],
        tid: str,
        raw: bool,
    ) -> list[Cid]:
        """Verify and store a group of signed blocks; return their CIDs in order."""
        if len(blocks) != len(signatures):
            raise StorageError("number of signatures does not match number of blocks")
        if not blocks or len(blocks) > MAX_BLOCKS_PER_PUT:
            raise StorageError(f"a write must carry 1 to {MAX_BLOCKS_PER_PUT} blocks")
        total = 0
        for b in blocks:
            if len(b) > MAX_BLOCK_SIZE:
                raise StorageError(f"Invalid block size: {len(b)}, blocks must be smaller than 1MiB!")
            total += len(b)
        if total > MAX_GROUP_SIZE:
            raise StorageError(f"Can't write group of blocks with total size bigger than {MAX_GROUP_SIZE}")
        key = self._writer_key(writer)
        codec = CODEC_RAW if raw else CODEC_DAG_CBOR
        cids: list[Cid] = []
        metas: list[BlockMetadata] = []
        for block, sig in zip(blocks, signatures, strict=True):
            digest = hashlib.sha256(block).digest()
            if key.unsign(sig) != digest:
                raise BadSignature("Invalid signature for block!")
            cid = Cid(1, codec, b"\x12\x20" + digest)
            links: tuple[bytes, ...] = ()
            if not raw:
                try:
                    links = block_links(block)
                except DecodeError as e:
                    raise StorageError(f"invalid dag-cbor block: {e}") from None
            bats = tuple(b.to_bytes() for b in block_bat_ids(cid, block))
            cids.append(cid)
            metas.append(BlockMetadata(len(block), links, bats))
        username = self._user_of_writer(owner, writer)
        if not self.transactions.is_open(tid, owner.to_bytes()):
            raise StorageError(f"no open transaction {tid!r} for this owner")
        self._check_quota(username, writer, total)
        # Blocks first (durable on return), then one commit for the transaction record, metadata and
        # pending usage; both under the shared GC lock, so a sweep sees either none or all of it.
        with self.gc_lock.shared():
            keys = [c.to_bytes() for c in cids]
            written = self._gc_written
            if written is not None:
                written.update(keys)
            fresh = [(c, b) for c, b in zip(cids, blocks, strict=True) if not self.blocks.has(c)]
            if fresh:
                self.blocks.put_many(fresh)
            with self.atomic():
                self.transactions.add_blocks(tid, owner.to_bytes(), keys)
                for k, m in zip(keys, metas, strict=True):
                    self.metadata.put(k, m)
                if fresh:
                    self.usage.add_pending(writer.to_bytes(), sum(len(b) for _, b in fresh))
        return cids

    def _writer_key(self, writer: PublicKeyHash) -> PublicSigningKey:
        try:
            return writer.inlined_signing_key()
        except (DecodeError, ValueError):
            raise StorageError(f"writer key {writer} is not an inline Ed25519 key") from None

    def _check_quota(self, username: str, writer: PublicKeyHash, size: int) -> None:
        quota, expected, errored = self.usage.account(username)
        limit = quota + USAGE_TOLERANCE if errored else quota
        if expected + size > limit:
            self.usage.set_errored(username, True)
            raise QuotaExceeded(
                f"Storage quota reached! \nUsed {expected} out of {quota} bytes. "
                f"Rejecting write of size {size}. \nPlease delete some files or request more space."
            )

    def has_block(self, cid: Cid) -> bool:
        """Whether the block is stored here."""
        return cid.is_identity or self.blocks.has(cid)

    def block_size(self, cid: Cid) -> int | None:
        """Stored size of a block, or None."""
        meta = self.metadata.get(cid.to_bytes())
        if meta is not None:
            return meta.size
        return self.blocks.size(cid)

    def _bat_ids(self, cid: Cid, data: bytes | None, meta: BlockMetadata | None) -> list[BatId]:
        if meta is not None:
            return [BatId.decode(b) for b in meta.bat_ids]
        if data is None:
            return []
        return list(block_bat_ids(cid, data))

    def may_read(
        self,
        cid: Cid,
        bat: BatWithId | None,
        auth: str | None,
        requester: Cid | None,
        data: bytes | None = None,
    ) -> bool:
        """The block-read rule: public unless it lists BAT ids; then a matching BAT or a valid auth."""
        return self._may_read(cid, bat, auth, requester, data, self.metadata.get(cid.to_bytes()))

    def _may_read(
        self,
        cid: Cid,
        bat: BatWithId | None,
        auth: str | None,
        requester: Cid | None,
        data: bytes | None,
        meta: BlockMetadata | None,
    ) -> bool:
        """`may_read` with the block's metadata (None: not recorded, use the block's bytes) already read."""
        ids = self._bat_ids(cid, data, meta)
        if not ids:
            return True
        if bat is not None and any(i.matches(bat.bat) for i in ids):
            return True
        if auth:
            return allow_read(
                cid, ids, requester if requester is not None else self.peer_id, auth, self.clock()
            )
        return False

    def get_block(
        self,
        cid: Cid,
        bat: BatWithId | None = None,
        auth: str | None = None,
        requester: Cid | None = None,
    ) -> bytes | None:
        """A stored block if the caller may read it; None if absent. AuthError if not allowed."""
        if cid.is_identity:
            return cid.digest
        try:
            data = self.blocks.get(cid)
        except BlockNotFound:
            return None
        if not self.may_read(cid, bat, auth, requester, data):
            raise AuthError(f"block {cid} needs a valid BAT")
        return data

    def champ_lookup(self, root: Cid, caps: Sequence[ChunkMirrorCap]) -> list[bytes]:
        """Blocks on the lookup path of every map key, plus each value block its BAT allows."""
        if len(caps) > MAX_CHAMP_GETS:
            raise StorageError(f"Too many caps in bulk champ get call! {len(caps)}")
        if not self.blocks.has(root):
            raise StorageError(f"Champ root not present locally: {root}")
        champ = Champ(self._lookup_getter, identity_hasher, cache=self._lookup_nodes)
        paths: list[ChampPath] = []
        for cap in caps:
            try:
                paths.append(champ.get_path(root, cap.map_key))
            except (ChampError, DecodeError) as e:
                raise StorageError(f"champ lookup failed: {e}") from None
        # the metadata of every value block in one store call (one query when none is cached)
        values = [p.value for p in paths if type(p.value) is Cid and not p.value.is_identity]
        metas = self.metadata.get_many([v.to_bytes() for v in values]) if values else {}
        out: dict[Cid, bytes] = {}
        for cap, path in zip(caps, paths, strict=True):
            for c, data in zip(path.cids, path.blocks, strict=True):
                out.setdefault(c, data)
            value = path.value
            if type(value) is Cid and not value.is_identity and value not in out:
                try:
                    data = self.blocks.get(value)
                except BlockNotFound:
                    continue
                if self._may_read(value, cap.bat, None, None, data, metas.get(value.to_bytes())):
                    out[value] = data
        return list(out.values())

    # ---- pointers --------------------------------------------------------------------------------
    def get_pointer(self, writer: PublicKeyHash) -> bytes | None:
        """The writer's current signed pointer."""
        return self.pointers.get(writer.to_bytes())

    def _validate_update(
        self, owner: PublicKeyHash, writer: PublicKeyHash, signed: bytes
    ) -> tuple[bytes | None, PointerUpdate]:
        if len(signed) > MAX_SIGNED_POINTER_SIZE:
            raise StorageError(f"Pointer update too big! {len(signed)}")
        self._user_of_writer(owner, writer)
        update = verify_signed_pointer(writer, signed)
        current = self.pointers.get(writer.to_bytes())
        existing = PointerUpdate.from_signed_unverified(current) if current is not None else None
        existing_target = existing.updated if existing else None
        existing_seq = existing.sequence if existing else None
        if update.original != existing_target:
            raise PointerCasError(existing_target, existing_seq, update.original)
        if existing_seq is not None and (update.sequence is None or update.sequence <= existing_seq):
            raise StorageError(
                f"Invalid sequence number update in mutable pointer: {existing_seq} => {update.sequence}"
            )
        if update.updated is not None:
            wd = self._load_writer_data(update.updated)
            if wd is None:
                raise StorageError(
                    f"new pointer target {update.updated} is not a WriterData block stored here"
                )
            if wd.controller != writer:
                raise StorageError(f"WriterData controller mismatch for {writer}")
        return current, update

    def set_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash, signed: bytes) -> bool:
        """Verify and apply one pointer update; raises on refusal, returns True when stored."""
        return self.set_pointers(owner, [SignedPointerUpdate(writer, signed)])

    def set_pointers(self, owner: PublicKeyHash, updates: Sequence[SignedPointerUpdate]) -> bool:
        """Verify every update, then apply them all atomically (or none)."""
        if not updates:
            raise StorageError("no pointer updates")
        if len({u.writer for u in updates}) != len(updates):
            raise StorageError("a multi-writer commit may update each writer once")
        with self._pointer_lock:
            checked = [(u, *self._validate_update(owner, u.writer, u.signed)) for u in updates]
            cas = [PointerCas(owner.to_bytes(), u.writer.to_bytes(), cur, u.signed) for u, cur, _ in checked]
            if not self.pointers.compare_and_set_many(cas):
                raise StorageError("pointer changed concurrently; retry")
            for u, _cur, upd in checked:
                with self.atomic():
                    self._after_commit(u.writer, upd.updated)
        return True

    def _after_commit(self, writer: PublicKeyHash, target: Cid | None) -> None:
        rec = self.usage.writer(writer.to_bytes())
        if rec is None:
            return
        new_root = target.to_bytes() if target else None
        delta = contained_size_change(rec.root, new_root, self.metadata)
        self.usage.set_usage(writer.to_bytes(), new_root, max(0, rec.usage + delta))
        if target is None:
            return
        wd = self._load_writer_data(target)
        for owned in self._owned_keys(writer, wd):
            self.usage.add_writer(rec.username, owned.to_bytes())
        total = self.usage.total_usage(rec.username)
        if self.usage.is_errored(rec.username) and total <= self.usage.quota(rec.username):
            self.usage.set_errored(rec.username, False)

    # ---- usage -----------------------------------------------------------------------------------
    def usage_of(self, owner: PublicKeyHash) -> int:
        """Bytes used by the owner's user."""
        return self.usage.total_usage(self._local_user_of_owner(owner))

    def quota_of(self, owner: PublicKeyHash) -> int:
        """The owner's quota in bytes."""
        return self.usage.quota(self._local_user_of_owner(owner))

    # ---- garbage collection ----------------------------------------------------------------------
    def collect_garbage(self) -> GcReport:
        """One mark-and-sweep pass (safe while writes continue)."""
        deleter = BlockDeleter(lambda: list(self.blocks.list()), self.blocks.rm)
        with self.gc_lock.exclusive():
            if self._gc_written is not None:
                raise StorageError("garbage collection is already running")
            self._gc_written = set()
        try:
            return collect_garbage(
                deleter,
                self.metadata,
                self.transactions,
                self.pointers,
                self.now_ms(),
                lock=self.gc_lock,
                spare=lambda: set(self._gc_written or ()),
            )
        finally:
            with self.gc_lock.exclusive():
                self._gc_written = None
