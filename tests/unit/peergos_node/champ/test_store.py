"""Conformance of every implementation of the CHAMP's block-store protocol."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ import EMPTY_NODE_BYTES, BlockGetter, BlockStore, MemoryBlockStore

IMPLEMENTATIONS: list[Callable[[], BlockStore]] = [MemoryBlockStore]


@pytest.mark.parametrize("make", IMPLEMENTATIONS)
def test_block_store_conformance(make: Callable[[], BlockStore]) -> None:
    store = make()
    assert isinstance(store, BlockStore) and isinstance(store, BlockGetter)
    cid = store.put(EMPTY_NODE_BYTES)
    assert cid == Cid.for_block(CODEC_DAG_CBOR, EMPTY_NODE_BYTES)
    assert str(cid) == "zdpuAy36qRsvJq5Rdqt8YMMjrDfnAw2ETyVqakwaMXupLqR7X"
    assert store.get(cid) == EMPTY_NODE_BYTES
    assert store.put(EMPTY_NODE_BYTES) == cid  # idempotent
    assert store.get(Cid.for_block(CODEC_DAG_CBOR, b"absent")) is None
    other = store.put(b"\x80")
    assert other != cid and store.get(other) == b"\x80"


def test_memory_store_bookkeeping() -> None:
    store = MemoryBlockStore()
    cid = store.put(b"\xf6")
    assert len(store) == 1 and cid in store and list(store) == [cid] and store.puts == 1
