"""CHAMP operations: CAS puts/removes, canonical deletes, collisions, bulk edits, diff, merge, proofs."""

from __future__ import annotations

import random
from typing import Any

import pytest

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.champ import (
    EMPTY_NODE_BYTES,
    CasError,
    Champ,
    ChampError,
    ChampNode,
    Change,
    ConcurrentModification,
    HashCollision,
    MemoryBlockStore,
    MissingBlock,
    NodeCache,
    blake2b_hasher,
    decode_node,
    encode_node,
    same_value,
    verify_path,
    verify_paths,
)
from tests.helpers.champ import COLLIDING_KEYS, DEEP_KEYS, SHORT_KEYS, VALUES, dict_diff

V = VALUES
BAT = Cid(1, CODEC_RAW, b"\x12\x20" + bytes(32))
BAT2 = Cid(1, CODEC_RAW, b"\x12\x20" + bytes(range(32)))


def _keys(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


def _fresh(hasher: Any = None) -> tuple[MemoryBlockStore, Champ, Cid]:
    store = MemoryBlockStore()
    champ = Champ(store) if hasher is None else Champ(store, hasher)
    return store, champ, champ.create_empty()


def test_empty_tree() -> None:
    store, champ, root = _fresh()
    assert store.get(root) == EMPTY_NODE_BYTES
    assert champ.get(root, b"k") is None
    assert list(champ.items(root)) == [] and champ.size(root) == 0 and champ.validate(root) == 0


def test_put_get_update_remove() -> None:
    _store, champ, root = _fresh()
    r1 = champ.put(root, b"k" * 32, None, V[0])
    assert champ.get(r1, b"k" * 32) == V[0] and champ.get(root, b"k" * 32) is None
    r2 = champ.put(r1, b"k" * 32, V[0], V[1])
    assert champ.get(r2, b"k" * 32) == V[1]
    r3 = champ.remove(r2, b"k" * 32, V[1])
    assert r3 == root


def test_cas_failures_write_nothing() -> None:
    store, champ, root = _fresh()
    r = champ.put(root, b"a" * 32, None, V[0])
    before = store.puts
    with pytest.raises(CasError) as e:
        champ.put(r, b"a" * 32, V[1], V[2])
    assert e.value.actual == V[0] and e.value.expected == V[1] and e.value.key == b"a" * 32
    with pytest.raises(CasError):
        champ.put(r, b"a" * 32, None, V[2])  # present, expected absent
    with pytest.raises(CasError):
        champ.put(r, b"b" * 32, V[0], V[2])  # absent, expected present
    with pytest.raises(CasError):
        champ.remove(r, b"a" * 32, V[3])
    with pytest.raises(CasError):
        champ.remove(r, b"b" * 32, V[0])
    assert store.puts == before


def test_no_op_edits_return_the_same_root_without_writes() -> None:
    store, champ, root = _fresh()
    r = champ.put(root, b"a" * 32, None, V[0])
    before = store.puts
    assert champ.put(r, b"a" * 32, V[0], V[0]) == r
    assert champ.remove(r, b"b" * 32, None) == r
    assert champ.apply(r, []) == r
    assert store.puts == before


def test_value_types_are_distinguished() -> None:
    assert same_value(V[0], V[0]) and not same_value(V[0], V[1])
    assert not same_value(1, True) and not same_value(0, None) and not same_value(b"", "")
    assert same_value([1, {"a": b"x"}], [1, {"a": b"x"}]) and not same_value([1], [2])
    _store, champ, root = _fresh()
    r = champ.put(root, b"a" * 32, None, 1)
    with pytest.raises(CasError):
        champ.put(r, b"a" * 32, True, 2)


def test_none_values_are_refused() -> None:
    _store, champ, root = _fresh()
    with pytest.raises(ValueError):
        champ.put(root, b"k", None, None)
    with pytest.raises(ValueError):
        champ.put_all(root, {b"k": None})
    with pytest.raises(ValueError):
        champ.build({b"k": None})


def test_insertion_order_does_not_matter_and_bulk_matches() -> None:
    keys = _keys(200)
    values = {k: V[i % 5] for i, k in enumerate(keys)}
    _store, champ, root = _fresh()
    a = root
    for k in keys:
        a = champ.put(a, k, None, values[k])
    b = root
    for k in reversed(keys):
        b = champ.put(b, k, None, values[k])
    assert a == b == champ.build(values) == champ.put_all(root, values)
    assert champ.apply(root, [Change(k, None, v) for k, v in values.items()]) == a
    assert dict(champ.items(a)) == values and champ.size(a) == 200 and champ.validate(a) == 200


def test_bulk_insert_writes_each_node_once() -> None:
    keys = _keys(500)
    store, champ, root = _fresh()
    before = store.puts
    r = champ.put_all(root, {k: V[0] for k in keys})
    assert store.puts - before == len(champ.node_cids(r))


def test_removing_everything_gives_the_empty_root() -> None:
    keys = _keys(120, seed=2)
    _store, champ, root = _fresh()
    r = champ.put_all(root, {k: V[1] for k in keys})
    one_by_one = r
    for k in keys:
        one_by_one = champ.remove(one_by_one, k, V[1])
    assert one_by_one == root
    assert champ.remove_all(r, keys) == root
    assert champ.remove_all(r, [*keys[:60], b"absent"]) == champ.build({k: V[1] for k in keys[60:]})


def test_canonical_delete_when_the_root_has_a_single_child() -> None:
    # Five keys with the same root position land in one child whose buckets are spread over several
    # positions; deleting one must leave a root with a single bucket of four (Java <= 1.x escalated the
    # child's buckets unchanged here).
    rng = random.Random(3)
    keys = [bytes([i << 3]) + rng.randbytes(31) for i in range(5)]
    _store, champ, root = _fresh()
    r = champ.put_all(root, {k: V[0] for k in keys})
    node = champ.load(r)
    assert node.data_map == 0 and node.node_map == 1
    r2 = champ.remove(r, keys[2], V[0])
    node2 = champ.load(r2)
    assert node2.data_map == 1 and node2.node_map == 0 and len(node2.buckets[0]) == 4
    assert r2 == champ.build({k: V[0] for k in keys if k != keys[2]})


def test_canonical_delete_collapses_a_chain_of_nodes() -> None:
    _store, champ, root = _fresh()
    # Five keys share 93 bits (a chain of nodes down to depth 31); a sixth leaves them at depth 29.
    deep = [*DEEP_KEYS[:5], DEEP_KEYS[6]]
    r = champ.put_all(root, {k: V[0] for k in deep})
    depth = 0
    node = champ.load(r)
    while node.children:
        node = champ.load(node.children[0])
        depth += 1
    assert depth == 31
    r2 = champ.remove(r, deep[0], V[0])
    assert r2 == champ.build({k: V[0] for k in deep[1:]})
    assert len(champ.node_cids(r2)) == 30
    r3 = champ.remove(r2, deep[5], V[0])
    assert champ.node_cids(r3) == [r3] and champ.validate(r3) == 4
    assert r3 == champ.build({k: V[0] for k in deep[1:5]})


def test_hash_collision_at_depth_32() -> None:
    store, champ, root = _fresh()
    r = champ.put_all(root, {k: V[0] for k in COLLIDING_KEYS[:4]})
    before = store.puts
    with pytest.raises(HashCollision, match="Hash collision!"):
        champ.put(r, COLLIDING_KEYS[4], None, V[0])
    with pytest.raises(HashCollision):
        champ.build({k: V[0] for k in SHORT_KEYS[:5]})  # b"", 00, 0000, ...: missing hash bytes are zero
    assert store.puts == before
    # keys differing only in the last three usable bits still fit (the depth-31 node splits them)
    assert champ.validate(champ.build({k: V[0] for k in DEEP_KEYS[:6]})) == 6


def test_mirror_bat_stays_on_the_root() -> None:
    store, champ, _root = _fresh()
    root = champ.create_empty(mirror_bat=BAT)
    assert decode_node(store.get(root) or b"").mirror_bat == BAT
    keys = _keys(60, seed=4)
    r = champ.put_all(root, {k: V[0] for k in keys})
    assert champ.load(r).mirror_bat == BAT
    assert all(champ.load(c).mirror_bat is None for c in champ.node_cids(r)[1:])
    assert champ.validate(r) == 60
    r2 = champ.put(r, keys[0], V[0], V[1], mirror_bat=BAT2)
    assert champ.load(r2).mirror_bat == BAT2
    assert champ.put(r2, keys[0], V[1], V[1], mirror_bat=BAT) != r2  # BAT change alone rewrites the root
    emptied = champ.remove_all(r, keys)
    assert champ.load(emptied).mirror_bat == BAT and emptied == champ.create_empty(mirror_bat=BAT)
    assert champ.build({}, mirror_bat=BAT) == emptied


def test_blake2b_hasher_tree() -> None:
    _store, champ, root = _fresh(blake2b_hasher)
    names = {f"user{i}".encode(): V[i % 5] for i in range(100)}
    r = champ.put_all(root, names)
    assert all(champ.get(r, k) == v for k, v in names.items())
    assert champ.validate(r) == 100


def test_missing_blocks_and_read_only_stores() -> None:
    store, champ, root = _fresh()
    keys = _keys(40, seed=5)
    r = champ.put_all(root, {k: V[0] for k in keys})
    with pytest.raises(MissingBlock):
        champ.get(Cid.for_block(CODEC_DAG_CBOR, b"nowhere"), b"k")

    class Getter:
        def get(self, cid: Cid) -> bytes | None:
            return store.get(cid)

    reader = Champ(Getter())
    assert reader.get(r, keys[0]) == V[0]
    with pytest.raises(TypeError):
        reader.put(r, b"new", None, V[0])

    child = champ.load(r).children[0]
    partial = MemoryBlockStore()
    partial.blocks = {c: b for c, b in store.blocks.items() if c != child}
    with pytest.raises(MissingBlock) as e:
        list(Champ(partial).items(r))
    assert e.value.cid == child


def test_a_store_naming_blocks_differently_is_an_error() -> None:
    class Lying(MemoryBlockStore):
        def put(self, data: bytes) -> Cid:
            super().put(data)
            return Cid.for_block(CODEC_RAW, data)

    champ = Champ(Lying())
    with pytest.raises(ChampError):
        champ.create_empty()


def test_node_cache_is_bounded_and_optional() -> None:
    store = MemoryBlockStore()
    cache = NodeCache(8)
    champ = Champ(store, cache=cache)
    keys = _keys(300, seed=6)
    r = champ.put_all(champ.create_empty(), {k: V[2] for k in keys})
    assert len(cache) <= 8
    assert all(champ.get(r, k) == V[2] for k in keys)
    assert len(cache) <= 8 and cache.decodes > 0
    big = NodeCache(1000)
    reader = Champ(store, cache=big)
    assert all(reader.get(r, k) == V[2] for k in keys)
    decodes = big.decodes
    assert decodes == len(reader.node_cids(r)) and r in big
    assert all(reader.get(r, k) == V[2] for k in keys) and big.decodes == decodes  # all hits now
    uncached = Champ(store, cache_size=0)
    assert all(uncached.get(r, k) == V[2] for k in keys[:20]) and len(uncached.cache) == 0
    with pytest.raises(ValueError):
        NodeCache(-1)


# ---- diff and merge --------------------------------------------------------------------------------


def _tree(champ: Champ, mapping: dict[bytes, Any]) -> Cid:
    return champ.build(mapping)


def _diff_dict(champ: Champ, a: Cid | None, b: Cid | None) -> dict[bytes, tuple[Any, Any]]:
    out: dict[bytes, tuple[Any, Any]] = {}
    for c in champ.diff(a, b):
        assert c.key not in out
        out[c.key] = (c.old, c.new)
    return out


def test_diff_reports_every_change_and_skips_equal_subtrees() -> None:
    keys = _keys(400, seed=7)
    a = {k: V[0] for k in keys[:300]}
    b = dict(a)
    for k in keys[:10]:
        del b[k]
    for k in keys[10:20]:
        b[k] = V[1]
    for k in keys[300:310]:
        b[k] = V[2]
    store, champ, _ = _fresh()
    ra, rb = _tree(champ, a), _tree(champ, b)
    assert _diff_dict(champ, ra, rb) == dict_diff(a, b)
    assert _diff_dict(champ, rb, ra) == dict_diff(b, a)
    assert _diff_dict(champ, ra, ra) == {}
    assert _diff_dict(champ, None, rb) == dict_diff({}, b)
    assert _diff_dict(champ, ra, None) == dict_diff(a, {})

    # Unchanged subtrees are not read: diff against a store lacking them still works.
    changed = {c for c in champ.node_cids(ra)} ^ {c for c in champ.node_cids(rb)}
    lean = MemoryBlockStore()
    lean.blocks = {c: d for c, d in store.blocks.items() if c in changed}
    assert _diff_dict(Champ(lean), ra, rb) == dict_diff(a, b)


def test_diff_between_a_bucket_and_a_child_node() -> None:
    # Left: 4 keys in one root bucket. Right: 5 keys there (a child); keys at high bit positions of the
    # child removed on the right must be reported (Java only scans up to the highest set bitmap bit).
    rng = random.Random(8)
    base = [bytes([i << 3]) + rng.randbytes(31) for i in range(8)]
    left = {k: V[0] for k in (base[7], base[1], base[2], base[3])}
    right = {k: V[0] for k in base[:5]}
    _store, champ, _ = _fresh()
    rl, rr = _tree(champ, left), _tree(champ, right)
    assert champ.load(rl).data_map == 1 and champ.load(rr).node_map == 1
    assert _diff_dict(champ, rl, rr) == dict_diff(left, right)
    assert _diff_dict(champ, rr, rl) == dict_diff(right, left)
    assert base[7] in _diff_dict(champ, rl, rr)


def test_merge_applies_disjoint_changes() -> None:
    keys = _keys(200, seed=9)
    base = {k: V[0] for k in keys[:150]}
    ours = dict(base)
    theirs = dict(base)
    for k in keys[:10]:
        ours[k] = V[1]
    for k in keys[150:160]:
        ours[k] = V[2]
    for k in keys[10:20]:
        del theirs[k]
    for k in keys[160:170]:
        theirs[k] = V[3]
    _store, champ, _ = _fresh()
    rb, ro, rt = _tree(champ, base), _tree(champ, ours), _tree(champ, theirs)
    merged = champ.merge(rb, ro, rt)
    want = {**ours, **{k: V[3] for k in keys[160:170]}}
    for k in keys[10:20]:
        del want[k]
    assert merged == _tree(champ, want)
    assert champ.merge(rb, ro, rb) == ro and champ.merge(rb, rb, rt) == rt
    assert champ.merge(None, ro, None) == ro


def test_merge_conflicts() -> None:
    keys = _keys(50, seed=10)
    base = {k: V[0] for k in keys}
    _store, champ, _ = _fresh()
    rb = _tree(champ, base)
    ro = _tree(champ, {**base, keys[3]: V[1]})
    rt = _tree(champ, {**base, keys[3]: V[1], keys[4]: V[2]})  # same new value still conflicts
    with pytest.raises(ConcurrentModification) as e:
        champ.merge(rb, ro, rt)
    assert e.value.keys == frozenset({keys[3]})
    rt2 = _tree(champ, {k: v for k, v in base.items() if k != keys[3]})
    with pytest.raises(ConcurrentModification):
        champ.merge(rb, ro, rt2)


# ---- proofs ----------------------------------------------------------------------------------------


def test_get_path_and_verify() -> None:
    keys = _keys(500, seed=11)
    mapping = {k: V[i % 5] for i, k in enumerate(keys)}
    store, champ, _ = _fresh()
    root = _tree(champ, mapping)
    path = champ.get_path(root, keys[0])
    assert path.cids[0] == root and path.value == mapping[keys[0]] and len(path.cids) >= 2
    assert [store.get(c) for c in path.cids] == list(path.blocks)
    assert verify_path(root, keys[0], path.blocks) == mapping[keys[0]]
    assert verify_path(root, keys[0], [b"junk", *path.blocks, b"\x00"]) == mapping[keys[0]]
    absent = b"\x00" * 31 + b"\x01"
    apath = champ.get_path(root, absent)
    assert apath.value is None and verify_path(root, absent, apath.blocks) is None

    bulk = champ.get_paths(root, keys[:20])
    assert len(bulk) == len(set(bulk))
    assert verify_paths(root, keys[:20], bulk) == {k: mapping[k] for k in keys[:20]}

    with pytest.raises(DecodeError):
        verify_path(root, keys[0], path.blocks[:-1])
    tampered = ChampNode(0, 0, (), ())
    with pytest.raises(DecodeError):
        verify_path(root, keys[0], [encode_node(tampered), *path.blocks[1:]])
    with pytest.raises(DecodeError):
        verify_path(Cid(1, CODEC_DAG_CBOR, b"\x00\x04abcd"), keys[0], [])
    with pytest.raises(DecodeError):
        verify_path(root, keys[0], [b"x"] * 5000)
    with pytest.raises(DecodeError):
        verify_path(root, keys[0], ["not bytes"])  # type: ignore[list-item]


# ---- hostile trees -----------------------------------------------------------------------------------


def _put_node(store: MemoryBlockStore, node: ChampNode) -> Cid:
    return store.put(encode_node(node))


def test_validate_rejects_non_canonical_and_misplaced_trees() -> None:
    store = MemoryBlockStore()
    champ = Champ(store)
    k0 = bytes([0]) + bytes(31)  # root bit 0
    k1 = bytes([1]) + bytes(31)  # root bit 1
    small_child = _put_node(store, ChampNode(1, 0, (((k0, V[0]),),), ()))
    with pytest.raises(DecodeError, match="should be a bucket"):
        champ.validate(_put_node(store, ChampNode(0, 1, (), (small_child,))))
    with pytest.raises(DecodeError, match="wrong position"):
        champ.validate(_put_node(store, ChampNode(0b10, 0, (((k0, V[0]),),), ())))
    assert champ.validate(_put_node(store, ChampNode(0b10, 0, (((k1, V[0]),),), ()))) == 1
    five = tuple(((bytes([i << 3]) + bytes(31), V[0]),) for i in range(5))  # root bit 0, depth-1 bits 0..4
    big_child = _put_node(store, ChampNode(0b11111, 0, five, ()))
    assert champ.validate(_put_node(store, ChampNode(0, 1, (), (big_child,)))) == 5
    with pytest.raises(DecodeError, match="repeats"):
        champ.validate(_put_node(store, ChampNode(0, 0b11, (), (big_child, big_child))))
    with pytest.raises(DecodeError, match="repeats"):
        list(champ.items(_put_node(store, ChampNode(0, 0b11, (), (small_child, small_child)))))
    with pytest.raises(DecodeError, match="mirror BAT below"):
        bat_child = _put_node(store, ChampNode(1, 0, (((k0, V[0]),),), (), BAT))
        champ.validate(_put_node(store, ChampNode(0, 1, (), (bat_child,))))


def test_a_chain_deeper_than_32_levels_is_refused() -> None:
    store = MemoryBlockStore()
    champ = Champ(store)
    cid = _put_node(store, ChampNode(1, 0, (((bytes(32), V[0]),),), ()))
    for _ in range(33):
        cid = _put_node(store, ChampNode(0, 1, (), (cid,)))
    key = bytes(32)
    for op in (
        lambda: champ.get(cid, key),
        lambda: champ.get_path(cid, key),
        lambda: list(champ.items(cid)),
        lambda: champ.size(cid),
        lambda: champ.validate(cid),
        lambda: list(champ.diff(cid, None)),
        lambda: champ.put(cid, key, V[0], V[1]),
    ):
        with pytest.raises(DecodeError, match="deeper than 32"):
            op()


def test_a_lying_store_cannot_make_walks_loop() -> None:
    # A store that answers every CID with the same node, whose child points back at itself.
    champ_store = MemoryBlockStore()
    self_cid = Cid.for_block(CODEC_DAG_CBOR, b"self")
    loop = encode_node(ChampNode(0, 0b11, (), (self_cid, Cid.for_block(CODEC_DAG_CBOR, b"other"))))

    class Loop:
        def get(self, cid: Cid) -> bytes | None:
            return loop

    champ = Champ(Loop())
    with pytest.raises(DecodeError):
        list(champ.items(self_cid))
    with pytest.raises(DecodeError):
        champ.get(self_cid, bytes(32))
    with pytest.raises(DecodeError):
        list(champ.diff(self_cid, None))
    del champ_store


def test_large_batches_pause_and_restore_the_cyclic_gc() -> None:
    import gc

    from peergos_node.champ.tree import GC_PAUSE_OPS

    keys = _keys(GC_PAUSE_OPS + 10, seed=12)
    _store, champ, root = _fresh()
    seen: list[bool] = []

    class Watching(MemoryBlockStore):
        def put(self, data: bytes) -> Cid:
            seen.append(gc.isenabled())
            return super().put(data)

    watching = Champ(Watching())
    assert gc.isenabled()
    big = watching.build({k: V[0] for k in keys})
    assert gc.isenabled() and seen and not any(seen)
    seen.clear()
    watching.put(big, keys[0], V[0], V[1])  # small edits leave the GC alone
    assert seen and all(seen)
    with pytest.raises(CasError):
        watching.apply(big, [Change(k, V[1], V[2]) for k in keys])
    assert gc.isenabled()
    gc.disable()
    try:
        champ.put_all(root, {k: V[3] for k in keys})
        assert not gc.isenabled()  # an application's own choice is kept
    finally:
        gc.enable()


def test_a_batch_failing_two_ways_writes_nothing() -> None:
    store, champ, root = _fresh()
    r = champ.put_all(root, {k: V[0] for k in COLLIDING_KEYS[:4]})
    before = store.puts
    changes = [Change(COLLIDING_KEYS[4], None, V[0]), Change(b"\x07" * 32, V[1], V[2])]
    with pytest.raises((CasError, HashCollision)):
        champ.apply(r, changes)
    with pytest.raises(CasError):
        champ.apply(r, [Change(b"\x07" * 32, None, V[2]), Change(COLLIDING_KEYS[0], V[1], V[2])])
    assert store.puts == before
