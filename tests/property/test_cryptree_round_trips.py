"""Cryptree round trips: every value encodes and decodes to itself; created files and directories parse,
decrypt and give back their data, children and properties, for sizes across every padding and fragment
boundary (0, 1, 4096, 4097, 1 MiB, 5 MiB, ...)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.chunks import ChunkLocation
from peergos_node.cryptree.fragments import (
    FRAGMENT_SIZE,
    FragmentedPaddedCipherText,
    FragmentLayout,
    cbor_byte_string,
)
from peergos_node.cryptree.node import CryptreeNode, create_dir, create_file_chunk
from peergos_node.cryptree.properties import (
    CHUNK_SIZE,
    MAX_EPOCH_SECOND,
    MIN_EPOCH_SECOND,
    ChunkHashList,
    FileProperties,
    HashBranch,
    RootHash,
    Thumbnail,
    Timestamp,
)
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from tests.helpers.crypto_strategies import bats, bytes32, key_hashes, symmetric_keys
from tests.helpers.cryptree import MIRROR, SIGNER, children
from tests.helpers.fuzz import round_trip_settings

timestamps = st.builds(
    Timestamp, st.integers(MIN_EPOCH_SECOND, MAX_EPOCH_SECOND), st.integers(0, 999_999_999)
)
names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=120
).filter(lambda n: n not in (".", ".."))
mimes = st.sampled_from(["", "text/plain", "image/png", "application/octet-stream", "video/mp4"])
hash_lists = (
    st.integers(1, 8).flatmap(lambda n: st.binary(min_size=32 * n, max_size=32 * n)).map(ChunkHashList)
)
branches = st.builds(
    HashBranch,
    st.builds(RootHash, bytes32),
    st.one_of(st.none(), hash_lists),
)
file_properties = st.builds(
    FileProperties.file,
    names,
    st.integers(0, (1 << 63) - 1),
    timestamps,
    mimes,
    st.one_of(st.none(), bytes32),
    created=timestamps,
    is_hidden=st.booleans(),
    thumbnail=st.one_of(st.none(), st.builds(Thumbnail, mimes, st.binary(max_size=300))),
    tree_hash=st.one_of(st.none(), branches),
)
dir_properties = st.builds(FileProperties.directory, names, timestamps, is_hidden=st.booleans())
relative_caps = st.builds(
    RelativeCapability, bytes32, symmetric_keys, st.one_of(st.none(), bats), st.one_of(st.none(), key_hashes)
)
named_caps = st.builds(
    NamedRelativeCapability,
    names,
    relative_caps,
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), mimes),
    st.one_of(st.none(), st.integers(MIN_EPOCH_SECOND, MAX_EPOCH_SECOND)),
)

BOUNDARY_SIZES = [0, 1, 4089, 4090, 4091, 4096, 4097, 4102, 4103, 8192, FRAGMENT_SIZE - 5, FRAGMENT_SIZE]
BOUNDARY_SIZES += [FRAGMENT_SIZE + 1, CHUNK_SIZE - 1, CHUNK_SIZE]
file_sizes = st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(0, 20_000))


@round_trip_settings
@given(st.one_of(file_properties, dir_properties))
def test_file_properties(props: FileProperties) -> None:
    assert FileProperties.deserialize(props.serialize()) == props


@round_trip_settings
@given(named_caps)
def test_named_relative_capabilities(named: NamedRelativeCapability) -> None:
    assert NamedRelativeCapability.deserialize(named.serialize()) == named
    assert RelativeCapability.deserialize(named.cap.serialize()) == named.cap


@settings(round_trip_settings, max_examples=300)
@given(st.integers(0, 3 * FRAGMENT_SIZE))
def test_payload_layout(length: int) -> None:
    layout = FragmentLayout.of(length)
    assert layout.padded_length >= length and layout.ciphertext_length == layout.padded_length + 16
    if layout.inline:
        assert layout.padded_length <= 4102 and not layout.fragment_lengths
    else:
        assert layout.header_length == 22 and (layout.padded_length - 6) % 4096 == 0
        assert sum(layout.fragment_lengths) + 22 == layout.ciphertext_length
        assert all(n == FRAGMENT_SIZE for n in layout.fragment_lengths[:-1])
        assert 0 < layout.fragment_lengths[-1] <= FRAGMENT_SIZE and layout.fragment_lengths[-1] % 4096 == 0


@settings(round_trip_settings, max_examples=150)
@given(file_sizes, st.integers(0, 2**32), st.booleans(), st.booleans(), file_properties)
def test_file_chunk_round_trip(
    size: int, seed: int, with_mirror: bool, with_bat: bool, base: FileProperties
) -> None:
    rng = DeterministicRng(seed)
    data = random.Random(seed).randbytes(size)
    base_key, data_key = SymmetricKey.random(rng), SymmetricKey.random(rng)
    props = base.with_size(size)
    here = ChunkLocation(rng.random_bytes(32), Bat.random(rng) if with_bat else None)
    nxt = RelativeCapability.subsequent_chunk(rng.random_bytes(32), Bat.random(rng), base_key)
    parent = RelativeCapability(rng.random_bytes(32), SymmetricKey.random(rng), Bat.random(rng))
    mirror = MIRROR if with_mirror else None
    built = create_file_chunk(
        base_key=base_key,
        data_key=data_key,
        properties=props,
        data=data,
        next_chunk=nxt,
        parent_link=parent,
        inline_bat=here.bat,
        mirror_bat_id=mirror,
        rng=rng,
    )
    node = CryptreeNode.parse(built.block)
    assert node == built.node and node.serialize() == built.block
    want_bats = (BatId.inline(here.bat), *((mirror,) if mirror else ())) if here.bat else ()
    assert node.bats == want_bats
    read = node.read(base_key)
    assert not read.is_directory and read.properties == props and read.data_key == data_key
    assert read.parent_link == parent and read.next_chunk == nxt
    assert read.data([f.block for f in built.fragments]) == data
    layout = FragmentLayout.of(len(cbor_byte_string(data)))
    assert tuple(len(f.payload) for f in built.fragments) == layout.fragment_lengths


@settings(round_trip_settings, max_examples=200)
@given(st.integers(0, 120), st.integers(0, 2**32), st.booleans(), st.booleans(), dir_properties)
def test_directory_round_trip(
    count: int, seed: int, with_signer: bool, with_mirror: bool, props: FileProperties
) -> None:
    rng = DeterministicRng(seed)
    rbase, wbase, parent_key = (SymmetricKey.random(rng) for _ in range(3))
    kids = children(rng, wbase, count)
    here = ChunkLocation(rng.random_bytes(32), Bat.random(rng))
    nxt = RelativeCapability.subsequent_chunk(rng.random_bytes(32), Bat.random(rng), rbase)
    built = create_dir(
        rbase_key=rbase,
        parent_key=parent_key,
        properties=props,
        children=kids,
        next_chunk=nxt,
        parent_link=None,
        inline_bat=here.bat,
        mirror_bat_id=MIRROR if with_mirror else None,
        wbase_key=wbase,
        signer=SIGNER if with_signer else None,
        rng=rng,
    )
    node = CryptreeNode.parse(built.block)
    read = node.read(rbase)
    assert read.is_directory and read.properties == props and read.parent_key == parent_key
    assert read.children([f.block for f in built.fragments]) == ChildrenLinks.of(kids)
    assert (read.signer(wbase) if with_signer else read.signer_link) == (SIGNER if with_signer else None)
    assert node.properties(parent_key) == props


@settings(round_trip_settings, max_examples=300)
@given(st.binary(max_size=20_000), st.integers(0, 2**32))
def test_any_plaintext_round_trips(plaintext: bytes, seed: int) -> None:
    rng = DeterministicRng(seed)
    key = SymmetricKey.random(rng)
    payload, fragments = FragmentedPaddedCipherText.build(key, plaintext, rng=rng)
    decoded = FragmentedPaddedCipherText.deserialize(payload.serialize())
    padded = decoded.decrypt_padded(key, [f.block for f in fragments])
    assert padded[: len(plaintext)] == plaintext and padded[len(plaintext) :] == bytes(
        len(padded) - len(plaintext)
    )
