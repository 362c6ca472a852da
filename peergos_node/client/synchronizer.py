"""Serialised, merging writes to writers' filesystem trees (spec/peergos.md §4.4, §5.2, §6.6, §8; Java
`WriteSynchronizer`, `BufferedNetworkAccess`, `ChampUtil.merge`).

Theory of operation
-------------------
Every change to the filesystem is a **write batch** on one writer's tree: a map from CHAMP map keys to
new values (the CID of a new cryptree node, or None to remove the key) plus the blocks the batch built,
layered over the *base* state — the writer's WriterData as committed when the batch began. Reads inside
the batch (`lookup`) see the batch's own changes first and the verified base tree otherwise.

`WriteSynchronizer.apply(owner, signer, fn)` serialises batches per (owner, writer) inside this client
with a lock, re-reads the writer's signed pointer after taking it (another client may have committed
meanwhile), runs `fn(batch)` and commits:

1. the batch's changes are applied to the base tree in one bulk CHAMP edit (each changed node written
   once) and a new WriterData is built on top;
2. only the buffered blocks still reachable from that WriterData are uploaded (superseded intermediate
   nodes never leave the client), signed by the writer, inside a server transaction;
3. one signed pointer update `(base → new, sequence + 1)` commits it.

**Concurrent writers.** When the server refuses the pointer update (`PointerCAS`: another client
committed first), the remote state is fetched and verified and a **3-way merge** is done with the base
as common ancestor: the CHAMP diffs base→ours and base→theirs are compared (`Champ.diff`); keys changed on
one side only are simply combined. A key changed on both sides is resolved only if it is a directory
chunk this batch rewrote (`dir_hints` holds its read key and BAT): the three versions are decrypted and
their child lists merged by name — an entry changed on one side takes that side's value, the same change
on both sides is kept once, different changes to one name are a conflict — and the merged list is
re-encrypted under the directory's key (properties and links taken from whichever side changed them).
Anything else changed on both sides (a file's chunks, a name added twice, a directory removed on one side
and changed on the other) is a `ConcurrentModificationError`, and nothing of the batch is committed. The
merged tree is committed on top of the remote WriterData with the remote sequence + 1, and the loop
repeats if yet another commit slipped in. Blocks stay protected by the open server transaction until the
commit finishes.

`apply_multi` commits batches of several writers of one owner atomically with one `setPointers`;
if that CAS fails each writer is committed (and merged) on its own, as Java does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import trio

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ import Champ, Change, MissingBlock, identity_hasher, same_value
from peergos_node.client.errors import ConcurrentModificationError, TamperedData
from peergos_node.client.http import RemotePointerCas
from peergos_node.client.network import CommittedWriterData, Lookup, NetworkAccess, reachable_new_blocks
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.fragments import Fragment
from peergos_node.cryptree.node import CryptreeNode, ReadNode
from peergos_node.cryptree.relative import NamedRelativeCapability
from peergos_node.errors import BadCiphertext
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.writer_data import WriterData

T = TypeVar("T")

MAX_COMMIT_ATTEMPTS = 20
"""Merges tried before giving up on a writer that keeps changing under us."""
MAX_NODE_FETCHES = 100_000
"""Bound on CHAMP nodes fetched while one edit or diff runs (a tree never needs more)."""


@dataclass(frozen=True)
class DirHint:
    """How to decrypt a directory chunk a batch rewrote, for merging it with a concurrent change."""

    bat: Bat | None
    rbase_key: SymmetricKey


def fragment_refs(node: CryptreeNode) -> list[tuple[Cid, Bat | None]]:
    """Each fragment of a node's payload with the BAT that reads it (None for legacy public fragments)."""
    bats = node.payload.bats
    return [(cid, bats[i].bat if bats else None) for i, cid in enumerate(node.fragments)]


class _BatchStore:
    """CHAMP block store of a batch: its own new blocks first, then the verified cache."""

    def __init__(self, batch: WriteBatch) -> None:
        self._batch = batch

    def get(self, cid: Cid) -> bytes | None:
        data = self._batch.dag.get(cid)
        return data if data is not None else self._batch.net.cached(cid)

    def put(self, data: bytes) -> Cid:
        cid = Cid.for_block(CODEC_DAG_CBOR, data)
        self._batch.dag.setdefault(cid, data)
        return cid


class WriteBatch:
    """Changes to one writer's tree on top of a committed base state (see the module docstring)."""

    def __init__(
        self,
        net: NetworkAccess,
        owner: PublicKeyHash,
        signer: SigningPrivateKeyAndPublicHash,
        base: CommittedWriterData,
        rng: Rng = SYSTEM_RNG,
    ) -> None:
        self.net = net
        self.owner = owner
        self.signer = signer
        self.base = base
        self.rng = rng
        self.touched: dict[bytes, Cid | None] = {}
        self.dag: dict[Cid, bytes] = {}
        self.raw: dict[Cid, bytes] = {}
        self.uploaded: set[Cid] = set()
        self.dir_hints: dict[bytes, DirHint] = {}
        self.store = _BatchStore(self)

    @property
    def writer(self) -> PublicKeyHash:
        """The writer whose tree this batch changes."""
        return self.signer.public_key_hash

    def champ(self) -> Champ:
        """A CHAMP over the batch's blocks and the verified cache."""
        return Champ(self.store, identity_hasher, cache=self.net.node_cache)

    # ---- reads -------------------------------------------------------------------------------------
    async def lookup(self, keys: Sequence[tuple[bytes, Bat | None]]) -> dict[bytes, Lookup]:
        """Current values of map keys: this batch's changes, else the base tree (verified)."""
        out: dict[bytes, Lookup] = {}
        rest: list[tuple[bytes, Bat | None]] = []
        for key, bat in keys:
            if key in self.touched:
                value = self.touched[key]
                block = None if value is None else self.dag.get(value)
                if value is not None and block is None and bat is not None:  # stored beforehand
                    block = await self.net.get_block(self.owner, value, bat)
                out[key] = Lookup(value, block)
            else:
                rest.append((key, bat))
        if rest:
            if self.base.tree is None:
                out.update({k: Lookup(None, None) for k, _ in rest})
            else:
                out.update(await self.net.champ_lookup(self.owner, self.base.tree, rest))
        return out

    async def fragment_blocks(self, node: CryptreeNode) -> list[bytes]:
        """The fragment blocks of a node, from this batch or the server (with their BATs)."""
        out: list[bytes] = []
        wanted: list[tuple[int, Cid, Bat | None]] = []
        for i, (cid, bat) in enumerate(fragment_refs(node)):
            data = self.raw.get(cid)
            out.append(data if data is not None else b"")
            if data is None:
                wanted.append((i, cid, bat))
        if wanted:
            got = await self.net.get_blocks(self.owner, [(c, b) for _, c, b in wanted])
            for (i, _, _), data in zip(wanted, got, strict=True):
                out[i] = data
        return out

    # ---- writes ------------------------------------------------------------------------------------
    def put_node(
        self,
        map_key: bytes,
        node: CryptreeNode,
        fragments: Sequence[Fragment] = (),
        *,
        dir_hint: DirHint | None = None,
    ) -> Cid:
        """Store a cryptree node (and its fragment blocks) at `map_key`; `dir_hint` marks a directory
        chunk so a concurrent change to it can be merged."""
        cid = self.store.put(node.serialize())
        for f in fragments:
            self.raw[f.cid] = f.block
        self.touched[bytes(map_key)] = cid
        if dir_hint is not None:
            self.dir_hints[bytes(map_key)] = dir_hint
        return cid

    def put_existing(self, map_key: bytes, cid: Cid) -> None:
        """Map `map_key` to a node already stored on the server (e.g. chunks uploaded beforehand)."""
        self.touched[bytes(map_key)] = cid

    def remove(self, map_key: bytes) -> None:
        """Remove `map_key` from the tree (a no-op if absent)."""
        self.touched[bytes(map_key)] = None

    @property
    def is_empty(self) -> bool:
        """True when the batch changes nothing."""
        return not self.touched


class Snapshot:
    """The trees an operation reads: each writer's state fetched once (verified), overlaid by the write
    batches the operation holds."""

    def __init__(self, net: NetworkAccess) -> None:
        self.net = net
        self._states: dict[PublicKeyHash, CommittedWriterData] = {}
        self._batches: dict[PublicKeyHash, WriteBatch] = {}

    def attach(self, batch: WriteBatch) -> None:
        """Make reads of the batch's writer go through the batch."""
        self._batches[batch.writer] = batch
        self._states[batch.writer] = batch.base

    async def state(self, owner: PublicKeyHash, writer: PublicKeyHash) -> CommittedWriterData:
        """The writer's committed state (fetched on first use)."""
        st = self._states.get(writer)
        if st is None:
            st = await self.net.writer_data(owner, writer)
            self._states[writer] = st
        return st

    async def lookup(
        self, owner: PublicKeyHash, writer: PublicKeyHash, keys: Sequence[tuple[bytes, Bat | None]]
    ) -> dict[bytes, Lookup]:
        """Values (and value blocks) of map keys in a writer's tree."""
        batch = self._batches.get(writer)
        if batch is not None:
            return await batch.lookup(keys)
        st = await self.state(owner, writer)
        if st.tree is None:
            return {k: Lookup(None, None) for k, _ in keys}
        return await self.net.champ_lookup(owner, st.tree, keys)

    async def fragment_blocks(
        self, owner: PublicKeyHash, writer: PublicKeyHash, node: CryptreeNode
    ) -> list[bytes]:
        """Fragment blocks of a node in a writer's tree."""
        batch = self._batches.get(writer)
        if batch is not None:
            return await batch.fragment_blocks(node)
        return await self.net.get_blocks(owner, fragment_refs(node))


BeforeCommit = Callable[[PublicKeyHash, PublicKeyHash], Awaitable[None]]


class WriteSynchronizer:
    """Per-(owner, writer) serialisation of write batches, with commit and merge (module docstring)."""

    def __init__(self, net: NetworkAccess, rng: Rng = SYSTEM_RNG) -> None:
        self.net = net
        self.rng = rng
        self._locks: dict[tuple[PublicKeyHash, PublicKeyHash], trio.Lock] = {}
        self.before_commit: BeforeCommit | None = None
        """Awaited just before each pointer update is sent (tests use it to interleave clients)."""

    def _lock(self, owner: PublicKeyHash, writer: PublicKeyHash) -> trio.Lock:
        return self._locks.setdefault((owner, writer), trio.Lock())

    async def apply(
        self,
        owner: PublicKeyHash,
        signer: SigningPrivateKeyAndPublicHash,
        fn: Callable[[WriteBatch, Snapshot], Awaitable[T]],
    ) -> T:
        """Run `fn` on a fresh batch for the signer's writer and commit it (merging if needed)."""
        return (await self.apply_on(owner, signer, fn))[0]

    async def apply_on(
        self,
        owner: PublicKeyHash,
        signer: SigningPrivateKeyAndPublicHash,
        fn: Callable[[WriteBatch, Snapshot], Awaitable[T]],
        *,
        base: CommittedWriterData | None = None,
        tid: str | None = None,
    ) -> tuple[T, CommittedWriterData]:
        """`apply`, also returning the writer's new committed state. `base` (a state this client committed
        or read earlier) spares re-reading the pointer: should another client have committed since, the
        pointer CAS fails and the batch is merged onto the newer state as usual, so it suits writes that
        only add keys of their own (file chunks). `tid`: an open server transaction to write the blocks
        in (else one is opened and closed for the commit)."""
        async with self._lock(owner, signer.public_key_hash):
            snap = Snapshot(self.net)
            if base is None:
                base = await self.net.writer_data(owner, signer.public_key_hash)
            batch = WriteBatch(self.net, owner, signer, base, self.rng)
            snap.attach(batch)
            result = await fn(batch, snap)
            return result, await self.commit(batch, tid)

    async def apply_multi(
        self,
        owner: PublicKeyHash,
        signers: Sequence[SigningPrivateKeyAndPublicHash],
        fn: Callable[[dict[PublicKeyHash, WriteBatch], Snapshot], Awaitable[T]],
    ) -> T:
        """Like `apply` for several writers of one owner, committed with one atomic `setPointers`."""
        ordered = sorted(
            {s.public_key_hash: s for s in signers}.values(), key=lambda s: s.public_key_hash.to_bytes()
        )
        locks = [self._lock(owner, s.public_key_hash) for s in ordered]
        for lock in locks:
            await lock.acquire()
        try:
            snap = Snapshot(self.net)
            batches: dict[PublicKeyHash, WriteBatch] = {}
            for s in ordered:
                base = await self.net.writer_data(owner, s.public_key_hash)
                batch = WriteBatch(self.net, owner, s, base, self.rng)
                batches[s.public_key_hash] = batch
                snap.attach(batch)
            result = await fn(batches, snap)
            await self._commit_multi([b for b in batches.values() if not b.is_empty])
            return result
        finally:
            for lock in reversed(locks):
                lock.release()

    # ---- commit ------------------------------------------------------------------------------------
    async def _retry(self, batch: WriteBatch, fn: Callable[[], T]) -> T:
        """Run a CHAMP operation, fetching (verified) any node it finds missing, then retrying."""
        for _ in range(MAX_NODE_FETCHES):
            try:
                return fn()
            except MissingBlock as e:
                await self.net.fetch_champ_node(batch.owner, e.cid)
        raise TamperedData("CHAMP operation needed too many nodes")

    async def _prefetch(self, batch: WriteBatch, root: Cid, keys: Sequence[bytes]) -> None:
        """Fetch the lookup paths of keys in a committed tree with bulk CHAMP requests."""
        local = batch.champ()
        missing: list[tuple[bytes, Bat | None]] = []
        for key in keys:
            try:
                local.get(root, key)
            except MissingBlock:
                missing.append((key, None))
        if missing:
            await self.net.champ_lookup(batch.owner, root, missing)

    async def _base_changes(self, batch: WriteBatch) -> list[Change]:
        """The batch's effective changes relative to its base tree (no-ops dropped)."""
        root = batch.base.tree
        if root is None:
            return [Change(k, None, v) for k, v in batch.touched.items() if v is not None]
        keys = list(batch.touched)
        await self._prefetch(batch, root, keys)
        champ = batch.champ()
        out: list[Change] = []
        for key in keys:
            old = await self._retry(batch, functools.partial(champ.get, root, key))
            new = batch.touched[key]
            if not same_value(old, new):
                out.append(Change(key, old, new))
        return out

    async def _build(self, batch: WriteBatch, root: Cid | None, changes: list[Change]) -> Cid:
        champ = batch.champ()
        start = root if root is not None else champ.create_empty()
        return await self._retry(batch, lambda: champ.apply(start, changes))

    async def _upload(self, batch: WriteBatch, root: Cid, tid: str) -> None:
        dag_cids, raw_cids = reachable_new_blocks(root, batch.dag, batch.raw)
        raw_new = [c for c in raw_cids if c not in batch.uploaded]
        dag_new = [c for c in dag_cids if c not in batch.uploaded]
        if raw_new:
            await self.net.put_blocks(
                batch.owner, batch.signer, tid, [batch.raw[c] for c in raw_new], True, raw_new
            )
        if dag_new:
            await self.net.put_blocks(
                batch.owner, batch.signer, tid, [batch.dag[c] for c in dag_new], False, dag_new
            )
        batch.uploaded.update(raw_new)
        batch.uploaded.update(dag_new)
        for c in dag_new:
            self.net.remember(c, batch.dag[c])

    async def commit(self, batch: WriteBatch, tid: str | None = None) -> CommittedWriterData:
        """Commit a batch (see the module docstring); returns the writer's new committed state. `tid`: an
        open server transaction to use (else one is opened and closed here)."""
        changes = await self._base_changes(batch)
        if not changes:
            return batch.base
        root = await self._build(batch, batch.base.tree, changes)
        wd = batch.base.data.with_tree(root)
        wd_cid = batch.store.put(wd.serialize())
        if tid is not None:
            await self._upload(batch, wd_cid, tid)
            return await self._publish(batch, changes, wd, wd_cid, tid)
        tid = await self.net.start_transaction(batch.owner)
        try:
            await self._upload(batch, wd_cid, tid)
            return await self._publish(batch, changes, wd, wd_cid, tid)
        finally:
            await self.net.close_transaction(batch.owner, tid)

    async def _publish(
        self, batch: WriteBatch, changes: list[Change], target_wd: WriterData, target_cid: Cid, tid: str
    ) -> CommittedWriterData:
        remote = batch.base
        for _attempt in range(MAX_COMMIT_ATTEMPTS):
            update = PointerUpdate(remote.cid, target_cid, PointerUpdate.next_sequence(remote.sequence))
            if self.before_commit is not None:
                await self.before_commit(batch.owner, batch.writer)
            try:
                await self.net.set_pointer(batch.owner, batch.signer, update)
                return CommittedWriterData(batch.writer, target_cid, target_wd, update.sequence)
            except RemotePointerCas:
                remote = await self.net.writer_data(batch.owner, batch.writer)
                if remote.cid == target_cid:
                    return remote  # an earlier attempt went through after all
            self.net.stats.merges += 1
            merged = await self._merge(batch, changes, remote)
            target_wd = remote.data.with_tree(merged)
            target_cid = batch.store.put(target_wd.serialize())
            await self._upload(batch, target_cid, tid)
        raise ConcurrentModificationError(
            f"Concurrent modification: writer {batch.writer} kept changing; gave up after "
            f"{MAX_COMMIT_ATTEMPTS} merges"
        )

    async def _commit_multi(self, batches: list[WriteBatch]) -> None:
        if len(batches) <= 1:
            for b in batches:
                await self.commit(b)
            return
        owner = batches[0].owner
        prepared: list[tuple[WriteBatch, list[Change], WriterData, Cid]] = []
        for b in batches:
            changes = await self._base_changes(b)
            if not changes:
                continue
            wd = b.base.data.with_tree(await self._build(b, b.base.tree, changes))
            prepared.append((b, changes, wd, b.store.put(wd.serialize())))
        if not prepared:
            return
        tid = await self.net.start_transaction(owner)
        try:
            for b, _, _, wd_cid in prepared:
                await self._upload(b, wd_cid, tid)
            updates = [
                (b.signer, PointerUpdate(b.base.cid, wd_cid, PointerUpdate.next_sequence(b.base.sequence)))
                for b, _, _, wd_cid in prepared
            ]
            try:
                await self.net.set_pointers(owner, updates)
                return
            except RemotePointerCas:
                pass
            for b, changes, wd, wd_cid in prepared:
                await self._publish(b, changes, wd, wd_cid, tid)
        finally:
            await self.net.close_transaction(owner, tid)

    # ---- merge -------------------------------------------------------------------------------------
    async def _merge(self, batch: WriteBatch, ours: list[Change], remote: CommittedWriterData) -> Cid:
        """Our changes (base → ours) applied onto the remote tree, resolving directory chunks changed on
        both sides by merging their child lists."""
        theirs_root = remote.tree
        if theirs_root is None:
            raise ConcurrentModificationError("Concurrent modification: the writer's tree was removed")
        champ = batch.champ()
        base_root = batch.base.tree
        theirs = await self._retry(batch, lambda: list(champ.diff(base_root, theirs_root)))
        theirs_by_key = {c.key: c for c in theirs}
        final: list[Change] = []
        for c in ours:
            t = theirs_by_key.get(c.key)
            if t is None:
                final.append(c)
            elif same_value(t.new, c.new):
                continue  # the same change on both sides
            else:
                final.append(Change(c.key, t.new, await self._merge_key(batch, remote, c, t)))
        return await self._build(batch, theirs_root, final)

    async def _merge_key(
        self, batch: WriteBatch, remote: CommittedWriterData, ours: Change, theirs: Change
    ) -> Cid:
        hint = batch.dir_hints.get(ours.key)
        if hint is None or ours.old is None or ours.new is None or theirs.new is None:
            raise ConcurrentModificationError(
                "Concurrent modification of a file or directory! Another client changed the same "
                "file or folder at the same time; nothing was written"
            )
        base_node = CryptreeNode.parse(await self.net.get_block(batch.owner, ours.old, hint.bat))
        ours_node = CryptreeNode.parse(batch.dag[ours.new])
        theirs_node = CryptreeNode.parse(await self.net.get_block(batch.owner, theirs.new, hint.bat))
        try:
            reads = [n.read(hint.rbase_key) for n in (base_node, ours_node, theirs_node)]
        except (BadCiphertext, DecodeError) as e:
            raise ConcurrentModificationError(
                f"Concurrent modification: a directory was re-keyed or replaced elsewhere ({e})"
            ) from None
        if not all(r.is_directory for r in reads):
            raise ConcurrentModificationError("Concurrent modification of a file")
        lists = []
        for r in reads:
            lists.append(r.children(await batch.fragment_blocks(r.node)).named)
        merged_children = merge_children(lists[0], lists[1], lists[2])
        built = theirs_node.with_children(hint.rbase_key, merged_children, batch.rng)
        node = built.node
        node = _merge_field(node, reads, "from_parent", lambda r: r.from_parent.serialize())
        node = _merge_field(node, reads, "from_base", lambda r: r.from_base.serialize())
        cid = batch.store.put(node.serialize())
        for f in built.fragments:
            batch.raw[f.cid] = f.block
        return cid


def _merge_field(
    node: CryptreeNode, reads: list[ReadNode], name: str, plain: Callable[[ReadNode], bytes]
) -> CryptreeNode:
    """Take a node field (FromParent or FromBase) from ours if only ours changed it; conflict if both did."""
    base, ours, theirs = (plain(r) for r in reads)
    if ours in (base, theirs):
        return node
    if theirs != base:
        what = "properties" if name == "from_parent" else "keys or links"
        raise ConcurrentModificationError(
            f"Concurrent modification: a folder's {what} changed on two clients"
        )
    return dataclasses.replace(node, **{name: getattr(reads[1].node, name)})


def _entry_key(entry: NamedRelativeCapability | None) -> bytes | None:
    """What identifies a child entry, ignoring the nonce of its write-key link."""
    if entry is None:
        return None
    m = entry.to_cbor()
    m.pop("l", None)
    return dag_cbor.encode(m)


def merge_children(
    base: Sequence[NamedRelativeCapability],
    ours: Sequence[NamedRelativeCapability],
    theirs: Sequence[NamedRelativeCapability],
) -> list[NamedRelativeCapability]:
    """3-way merge of a directory chunk's child lists by name (ConcurrentModificationError when one name
    changed differently on both sides). Theirs' order is kept; our new names follow."""
    b = {e.name: e for e in base}
    o = {e.name: e for e in ours}
    t = {e.name: e for e in theirs}
    out: list[NamedRelativeCapability] = []
    conflicts: list[str] = []

    def pick(name: str) -> NamedRelativeCapability | None:
        bk, ok, tk = _entry_key(b.get(name)), _entry_key(o.get(name)), _entry_key(t.get(name))
        if ok == bk:
            return t.get(name)
        if tk in (bk, ok):
            return o.get(name)
        conflicts.append(name)
        return None

    for e in theirs:
        chosen = pick(e.name)
        if chosen is not None:
            out.append(chosen)
    for e in ours:
        if e.name not in t:
            chosen = pick(e.name)
            if chosen is not None:
                out.append(chosen)
    if conflicts:
        shown = ", ".join(repr(n) for n in sorted(conflicts)[:5])
        raise ConcurrentModificationError(
            f"Concurrent modification of {shown}: changed on two clients at the same time; "
            "nothing was written"
        )
    return out


__all__ = [
    "MAX_COMMIT_ATTEMPTS",
    "DirHint",
    "Snapshot",
    "WriteBatch",
    "WriteSynchronizer",
    "merge_children",
]
