"""contained_size_change equals the difference of naive tree-size counts, for random DAG edits."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from peergos_node.server.dag import contained_size, contained_size_change, reachable
from peergos_node.server.stores.metadata import BlockMetadata, MemoryBlockMetadataStore
from tests.helpers.fuzz import round_trip_settings


def _cid(n: int) -> bytes:
    return b"\x01\x71\x12\x20" + hashlib.sha256(n.to_bytes(4, "big")).digest()


IDENTITY = b"\x01\x71\x00\x03abc"


def _naive(root: bytes | None, meta: MemoryBlockMetadataStore) -> int:
    if root is None or root == IDENTITY:
        return 0
    m = meta.get(root)
    if m is None:
        return 0
    return m.size + sum(_naive(link, meta) for link in m.links)


@st.composite
def dags(draw: st.DrawFn) -> tuple[MemoryBlockMetadataStore, list[bytes]]:
    n = draw(st.integers(min_value=1, max_value=40))
    meta = MemoryBlockMetadataStore()
    cids = [_cid(i) for i in range(n)]
    for i, cid in enumerate(cids):
        # links only to lower indices: acyclic by construction; sometimes to an identity CID
        children = draw(st.lists(st.integers(min_value=0, max_value=max(i - 1, 0)), max_size=4)) if i else []
        links = tuple(cids[c] for c in children)
        if draw(st.booleans()):
            links += (IDENTITY,)
        meta.put(cid, BlockMetadata(draw(st.integers(min_value=1, max_value=5000)), links, ()))
    return meta, cids


@round_trip_settings
@given(dags(), st.data())
def test_change_matches_naive_difference(
    dag: tuple[MemoryBlockMetadataStore, list[bytes]], data: st.DataObject
) -> None:
    meta, cids = dag
    old = data.draw(st.sampled_from([None, *cids]))
    new = data.draw(st.sampled_from([None, *cids]))
    assert contained_size_change(old, new, meta) == _naive(new, meta) - _naive(old, meta)
    assert contained_size(new, meta) == _naive(new, meta)


@round_trip_settings
@given(dags(), st.data())
def test_reachable_closure(dag: tuple[MemoryBlockMetadataStore, list[bytes]], data: st.DataObject) -> None:
    meta, cids = dag
    roots = data.draw(st.lists(st.sampled_from(cids), max_size=3))
    marked = reachable(roots, meta)
    assert set(roots) <= marked and IDENTITY not in marked
    for cid in marked:
        m = meta.get(cid)
        assert m is not None
        assert all(link in marked for link in m.links if link != IDENTITY)
