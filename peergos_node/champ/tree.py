"""Operations on merkle-CHAMP trees over a block store (spec/peergos.md §5.2, §5.3, §4.4).

A tree is named by the CID of its root node; every operation is a pure function of the blocks reachable
from the roots it is given (read through a `BlockGetter`) and writes the nodes it creates through a
`BlockStore`. A `Champ` bundles the store, the key hasher of the tree (see `hashers`) and a bounded
cache of decoded nodes.

**Canonical form.** Java Peergos' tree shape depends only on the key set: at depth d a position holds a
bucket when at most 4 keys share its hash bits down to d, and otherwise a child node built the same way at
depth d + 1 (the root is always a node). Java gets there incrementally (bucket inserts, pushing an
overflowing bucket down a level, and "canonical delete" collapsing a child of 4 keys back into a bucket
of its parent). Here every edit is done as a batch: the changes are grouped by hash bits, pushed down the
existing tree, and each touched position is rebuilt from its final key set (a bucket when <= 4 keys, a
fresh canonical child otherwise; a modified child that ends with no grandchildren and <= 4 keys collapses
into a bucket). The result is canonical whatever the history, which the vectors and the model test check
against Java's bytes. Only positions with changes are visited; untouched subtrees keep their CIDs.

**Writes.** An edit first builds the new nodes in memory and performs every compare-and-set check, so a
failed CAS (or a hash collision) writes nothing; then it encodes each new node once, children before
parents, and puts it. A batch of N changes thus writes each modified node once instead of once per
change, which is what makes bulk loads (`build`, `put_all`, `apply`, merges) cheap. Nodes remember the
encoded CBOR item of each position (`ChampNode.segments`), so re-encoding a modified node only encodes the
positions that changed. Pushing more than 4 keys with identical hash bits below depth 31 raises
`HashCollision` ("Hash collision!").

**CAS semantics.** `put(key, expected, value)` and `remove(key, expected)` compare the current value
(None when absent, and for a mapping to CBOR null, as Java's `Optional.empty()`) with `expected` and raise
`CasError` on a mismatch. Java skips the check when the key is absent; here an absent key only matches
`expected=None`. Removing an absent key with `expected=None` is a no-op.

**Diff and merge** (`ChampUtil.applyToDiff`, `ChampUtil.merge`, §4.4). `diff` walks both trees in parallel
by bit position, skips subtrees whose CIDs are equal, and re-buckets a bucket of one side against a child
node of the other by the keys' hash bits. It checks all 8 positions of every node (Java stops at the
highest set bit of the two bitmaps and so can miss removals). `merge(base, ours, theirs)` applies theirs'
changes onto ours with CAS on the base values, or raises `ConcurrentModification` when both sides changed
a common key; remote removals are removals (Java re-puts them as null values).

**Mirror BAT.** A root keeps its mirror BatId (the `{d, bats}` root form) through edits unless an edit
passes `mirror_bat=` to replace it; nodes below the root never carry one. (Java drops the root's BAT in
two remove paths when the caller passes none.)

**Proofs** (§5.3). `get_path` returns the blocks on a key's lookup path (the server side of
`champ/get` and `champ/get/bulk`); `verify_path` redoes the lookup from such a block list with every block
checked against its sha2-256 CID, so a client trusts no server.

**Hostile trees.** Nodes are decoded strictly (`node.decode_node`); walks stop with `DecodeError` below depth
31, and whole-tree walks (`items`, `diff`, `validate`) reject a DAG that repeats a node (a valid tree never
does), so a malicious store cannot make work grow beyond the blocks it serves. Blocks read through the store
are not re-hashed here: a store fed from untrusted sources must verify hashes itself (as `verify_paths`
does for proofs).
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ.cache import DEFAULT_CACHE_NODES, NodeCache
from peergos_node.champ.errors import (
    CasError,
    ChampError,
    ConcurrentModification,
    HashCollision,
    MissingBlock,
)
from peergos_node.champ.hashers import KeyHasher, identity_hasher
from peergos_node.champ.node import (
    MAX_BUCKET,
    MAX_DEPTH,
    WIDTH,
    Bucket,
    CborValue,
    ChampNode,
    assemble_node,
    decode_node,
    encode_bucket,
    encode_value,
    hash_int,
    key_order,
    link_item,
    node_segments,
)
from peergos_node.champ.store import BlockGetter

MAX_PROOF_BLOCKS = 4096
"""Most blocks `verify_path`/`verify_paths` accept (20 keys x 32 levels is 640; values add a few)."""

GC_PAUSE_OPS = 4096
"""Batches at least this large run with Python's cyclic GC paused: building a big tree allocates
long-lived tuples fast enough to trigger repeated full collections over the whole heap, which measured
2-3x the cost of the build itself at 100k keys. No reference cycles are created meanwhile."""


@contextmanager
def _gc_paused(n_ops: int) -> Iterator[None]:
    if n_ops < GC_PAUSE_OPS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Change(NamedTuple):
    """One key's change: `old` -> `new` (None = absent). The element type of `diff` and `apply`."""

    key: bytes
    old: CborValue
    new: CborValue


@dataclass(frozen=True, slots=True)
class ChampPath:
    """The lookup path of one key: the CIDs and bytes of every node visited, root first, and the value."""

    cids: tuple[Cid, ...]
    blocks: tuple[bytes, ...]
    value: CborValue


def same_value(a: CborValue, b: CborValue) -> bool:
    """dag-cbor equality of two mapping values (None = absent/null); `True` is not `1` here."""
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b):
        return False
    if ta in (Cid, bytes, str, int, bool):
        return bool(a == b)
    return encode_value(a) == encode_value(b)


# ---- in-memory drafts of new nodes -----------------------------------------------------------------

_Slot = Any  # Bucket (tuple of entries) | Cid (unchanged child) | _Draft (new child)


class _Draft:
    """A node being built: bit -> bucket, existing child CID, or new child draft; `enc` holds the encoded
    items of positions carried over unchanged from the node it replaces."""

    __slots__ = ("enc", "mirror_bat", "slots")

    def __init__(
        self, slots: dict[int, _Slot], mirror_bat: Cid | None = None, enc: dict[int, bytes] | None = None
    ) -> None:
        self.slots = slots
        self.mirror_bat = mirror_bat
        self.enc = {} if enc is None else enc


class _Op:
    """One change to apply: `check` says whether `expected` must match the current value."""

    __slots__ = ("check", "expected", "h", "key", "new")

    def __init__(self, key: bytes, h: int, expected: CborValue, new: CborValue, check: bool) -> None:
        self.key = key
        self.h = h
        self.expected = expected
        self.new = new
        self.check = check


def _sorted_bucket(entries: dict[bytes, CborValue]) -> Bucket:
    return tuple(sorted(entries.items(), key=lambda e: key_order(e[0])))


def _node_slots(node: ChampNode) -> dict[int, _Slot]:
    return dict(node.slots())


class Champ:
    """CHAMP operations for trees in one block store with one key hasher.

    Read operations need only `BlockGetter.get`; operations that create nodes also need
    `BlockStore.put`. `cache` (or a fresh one of `cache_size` nodes) holds decoded nodes.
    """

    __slots__ = ("_put", "cache", "hasher", "store")

    def __init__(
        self,
        store: BlockGetter,
        hasher: KeyHasher = identity_hasher,
        *,
        cache: NodeCache | None = None,
        cache_size: int = DEFAULT_CACHE_NODES,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.cache = cache if cache is not None else NodeCache(cache_size)
        put = getattr(store, "put", None)
        self._put: Callable[[bytes], Cid] | None = put if callable(put) else None

    # ---- reading -------------------------------------------------------------------------------
    def load(self, cid: Cid) -> ChampNode:
        """The decoded node named `cid` (MissingBlock if absent, DecodeError if malformed)."""
        cache = self.cache
        node = cache.get(cid)
        if node is not None:
            return node
        data = self.store.get(cid)
        if data is None:
            raise MissingBlock(cid)
        node = decode_node(data)
        cache.decodes += 1
        cache.put(cid, node)
        return node

    def _hash(self, key: bytes) -> int:
        return hash_int(self.hasher(key))

    def get(self, root: Cid, key: bytes) -> CborValue:
        """The value mapped to `key`, or None when absent (or mapped to CBOR null)."""
        key = bytes(key)
        h = self._hash(key)
        cached = self.cache.get
        node = cached(root) or self.load(root)
        shift = 0
        while True:
            b = 1 << ((h >> shift) & 7)
            if node.data_map & b:
                for k, v in node.buckets[(node.data_map & (b - 1)).bit_count()]:
                    if k == key:
                        return v
                return None
            if not node.node_map & b:
                return None
            shift += 3
            if shift >= 3 * MAX_DEPTH:
                raise DecodeError("CHAMP is deeper than 32 levels")
            cid = node.children[(node.node_map & (b - 1)).bit_count()]
            node = cached(cid) or self.load(cid)

    def get_path(self, root: Cid, key: bytes) -> ChampPath:
        """Every node block on the lookup path of `key` (root first) and the value found (or None)."""
        key = bytes(key)
        h = self._hash(key)
        cids: list[Cid] = []
        blocks: list[bytes] = []
        cid = root
        depth = 0
        while True:
            data = self.store.get(cid)
            if data is None:
                raise MissingBlock(cid)
            node = self.cache.get(cid)
            if node is None:
                node = decode_node(data)
                self.cache.decodes += 1
                self.cache.put(cid, node)
            cids.append(cid)
            blocks.append(data)
            b = 1 << ((h >> (3 * depth)) & 7)
            if node.data_map & b:
                bucket = node.buckets[(node.data_map & (b - 1)).bit_count()]
                value = next((v for k, v in bucket if k == key), None)
                return ChampPath(tuple(cids), tuple(blocks), value)
            if not node.node_map & b:
                return ChampPath(tuple(cids), tuple(blocks), None)
            depth += 1
            if depth >= MAX_DEPTH:
                raise DecodeError("CHAMP is deeper than 32 levels")
            cid = node.children[(node.node_map & (b - 1)).bit_count()]

    def get_paths(self, root: Cid, keys: Iterable[bytes]) -> list[bytes]:
        """The union of the lookup-path blocks of several keys, each block once (`champ/get/bulk`)."""
        seen: dict[Cid, bytes] = {}
        for key in keys:
            path = self.get_path(root, key)
            for cid, data in zip(path.cids, path.blocks, strict=True):
                seen.setdefault(cid, data)
        return list(seen.values())

    def _walk(self, root: Cid) -> Iterator[tuple[int, ChampNode]]:
        """(depth, node) for every node, parents before children in bit order; rejects repeated nodes."""
        seen = {root}
        stack: list[tuple[int, Cid]] = [(0, root)]
        while stack:
            depth, cid = stack.pop()
            node = self.load(cid)
            yield depth, node
            if node.children:
                if depth + 1 >= MAX_DEPTH:
                    raise DecodeError("CHAMP is deeper than 32 levels")
                for child in reversed(node.children):
                    if child in seen:
                        raise DecodeError(f"CHAMP repeats node {child}")
                    seen.add(child)
                    stack.append((depth + 1, child))

    def items(self, root: Cid) -> Iterator[tuple[bytes, CborValue]]:
        """Every (key, value) mapping of the tree, in tree order (bit positions, then bucket order)."""
        # Depth-first by bit position: a bucket at bit 2 comes before the child at bit 5.
        seen = {root}
        stack: list[tuple[int, Cid | Bucket]] = [(0, root)]
        while stack:
            depth, item = stack.pop()
            if type(item) is tuple:
                yield from item
                continue
            assert isinstance(item, Cid)
            node = self.load(item)
            if node.children and depth + 1 >= MAX_DEPTH:
                raise DecodeError("CHAMP is deeper than 32 levels")
            for _bit, slot in reversed(node.slots()):
                if type(slot) is tuple:
                    stack.append((depth, slot))
                else:
                    assert isinstance(slot, Cid)
                    if slot in seen:
                        raise DecodeError(f"CHAMP repeats node {slot}")
                    seen.add(slot)
                    stack.append((depth + 1, slot))

    def keys(self, root: Cid) -> Iterator[bytes]:
        """Every key of the tree."""
        for key, _value in self.items(root):
            yield key

    def size(self, root: Cid) -> int:
        """Number of mappings."""
        return sum(node.key_count() for _depth, node in self._walk(root))

    def node_cids(self, root: Cid) -> list[Cid]:
        """The CIDs of every node of the tree, root first."""
        out = [root]
        for _depth, node in self._walk(root):
            out.extend(node.children)
        return out

    def validate(self, root: Cid) -> int:
        """Check the whole tree is well formed and canonical; return its number of mappings.

        Every key must sit at the position its hash bits give, every child must hold more than
        MAX_BUCKET keys (else it would be a bucket), nothing lies below depth 31, no node repeats, and only
        the root may carry a mirror BAT. Violations raise DecodeError.
        """
        seen = {root}

        def walk(cid: Cid, depth: int, prefix: int) -> int:
            node = self.load(cid)
            if depth > 0 and node.mirror_bat is not None:
                raise DecodeError("CHAMP: a mirror BAT below the root")
            low = (1 << (3 * (depth + 1))) - 1
            total = 0
            for bit, slot in node.slots():
                want = prefix | (bit << (3 * depth))
                if type(slot) is tuple:
                    for key, _value in slot:
                        if self._hash(key) & low != want:
                            raise DecodeError(f"CHAMP: key {key.hex()} is at the wrong position")
                    total += len(slot)
                else:
                    assert isinstance(slot, Cid)
                    if depth + 1 >= MAX_DEPTH:
                        raise DecodeError("CHAMP is deeper than 32 levels")
                    if slot in seen:
                        raise DecodeError(f"CHAMP repeats node {slot}")
                    seen.add(slot)
                    sub = walk(slot, depth + 1, want)
                    if sub <= MAX_BUCKET:
                        raise DecodeError(f"CHAMP: child {slot} holds {sub} keys and should be a bucket")
                    total += sub
            return total

        return walk(root, 0, 0)

    # ---- writing -------------------------------------------------------------------------------
    def create_empty(self, mirror_bat: Cid | None = None) -> Cid:
        """Write an empty root (`83 40 40 80`, or its mirror-BAT map form) and return its CID."""
        return self._commit_root(_Draft({}, mirror_bat))

    def put(
        self, root: Cid, key: bytes, expected: CborValue, value: CborValue, *, mirror_bat: Cid | None = None
    ) -> Cid:
        """Map `key` to `value` if it currently maps to `expected` (None = absent), else CasError.

        `mirror_bat`, when given, becomes the root's mirror BAT; otherwise the root keeps its own.
        Returns the new root (the same one when nothing changed).
        """
        if value is None:
            raise ValueError("a CHAMP value cannot be None; use remove()")
        return self.apply(root, [Change(bytes(key), expected, value)], mirror_bat=mirror_bat)

    def remove(self, root: Cid, key: bytes, expected: CborValue, *, mirror_bat: Cid | None = None) -> Cid:
        """Remove `key` if it currently maps to `expected`, else CasError; canonical deletion."""
        return self.apply(root, [Change(bytes(key), expected, None)], mirror_bat=mirror_bat)

    def apply(self, root: Cid, changes: Iterable[Change], *, mirror_bat: Cid | None = None) -> Cid:
        """Apply changes (`new` None = remove) in order, each CAS-checked against `old`; all or nothing."""
        ops = [self._op(c.key, c.old, c.new, True) for c in changes]
        return self._apply_root(root, ops, mirror_bat)

    def put_all(
        self,
        root: Cid,
        items: Mapping[bytes, CborValue] | Iterable[tuple[bytes, CborValue]],
        *,
        mirror_bat: Cid | None = None,
    ) -> Cid:
        """Set many mappings whatever their current values, writing each new node once."""
        pairs = items.items() if isinstance(items, Mapping) else items
        ops: list[_Op] = []
        for key, value in pairs:
            if value is None:
                raise ValueError("a CHAMP value cannot be None; use remove_all()")
            ops.append(self._op(key, None, value, False))
        return self._apply_root(root, ops, mirror_bat)

    def remove_all(self, root: Cid, keys: Iterable[bytes], *, mirror_bat: Cid | None = None) -> Cid:
        """Remove many keys whatever their values (absent keys are ignored), writing each new node once."""
        ops = [self._op(key, None, None, False) for key in keys]
        return self._apply_root(root, ops, mirror_bat)

    def build(
        self,
        items: Mapping[bytes, CborValue] | Iterable[tuple[bytes, CborValue]],
        *,
        mirror_bat: Cid | None = None,
    ) -> Cid:
        """Write a new tree holding exactly `items` (no empty root is written first; with repeated keys
        the last value wins)."""
        mapping = items if isinstance(items, Mapping) else dict(items)
        hasher = self.hasher
        triples: list[tuple[bytes, CborValue, int]] = []
        for key, value in mapping.items():
            if value is None:
                raise ValueError("a CHAMP value cannot be None")
            key = bytes(key)
            triples.append((key, value, hash_int(hasher(key))))
        with _gc_paused(len(triples)):
            draft = _build(triples, 0)  # the canonical node at depth 0 is exactly the root
            draft.mirror_bat = mirror_bat
            return self._commit_root(draft)

    def _op(self, key: bytes, expected: CborValue, new: CborValue, check: bool) -> _Op:
        key = bytes(key)
        return _Op(key, self._hash(key), expected, new, check)

    def _apply_root(self, root: Cid, ops: list[_Op], mirror_bat: Cid | None) -> Cid:
        with _gc_paused(len(ops)):
            return self._apply_root_inner(root, ops, mirror_bat)

    def _apply_root_inner(self, root: Cid, ops: list[_Op], mirror_bat: Cid | None) -> Cid:
        node = self.load(root)
        result = self._apply_node(node, ops, 0)
        new_bat = node.mirror_bat if mirror_bat is None else mirror_bat
        if result is node:
            if new_bat == node.mirror_bat:
                return root
            result = _Draft(_node_slots(node), None, dict(node_segments(node)))
        assert isinstance(result, _Draft)
        result.mirror_bat = new_bat
        return self._commit_root(result)

    def _apply_node(self, src: ChampNode, ops: list[_Op], depth: int) -> ChampNode | _Draft:
        """Apply ops (all under this node's hash prefix) to a stored node.

        Returns `src` itself when nothing changed, else a draft of the new node.
        """
        shift = 3 * depth
        groups: list[list[_Op]] = [[], [], [], [], [], [], [], []]
        for op in ops:
            groups[(op.h >> shift) & 7].append(op)
        slots = _node_slots(src)
        enc: dict[int, bytes] | None = None
        for bit, group in enumerate(groups):
            if not group:
                continue
            slot = slots.get(bit)
            new_slot: Bucket | _Draft | None
            if slot is None or type(slot) is tuple:
                new_slot = self._apply_bucket(slot or (), group, depth)
            else:
                if depth + 1 >= MAX_DEPTH:
                    raise DecodeError("CHAMP is deeper than 32 levels")
                child = self.load(slot)
                new_child = self._apply_node(child, group, depth + 1)
                new_slot = None if new_child is child else _collapse(new_child)
            if new_slot is None:
                continue
            if enc is None:
                enc = dict(node_segments(src))
            enc.pop(bit, None)
            if new_slot == ():
                slots.pop(bit, None)
            else:
                slots[bit] = new_slot
        if enc is None:
            return src
        return _Draft(slots, src.mirror_bat, enc)

    def _apply_bucket(self, bucket: Bucket, ops: list[_Op], depth: int) -> Bucket | _Draft | None:
        """A bucket (possibly empty) after ops: None when unchanged, `()` when emptied, the new bucket,
        or a new child draft when it overflows."""
        entries = dict(bucket)
        changed = False
        for op in ops:
            key = op.key
            present = key in entries
            current = entries[key] if present else None
            if op.check and not same_value(current, op.expected):
                raise CasError(key, current, op.expected)
            if op.new is None:
                if present:
                    del entries[key]
                    changed = True
            elif not present or not same_value(current, op.new):
                entries[key] = op.new
                changed = True
        if not changed:
            return None
        if len(entries) <= MAX_BUCKET:
            return _sorted_bucket(entries)
        hashes = {op.key: op.h for op in ops}
        items = [(k, v, hashes[k] if k in hashes else self._hash(k)) for k, v in entries.items()]
        return _build(items, depth + 1)

    def _commit_root(self, draft: _Draft) -> Cid:
        put = self._put
        if put is None:
            raise TypeError("this Champ's block store is read-only (it has no put)")
        return self._commit(draft, put)

    def _commit(self, draft: _Draft, put: Callable[[bytes], Cid]) -> Cid:
        """Write a draft's new descendants, then the draft itself (each once); return its CID."""
        segs = draft.enc
        slots = draft.slots
        data_map = node_map = 0
        buckets: list[Bucket] = []
        children: list[Cid] = []
        for bit in sorted(slots):
            slot = slots[bit]
            if type(slot) is tuple:
                data_map |= 1 << bit
                buckets.append(slot)
                if bit not in segs:
                    segs[bit] = encode_bucket(slot)
            else:
                node_map |= 1 << bit
                if type(slot) is not Cid:
                    slot = self._commit(slot, put)
                    segs[bit] = link_item(slot)
                elif bit not in segs:
                    segs[bit] = link_item(slot)
                children.append(slot)
        data = assemble_node(data_map, node_map, segs, draft.mirror_bat)
        cid = put(data)
        if type(cid) is not Cid or cid.version != 1 or cid.codec != CODEC_DAG_CBOR:
            raise ChampError(f"block store named a CHAMP node {cid!r}, not a dag-cbor CIDv1")
        self.cache.put(
            cid, ChampNode(data_map, node_map, tuple(buckets), tuple(children), draft.mirror_bat, segs)
        )
        return cid

    # ---- diff and merge ------------------------------------------------------------------------
    def diff(self, a: Cid | None, b: Cid | None) -> Iterator[Change]:
        """The changes turning tree `a` into tree `b` (None = no tree): (key, value in a, value in b).

        Subtrees with equal CIDs are skipped without being read. Mappings to CBOR null count as absent.
        """
        if a == b:
            return
        left = self.load(a) if a is not None else None
        right = self.load(b) if b is not None else None
        seen_left: set[Cid] = set() if a is None else {a}
        seen_right: set[Cid] = set() if b is None else {b}
        yield from self._diff(left, right, [], [], 0, seen_left, seen_right)

    def _diff(
        self,
        left: ChampNode | None,
        right: ChampNode | None,
        left_extra: list[tuple[bytes, CborValue, int]],
        right_extra: list[tuple[bytes, CborValue, int]],
        depth: int,
        seen_left: set[Cid],
        seen_right: set[Cid],
    ) -> Iterator[Change]:
        # `x_extra`: mappings of a bucket one level up on side x, where the other side has a child node;
        # they take part at this depth grouped by their own hash bits.
        shift = 3 * depth
        for bit in range(WIDTH):
            lslot = _side_slot(left, left_extra, bit, shift)
            rslot = _side_slot(right, right_extra, bit, shift)
            l_is_link = isinstance(lslot, Cid)
            r_is_link = isinstance(rslot, Cid)
            if l_is_link or r_is_link:
                if lslot == rslot:
                    continue
                if depth + 1 >= MAX_DEPTH:
                    raise DecodeError("CHAMP is deeper than 32 levels")
                lnode = self._load_once(lslot, seen_left) if l_is_link else None
                rnode = self._load_once(rslot, seen_right) if r_is_link else None
                lx = [] if l_is_link else self._hashed(lslot)
                rx = [] if r_is_link else self._hashed(rslot)
                yield from self._diff(lnode, rnode, lx, rx, depth + 1, seen_left, seen_right)
            else:
                yield from _diff_buckets(lslot, rslot)

    def _load_once(self, cid: Cid, seen: set[Cid]) -> ChampNode:
        if cid in seen:
            raise DecodeError(f"CHAMP repeats node {cid}")
        seen.add(cid)
        return self.load(cid)

    def _hashed(self, entries: Iterable[Any]) -> list[tuple[bytes, CborValue, int]]:
        out: list[tuple[bytes, CborValue, int]] = []
        for e in entries:
            if len(e) == 3:
                out.append(e)
            else:
                out.append((e[0], e[1], self._hash(e[0])))
        return out

    def merge(self, base: Cid | None, ours: Cid, theirs: Cid | None, *, mirror_bat: Cid | None = None) -> Cid:
        """3-way merge: apply theirs' changes since `base` onto `ours` (ChampUtil.merge, spec §4.4).

        Raises ConcurrentModification when a key changed on both sides (even to the same value).
        """
        ours_keys = {c.key for c in self.diff(base, ours)}
        theirs_changes = list(self.diff(base, theirs))
        both = ours_keys.intersection(c.key for c in theirs_changes)
        if both:
            raise ConcurrentModification(frozenset(both))
        return self.apply(ours, theirs_changes, mirror_bat=mirror_bat)


def _side_slot(
    node: ChampNode | None, extra: list[tuple[bytes, CborValue, int]], bit: int, shift: int
) -> Any:
    """One side's content at `bit`: a Cid, or a sequence of mappings (possibly empty)."""
    if node is not None:
        b = 1 << bit
        if node.data_map & b:
            return node.buckets[(node.data_map & (b - 1)).bit_count()]
        if node.node_map & b:
            return node.children[(node.node_map & (b - 1)).bit_count()]
        return ()
    return [e for e in extra if (e[2] >> shift) & 7 == bit]


def _diff_buckets(left: Iterable[Any], right: Iterable[Any]) -> Iterator[Change]:
    lmap = {e[0]: e[1] for e in left}
    rmap = {e[0]: e[1] for e in right}
    for key in sorted(lmap.keys() | rmap.keys(), key=key_order):
        old = lmap.get(key)
        new = rmap.get(key)
        if not same_value(old, new):
            yield Change(key, old, new)


def _item_order(item: tuple[bytes, CborValue, int]) -> tuple[int, bytes]:
    return (len(item[0]), item[0])


def _build(items: list[tuple[bytes, CborValue, int]], depth: int) -> _Draft:
    """The canonical node at `depth` for mappings (key, value, hash int) sharing its hash prefix.

    Below the root such a node exists only for more than MAX_BUCKET mappings; a node pushed to depth
    MAX_DEPTH is a HashCollision."""
    if depth >= MAX_DEPTH:
        raise HashCollision()
    shift = 3 * depth
    groups: list[list[tuple[bytes, CborValue, int]]] = [[], [], [], [], [], [], [], []]
    for item in items:
        groups[(item[2] >> shift) & 7].append(item)
    slots: dict[int, _Slot] = {}
    for bit, group in enumerate(groups):
        if not group:
            continue
        if len(group) <= MAX_BUCKET:
            group.sort(key=_item_order)
            slots[bit] = tuple([(k, v) for k, v, _h in group])
        else:
            slots[bit] = _build(group, depth + 1)
    return _Draft(slots)


def _collapse(child: ChampNode | _Draft) -> Bucket | _Draft:
    """A modified child (depth >= 1) as its parent stores it: `()` if empty, one bucket if it holds at most
    MAX_BUCKET mappings and no children (canonical delete), else the child itself."""
    if not isinstance(child, _Draft):  # pragma: no cover - _apply_node returns drafts for changed nodes
        raise AssertionError("only drafts are collapsed")
    entries: dict[bytes, CborValue] = {}
    for slot in child.slots.values():
        if type(slot) is not tuple:
            return child
        entries.update(slot)
        if len(entries) > MAX_BUCKET:
            return child
    return _sorted_bucket(entries) if entries else ()


# ---- client-side verification of server-supplied paths (§5.3) --------------------------------------


class _VerifiedBlocks:
    """Blocks indexed by their own sha2-256 digest: a block is only ever returned for the CID it hashes to."""

    __slots__ = ("_by_digest",)

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._by_digest: dict[bytes, bytes] = {}
        for i, data in enumerate(blocks):
            if i >= MAX_PROOF_BLOCKS:
                raise DecodeError(f"more than {MAX_PROOF_BLOCKS} blocks in a CHAMP proof")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise DecodeError("a CHAMP proof block is not a byte string")
            data = bytes(data)
            self._by_digest[hashlib.sha256(data).digest()] = data

    def get(self, cid: Cid) -> bytes | None:
        mh = cid.multihash
        if len(mh) != 34 or mh[0] != 0x12 or mh[1] != 0x20:
            return None
        return self._by_digest.get(mh[2:])


def verify_paths(
    root: Cid, keys: Iterable[bytes], blocks: Iterable[bytes], hasher: KeyHasher = identity_hasher
) -> dict[bytes, CborValue]:
    """Look `keys` up in the tree `root` using only `blocks` (e.g. a `champ/get/bulk` answer).

    Each block is used only under the CID it hashes to, so the answers are what the real tree holds.
    Returns key -> value (None when absent); a missing or malformed block is a DecodeError.
    """
    champ = Champ(_VerifiedBlocks(blocks), hasher, cache_size=64)
    out: dict[bytes, CborValue] = {}
    try:
        for key in keys:
            out[bytes(key)] = champ.get(root, key)
    except MissingBlock as e:
        raise DecodeError(f"CHAMP proof lacks node {e.cid}") from None
    return out


def verify_path(
    root: Cid, key: bytes, blocks: Iterable[bytes], hasher: KeyHasher = identity_hasher
) -> CborValue:
    """Look one key up using only `blocks`; see `verify_paths`."""
    return verify_paths(root, [key], blocks, hasher)[bytes(key)]


__all__ = [
    "MAX_PROOF_BLOCKS",
    "Champ",
    "ChampPath",
    "Change",
    "same_value",
    "verify_path",
    "verify_paths",
]
