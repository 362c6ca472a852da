"""FragmentedPaddedCipherText: padding, inline vs fragments, BAT prefixes, legacy shapes, tampering."""

from __future__ import annotations

import random

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.errors import HashMismatch
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.crypto.bat import Bat, BatId, BatWithId, create_raw_block_prefix, parse_raw_block_prefix
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.fragments import (
    FRAGMENT_SIZE,
    FragmentedPaddedCipherText,
    FragmentLayout,
    cbor_byte_string,
    identity_fragment_link,
    padded_length,
)
from peergos_node.cryptree.properties import CHUNK_SIZE
from peergos_node.errors import BadCiphertext, DecodeError
from tests.helpers.cryptree import MIRROR

RNG = DeterministicRng("fragments")
KEY = SymmetricKey.random(RNG)
OTHER_KEY = SymmetricKey.random(RNG)


@pytest.mark.parametrize(
    ("length", "padded"),
    [(1, 4096), (4096, 4096), (4097, 4102), (4102, 4102), (4103, 8198), (8198, 8198), (8199, 12294)],
)
def test_padding_rule(length: int, padded: int) -> None:
    assert padded_length(length) == padded


@pytest.mark.parametrize(
    "size", [0, 1, 4089, 4090, 4091, 4093, 4096, 4097, 4100, 12288, FRAGMENT_SIZE, CHUNK_SIZE]
)
def test_build_matches_layout_and_round_trips(size: int) -> None:
    data = random.Random(size).randbytes(size)
    payload, fragments = FragmentedPaddedCipherText.build_data(KEY, data, mirror_bat_id=MIRROR, rng=RNG)
    layout = FragmentLayout.of(len(cbor_byte_string(data)))
    assert payload.is_inline == layout.inline == (not fragments)
    assert len(payload.header or b"") == layout.header_length
    assert tuple(len(f.payload) for f in fragments) == layout.fragment_lengths
    assert all(len(f.payload) % 4096 == 0 and len(f.payload) <= FRAGMENT_SIZE for f in fragments)
    if not layout.inline:
        assert layout.header_length == 22
    for f in fragments:
        assert f.cid == Cid.for_block(CODEC_RAW, f.block)
        ids, offset = parse_raw_block_prefix(f.block)
        assert ids == [BatId.inline(f.bat.bat), MIRROR] and f.block[:offset] == create_raw_block_prefix(
            f.bat.bat, MIRROR
        )
        assert f.bat.id == f.bat.bat.calculate_id()
    decoded = FragmentedPaddedCipherText.deserialize(payload.serialize())
    assert decoded == payload
    assert decoded.decrypt_data(KEY, [f.block for f in fragments]) == data


def test_cbor_shapes() -> None:
    inline, _ = FragmentedPaddedCipherText.build_data(KEY, b"small", rng=RNG)
    assert set(dag_cbor.decode(inline.serialize())) == {"n", "f"}
    big, fragments = FragmentedPaddedCipherText.build_data(KEY, bytes(10000), rng=RNG)
    m = dag_cbor.decode(big.serialize())
    assert set(m) == {"n", "h", "f", "bats"}
    assert m["f"] == [f.cid for f in fragments]
    assert m["bats"] == [f.bat.to_cbor() for f in fragments]


def test_wrong_key_and_altered_ciphertext() -> None:
    payload, fragments = FragmentedPaddedCipherText.build_data(KEY, bytes(20000), rng=RNG)
    blocks = [f.block for f in fragments]
    with pytest.raises(BadCiphertext):
        payload.decrypt(OTHER_KEY, blocks)
    assert payload.header is not None
    bad_header = bytes([payload.header[0] ^ 1]) + payload.header[1:]
    with pytest.raises(BadCiphertext):
        FragmentedPaddedCipherText(payload.nonce, None, bad_header, payload.fragments, payload.bats).decrypt(
            KEY, blocks
        )
    inline, _ = FragmentedPaddedCipherText.build_data(KEY, b"x", rng=RNG)
    assert inline.inline is not None
    flipped = FragmentedPaddedCipherText(inline.nonce, inline.inline[:-1] + bytes([inline.inline[-1] ^ 1]))
    with pytest.raises(BadCiphertext):
        flipped.decrypt(KEY)


def test_every_tampered_fragment_byte_is_detected() -> None:
    payload, fragments = FragmentedPaddedCipherText.build_data(
        KEY, bytes(3 * 4096), mirror_bat_id=MIRROR, rng=RNG
    )
    (fragment,) = fragments
    rnd = random.Random(1)
    positions = list(range(fragment.prefix_length + 8)) + rnd.sample(range(len(fragment.block)), 64)
    for pos in positions:
        block = bytearray(fragment.block)
        block[pos] ^= 1 << rnd.randrange(8)
        with pytest.raises(HashMismatch):
            payload.decrypt(KEY, [bytes(block)])
    with pytest.raises(HashMismatch):
        payload.decrypt(KEY, [fragment.block + b"\x00"])


def test_fragment_blocks_must_carry_their_bat_and_be_complete() -> None:
    payload, fragments = FragmentedPaddedCipherText.build_data(KEY, bytes(FRAGMENT_SIZE + 5000), rng=RNG)
    blocks = [f.block for f in fragments]
    with pytest.raises(ValueError):
        payload.decrypt(KEY, blocks[:1])
    with pytest.raises(HashMismatch):
        payload.decrypt(KEY, blocks[::-1])
    # A block re-stored with someone else's BAT in its prefix (and the node relinked) is refused
    stranger = create_raw_block_prefix(Bat.random(RNG)) + fragments[0].payload
    relinked = payload.with_fragments([Cid.for_block(CODEC_RAW, stranger), payload.fragments[1]])
    with pytest.raises(DecodeError):
        relinked.decrypt(KEY, [stranger, blocks[1]])
    # ... but adding the owner's mirror BAT behind the fragment's own one is fine (Peergos addMirrorBat)
    mirrored = create_raw_block_prefix(fragments[0].bat.bat, MIRROR) + fragments[0].payload
    moved = payload.with_fragments([Cid.for_block(CODEC_RAW, mirrored), payload.fragments[1]])
    assert moved.decrypt_data(KEY, [mirrored, blocks[1]]) == bytes(FRAGMENT_SIZE + 5000)


def test_legacy_shapes() -> None:
    # the ciphertext inlined in an identity CID is read as inline ciphertext and re-serialised inline
    # (nabu_py's CIDs hold identity digests of at most 128 bytes, so only short legacy ciphertexts parse)
    nonce = KEY.create_nonce(RNG)
    short = KEY.encrypt(cbor_byte_string(b"legacy") + bytes(80), nonce)
    parsed = FragmentedPaddedCipherText.from_cbor({"n": nonce, "f": [identity_fragment_link(short)]})
    assert parsed == FragmentedPaddedCipherText(nonce, short) and parsed.decrypt_data(KEY) == b"legacy"
    assert dag_cbor.decode(parsed.serialize())["f"] == [short]
    inline, _ = FragmentedPaddedCipherText.build_data(KEY, b"legacy", rng=RNG)
    assert inline.inline is not None
    # a header stored next to inline ciphertext is joined in front of it
    split = FragmentedPaddedCipherText.from_cbor(
        {"n": inline.nonce, "h": inline.inline[:22], "f": [inline.inline[22:]]}
    )
    assert split.decrypt_data(KEY) == b"legacy"
    assert dag_cbor.decode(split.serialize())["h"] == inline.inline[:22]
    # fragments without BATs (legacy public blocks) are accepted
    big, fragments = FragmentedPaddedCipherText.build_data(KEY, bytes(9000), rng=RNG)
    bare = [f.payload for f in fragments]
    public = FragmentedPaddedCipherText(
        big.nonce, None, big.header, tuple(Cid.for_block(CODEC_RAW, b) for b in bare)
    )
    assert FragmentedPaddedCipherText.deserialize(public.serialize()) == public
    assert public.decrypt_data(KEY, bare) == bytes(9000)


def _valid() -> dict[str, object]:
    payload, _ = FragmentedPaddedCipherText.build_data(KEY, bytes(9000), rng=RNG)
    value: dict[str, object] = dag_cbor.decode(payload.serialize())
    return value


@pytest.mark.parametrize(
    "change",
    [
        {"n": bytes(23)},
        {"h": bytes(4096)},
        {"f": []},
        {"f": [b"a", b"b"]},
        {"f": [b"abc"]},  # inline and bats together
        {"f": [Cid.for_block(CODEC_DAG_CBOR, b"x")]},
        {"f": [Cid.for_block(CODEC_RAW, b"x")] * 17},
        {"bats": "x"},
        {"bats": [{"b": {"s": bytes(32)}, "i": BatId.inline(Bat(bytes(32))).to_bytes()}]},
        {"x": 1},
    ],
)
def test_decoding_is_strict(change: dict[str, object]) -> None:
    value = _valid()
    value.update(change)
    with pytest.raises(DecodeError):
        FragmentedPaddedCipherText.from_cbor(value)


def test_one_bat_per_fragment_or_none() -> None:
    value = _valid()
    links = value["f"]
    assert isinstance(links, list)
    value["f"] = links + links
    with pytest.raises(DecodeError):
        FragmentedPaddedCipherText.from_cbor(value)  # two fragments, one BAT
    value["bats"] = []
    assert FragmentedPaddedCipherText.from_cbor(value).bats == ()  # legacy public fragments
    bat = Bat.random(RNG)
    value["bats"] = [BatWithId(bat, bat.calculate_id()).to_cbor()] * 2
    assert len(FragmentedPaddedCipherText.from_cbor(value).bats) == 2


def test_decrypted_value_must_be_one_item_then_zeros() -> None:
    nonce = KEY.create_nonce(RNG)
    trailing = FragmentedPaddedCipherText(nonce, KEY.encrypt(b"\x41\x00\x01" + bytes(4093), nonce))
    with pytest.raises(DecodeError):
        trailing.decrypt(KEY)
    not_bytes = FragmentedPaddedCipherText(nonce, KEY.encrypt(b"\x01" + bytes(4095), nonce))
    with pytest.raises(DecodeError):
        not_bytes.decrypt_data(KEY)
