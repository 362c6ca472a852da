"""Chunk locations (stream-secret chaining, seeking), files in chunks, directories with overflow chunks."""

from __future__ import annotations

import hashlib
import random

import pytest

from peergos_node.crypto.bat import Bat
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.cryptree.builders import FileEncryptor, create_directory, create_overflow_chunk
from peergos_node.cryptree.chunks import (
    ChunkLocation,
    chunk_location,
    chunk_locations,
    next_chunk_location,
    split_children,
)
from peergos_node.cryptree.node import CryptreeNode
from peergos_node.cryptree.properties import CHUNK_SIZE, EMPTY, FileProperties, HashTree
from peergos_node.cryptree.relative import NamedRelativeCapability, RelativeCapability
from tests.helpers.cryptree import MIRROR, MODIFIED, SIGNER, children, file_props, keys, location

RNG = DeterministicRng("chunks")
SECRET = bytes(range(32))
FIRST = ChunkLocation(bytes(range(32, 64)), Bat(bytes(range(64, 96))))


def test_next_location_is_sha256_chaining() -> None:
    nxt = next_chunk_location(SECRET, FIRST)
    assert nxt.map_key == hashlib.sha256(SECRET + FIRST.map_key).digest()
    assert nxt.bat == Bat(hashlib.sha256(SECRET + FIRST.bat.secret).digest())  # type: ignore[union-attr]
    assert next_chunk_location(SECRET, ChunkLocation(FIRST.map_key, None)) == ChunkLocation(nxt.map_key, None)
    with pytest.raises(ValueError):
        next_chunk_location(SECRET[:31], FIRST)


def test_seeking_needs_only_local_hashing() -> None:
    chain = chunk_locations(SECRET, FIRST, 5)
    assert chain[0] == FIRST and len(chain) == 5
    for i in range(4):
        assert chain[i + 1] == next_chunk_location(SECRET, chain[i])
    for offset, index in [
        (0, 0),
        (CHUNK_SIZE - 1, 0),
        (CHUNK_SIZE, 1),
        (3 * CHUNK_SIZE + 17, 3),
        (5 * CHUNK_SIZE - 1, 4),
    ]:
        assert chunk_location(SECRET, FIRST, offset) == chain[index]
    with pytest.raises(ValueError):
        chunk_location(SECRET, FIRST, -1)


@pytest.mark.parametrize(
    ("count", "sizes"), [(0, [0]), (1, [1]), (500, [500]), (501, [500, 1]), (1001, [500, 500, 1])]
)
def test_split_children(count: int, sizes: list[int]) -> None:
    groups = split_children(list(range(count)))
    assert [len(g) for g in groups] == sizes
    assert [x for g in groups for x in g] == list(range(count))


def _encryptor(size: int, tree: HashTree | None = None) -> FileEncryptor:
    base, data = keys(RNG, 2)
    parent = location(RNG)
    parent_link = RelativeCapability(parent.map_key, keys(RNG, 1)[0], parent.bat)
    return FileEncryptor(
        base, data, file_props(size, RNG.random_bytes(32)), location(RNG), parent_link, tree, MIRROR
    )


def test_file_in_chunks_reads_back_by_following_the_stream_secret() -> None:
    size = 2 * CHUNK_SIZE + 5000
    data = random.Random(7).randbytes(size)
    tree = HashTree.of_data(data)
    enc = _encryptor(size, tree)
    chunks = list(enc.encrypt_all(data, RNG))
    assert [len(c.fragments) for c in chunks] == [5, 5, 1]
    store = {c.location.map_key: c for c in chunks}
    secret = enc.stream_secret
    got = b""
    here = enc.first
    for i in range(enc.chunk_count):
        located = store[here.map_key]
        assert located.location == here == enc.location(i)
        node = CryptreeNode.parse(located.block)
        assert node.inline_bat == here.bat and node.mirror_bat_id == MIRROR
        read = node.read(enc.base_key)
        assert read.parent_link == enc.parent_link  # every chunk links to the parent, like Peergos
        props = read.properties
        assert props.tree_hash == (tree.branch(0) if i == 0 else None)
        assert props.stream_secret == secret and props.size == size
        got += read.data([f.block for f in located.fragments])
        here = read.next_chunk_location(here, secret)
    assert got == data
    assert here not in [c.location for c in chunks]


def test_hash_branch_every_1024_chunks() -> None:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1500)]
    tree = HashTree.build(hashes)
    enc = _encryptor(1500 * CHUNK_SIZE, tree)
    assert enc.chunk_properties(0).tree_hash == tree.branch(0)
    assert enc.chunk_properties(1024).tree_hash == tree.branch(1024) != tree.branch(0)
    assert enc.chunk_properties(1).tree_hash is None
    assert _encryptor(10).chunk_properties(0).tree_hash is None


def test_file_encryptor_checks_its_inputs() -> None:
    enc = _encryptor(CHUNK_SIZE + 1)
    assert enc.chunk_count == 2 and enc.chunk_length(1) == 1
    with pytest.raises(ValueError):
        enc.encrypt_chunk(1, b"xx", RNG)
    with pytest.raises(ValueError):
        enc.encrypt_chunk(2, b"", RNG)
    with pytest.raises(ValueError):
        list(enc.encrypt_all(b"short", RNG))
    empty = _encryptor(0)
    (only,) = empty.encrypt_all(b"", RNG)
    assert only.node.read(empty.base_key).data() == b""
    base, data = keys(RNG, 2)
    with pytest.raises(ValueError):
        FileEncryptor(base, data, file_props(1, None), FIRST, None)
    with pytest.raises(ValueError):
        FileEncryptor(base, base, file_props(1, SECRET), FIRST, None)


def test_directory_overflow_chunks() -> None:
    rbase, wbase, parent_key, pp = keys(RNG, 4)
    kids = children(RNG, wbase, 1001)
    parent = location(RNG)
    parent_link = RelativeCapability(parent.map_key, pp, parent.bat)
    props = FileProperties.directory("big", MODIFIED)
    first, nxt = location(RNG), location(RNG)
    chunks = create_directory(
        rbase_key=rbase,
        parent_key=parent_key,
        properties=props,
        children=kids,
        location=first,
        next_chunk=nxt,
        parent_link=parent_link,
        mirror_bat_id=MIRROR,
        wbase_key=wbase,
        signer=SIGNER,
        rng=RNG,
    )
    assert len(chunks) == 3 and chunks[0].location == first and chunks[1].location == nxt
    listed: list[NamedRelativeCapability] = []
    here = first
    for i, chunk in enumerate(chunks):
        assert chunk.location == here
        node = CryptreeNode.parse(chunk.block)
        assert node.inline_bat == here.bat and node.mirror_bat_id == MIRROR
        read = node.read(rbase)
        assert read.is_directory and read.parent_key == parent_key and read.parent_link == parent_link
        assert read.properties == (props if i == 0 else EMPTY)
        assert (read.signer_link is not None) == (i == 0)
        listed += read.children([f.block for f in chunk.fragments]).named
        here = read.next_chunk_location(here, None)
    assert listed == kids
    single = create_overflow_chunk(
        rbase_key=rbase, parent_key=parent_key, parent_link=None, children=kids[:2], location=nxt, rng=RNG
    )
    assert single.node.read(rbase).properties == EMPTY and single.node.mirror_bat_id is None
