"""Hostile input to the CHAMP: arbitrary and mutated node bytes, node-shaped CBOR, lying block stores,
forged proofs. Only DecodeError (or MissingBlock for absent blocks) may escape, and whatever decodes must
re-encode to the same bytes (spec §5.2: a node from a malicious server must never crash us)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.champ import (
    Champ,
    ChampNode,
    MemoryBlockStore,
    MissingBlock,
    decode_node,
    encode_node,
    verify_paths,
)
from peergos_node.champ.node import key_order, node_to_cbor
from tests.helpers.champ import KEY_POOL, VALUES
from tests.helpers.fuzz import fuzz_settings, round_trip_settings

cids = st.builds(lambda d: Cid.for_block(CODEC_DAG_CBOR, d), st.binary(max_size=8))
keys = st.one_of(st.sampled_from(KEY_POOL), st.binary(max_size=40))
values = st.one_of(st.sampled_from(VALUES), st.none(), cids)


@st.composite
def nodes(draw: st.DrawFn, child_cids: st.SearchStrategy[Cid] = cids) -> ChampNode:
    """A well-formed node (any bitmaps, buckets of 1..4 sorted unique keys, optional mirror BAT)."""
    data_map = draw(st.integers(0, 255))
    node_map = draw(st.integers(0, 255)) & ~data_map
    buckets = []
    for _ in range(data_map.bit_count()):
        ks = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
        buckets.append(tuple((k, draw(values)) for k in sorted(ks, key=key_order)))
    children = tuple(draw(child_cids) for _ in range(node_map.bit_count()))
    bat = draw(st.one_of(st.none(), st.builds(lambda d: Cid.for_block(CODEC_RAW, d), st.binary(max_size=4))))
    return ChampNode(data_map, node_map, tuple(buckets), children, bat)


def _decodes_canonically(data: bytes) -> None:
    try:
        node = decode_node(data)
    except DecodeError:
        return
    assert encode_node(node) == data


@fuzz_settings
@given(st.binary(max_size=400))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    _decodes_canonically(data)


junk = st.one_of(st.none(), st.integers(-5, 300), st.text(max_size=3), st.binary(max_size=3), cids)
bucket_like = st.lists(st.one_of(keys, values, junk), max_size=10)
node_like = st.tuples(
    st.one_of(st.binary(max_size=2), junk),
    st.one_of(st.binary(max_size=2), junk),
    st.lists(st.one_of(bucket_like, cids, junk), max_size=9),
).map(list)
node_like_or_map = st.one_of(
    node_like,
    st.builds(lambda d, b: {"d": d, "bats": b}, node_like, st.lists(st.one_of(st.binary(max_size=40), junk))),
    st.dictionaries(st.sampled_from(["d", "bats", "x"]), st.one_of(node_like, junk), max_size=3),
)


@round_trip_settings
@given(node_like_or_map)
def test_decode_node_shaped_cbor(value: Any) -> None:
    _decodes_canonically(dag_cbor.encode(value))


@round_trip_settings
@given(nodes(), st.integers(0, 1 << 20), st.binary(min_size=0, max_size=4))
def test_decode_mutated_nodes(node: ChampNode, where: int, patch: bytes) -> None:
    data = bytearray(encode_node(node))
    pos = where % (len(data) + 1)
    data[pos : pos + (where >> 18) % 3] = patch
    _decodes_canonically(bytes(data))


@round_trip_settings
@given(nodes())
def test_encoder_matches_generic_dag_cbor(node: ChampNode) -> None:
    data = encode_node(node)
    assert data == dag_cbor.encode(node_to_cbor(node))
    assert decode_node(data) == node


class _HostileStore:
    """Serves a fixed set of node blocks for every CID (so DAGs loop, repeat and go deep)."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks
        self.cids = [Cid.for_block(CODEC_DAG_CBOR, b) for b in blocks]

    def get(self, cid: Cid) -> bytes | None:
        if cid.multihash[-1] % 7 == 0:
            return None
        return self.blocks[cid.multihash[-1] % len(self.blocks)]

    def put(self, data: bytes) -> Cid:
        return Cid.for_block(CODEC_DAG_CBOR, data)


@settings(fuzz_settings, max_examples=300)
@given(st.lists(nodes(), min_size=1, max_size=6), st.sampled_from(KEY_POOL), st.data())
def test_walks_over_a_lying_store_only_raise_decode_errors(
    tree: list[ChampNode], key: bytes, data: st.DataObject
) -> None:
    blocks = [encode_node(n) for n in tree]
    store = _HostileStore(blocks)
    champ = Champ(store, cache_size=4)
    root = data.draw(st.sampled_from(store.cids))
    other = data.draw(st.sampled_from(store.cids))
    operations = [
        lambda: champ.get(root, key),
        lambda: champ.get_path(root, key),
        lambda: list(champ.items(root)),
        lambda: champ.size(root),
        lambda: champ.validate(root),
        lambda: list(champ.diff(root, other)),
        lambda: champ.put(root, key, None, VALUES[0]),
        lambda: champ.remove_all(root, [key]),
        lambda: champ.merge(root, other, root),
    ]
    for op in operations:
        try:
            op()
        except (DecodeError, MissingBlock):
            pass
        except Exception as e:  # CAS failures and collisions are fine: they are typed and deliberate
            assert type(e).__name__ in {"CasError", "HashCollision", "ConcurrentModification"}, e


FORGED_ROOTS = [Cid.for_block(CODEC_DAG_CBOR, bytes([i])) for i in range(4)]


@fuzz_settings
@given(st.binary(max_size=160), st.integers(0, 160), st.sampled_from(KEY_POOL), st.booleans())
def test_verify_paths_with_forged_blocks(data: bytes, cut: int, key: bytes, root_is_a_block: bool) -> None:
    blocks = [data[:cut], data[cut:]]
    root = Cid.for_block(CODEC_DAG_CBOR, blocks[0]) if root_is_a_block else FORGED_ROOTS[cut % 4]
    try:
        verify_paths(root, [key], blocks)
    except DecodeError:
        pass


@settings(round_trip_settings, max_examples=300)
@given(st.dictionaries(st.sampled_from(KEY_POOL[:30]), st.sampled_from(VALUES), min_size=1, max_size=30))
def test_verify_paths_accepts_honest_proofs(mapping: dict[bytes, Any]) -> None:
    champ = Champ(MemoryBlockStore())
    root = champ.build(mapping)
    ks = sorted(mapping)[:20]
    assert verify_paths(root, ks, champ.get_paths(root, ks)) == {k: mapping[k] for k in ks}
