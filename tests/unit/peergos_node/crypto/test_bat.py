"""BATs, the three BatId derivations, BatWithId and raw-block BAT prefixes."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.multiformats import multihash
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_RAW, Cid
from peergos_node.crypto.bat import (
    RAW_BLOCK_MAGIC_PREFIX,
    Bat,
    BatId,
    BatWithId,
    block_bat_ids,
    create_raw_block_prefix,
    has_raw_block_prefix,
    parse_raw_block_prefix,
    remove_raw_block_prefix,
)
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.errors import DecodeError

BAT = Bat(bytes(range(32)))
MIRROR = Bat(bytes(range(32, 64)))


def test_bat_forms() -> None:
    assert BAT.serialize() == dag_cbor.encode({"s": BAT.secret})
    assert Bat.deserialize(BAT.serialize()) == BAT
    assert BAT.encode_secret().startswith("z")
    assert Bat.from_string(BAT.encode_secret()) == BAT
    assert BAT.secret.hex() not in repr(BAT)
    with pytest.raises(DecodeError):
        Bat.from_string("z" + "1" * 10)
    with pytest.raises(ValueError):
        Bat(b"short")
    assert Bat.random(DeterministicRng(1)) == Bat.random(DeterministicRng(1))


def test_three_id_derivations() -> None:
    inline, sha, calc = BatId.inline(BAT), BatId.sha256(BAT), BAT.calculate_id()
    assert inline.cid == Cid.v1(CODEC_RAW, multihash.wrap(multihash.IDENTITY, BAT.secret))
    assert sha.cid == Cid.for_block(CODEC_RAW, BAT.secret)
    assert calc.cid == Cid.for_block(CODEC_RAW, BAT.serialize())
    assert len({inline, sha, calc}) == 3
    assert inline.is_inline and inline.inline_bat() == BAT
    assert not sha.is_inline and sha.inline_bat() is None
    for bat_id in (inline, sha, calc):
        assert bat_id.matches(BAT) and not bat_id.matches(MIRROR)
        assert bat_id.serialize() == dag_cbor.encode(bat_id.to_bytes())
        assert BatId.deserialize(bat_id.serialize()) == bat_id
        assert str(bat_id) == "z" + bat_id.to_base58()


@pytest.mark.parametrize(
    "cid",
    [
        Cid.for_block(CODEC_DAG_CBOR, b"x"),
        Cid.v1(CODEC_RAW, multihash.wrap(multihash.IDENTITY, bytes(31))),
        Cid.v1(CODEC_RAW, b"\xb2\x40\x40" + bytes(64)),
    ],
)
def test_bat_ids_are_raw_identity32_or_sha256(cid: Cid) -> None:
    with pytest.raises(DecodeError):
        BatId(cid)
    with pytest.raises(DecodeError):
        BatId.from_cbor(cid.to_bytes())


def test_bat_with_id() -> None:
    for bat_id in (BatId.sha256(BAT), BAT.calculate_id()):
        bw = BatWithId(BAT, bat_id)
        assert BatWithId.deserialize(bw.serialize()) == bw
        assert BatWithId.decode(bw.encode()) == bw
    with pytest.raises(ValueError):
        BatWithId(BAT, BatId.inline(BAT))
    with pytest.raises(DecodeError):
        BatWithId.from_cbor({"b": BAT.to_cbor(), "i": BatId.sha256(MIRROR).to_cbor()})


def test_raw_prefix_round_trip() -> None:
    for mirror in (None, BatId.sha256(MIRROR)):
        prefix = create_raw_block_prefix(BAT, mirror)
        assert prefix.startswith(RAW_BLOCK_MAGIC_PREFIX) and len(prefix) <= 100
        block = prefix + b"ciphertext"
        ids, offset = parse_raw_block_prefix(block)
        assert ids == [BatId.inline(BAT)] + ([mirror] if mirror else [])
        assert block[offset:] == b"ciphertext"
        assert remove_raw_block_prefix(block) == b"ciphertext"
        assert has_raw_block_prefix(block)
        assert block_bat_ids(Cid.for_block(CODEC_RAW, block), block) == ids


def test_blocks_without_magic_are_public() -> None:
    assert parse_raw_block_prefix(b"plain data") == ([], 0)
    assert remove_raw_block_prefix(b"plain data") == b"plain data"
    assert parse_raw_block_prefix(b"") == ([], 0)


def _raw(ids_cbor: bytes, tail: bytes = b"") -> bytes:
    return RAW_BLOCK_MAGIC_PREFIX + ids_cbor + tail


@pytest.mark.parametrize(
    "block",
    [
        _raw(b""),  # magic only
        _raw(b"\x81"),  # list header, item missing
        _raw(b"\x81\x58"),  # truncated length
        _raw(b"\x81\x58\x05abcde"),  # non-canonical length
        _raw(b"\x9f\xff"),  # indefinite list
        _raw(b"\xa1"),  # a map, not a list
        _raw(b"\x81\x63abc"),  # a text string item
        _raw(b"\x81\x44abcd"),  # bytes that are no CID
        _raw(b"\x81\x59\x00\x24" + bytes(36)),  # 2-byte length head
        _raw(dag_cbor.encode([BatId.inline(BAT).to_bytes()] * 3)),  # ends past 100 bytes
        _raw(dag_cbor.encode([Cid.for_block(CODEC_DAG_CBOR, b"x").to_bytes()])),  # not a raw CID
    ],
)
def test_malformed_prefixes_are_decode_errors(block: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_raw_block_prefix(block)


def test_empty_prefix_list_is_allowed() -> None:
    assert parse_raw_block_prefix(_raw(b"\x80", b"rest")) == ([], 9)


def test_dag_cbor_block_bats() -> None:
    ids = [BatId.inline(BAT), BatId.sha256(MIRROR)]
    block = dag_cbor.encode({"v": 1, "bats": [i.to_bytes() for i in ids], "b": b"x"})
    assert block_bat_ids(Cid.for_block(CODEC_DAG_CBOR, block), block) == ids
    public = dag_cbor.encode({"v": 1})
    assert block_bat_ids(Cid.for_block(CODEC_DAG_CBOR, public), public) == []
    listed = dag_cbor.encode([1, 2])
    assert block_bat_ids(Cid.for_block(CODEC_DAG_CBOR, listed), listed) == []
    assert block_bat_ids(Cid.for_block(CODEC_DAG_PB, b"x"), b"x") == []
    bad = dag_cbor.encode({"bats": "nope"})
    with pytest.raises(DecodeError):
        block_bat_ids(Cid.for_block(CODEC_DAG_CBOR, bad), bad)


def test_id_matching_and_calculated_ids_agree_with_the_derivations() -> None:
    rng = DeterministicRng(b"bat-match")
    bat, other = Bat.random(rng), Bat.random(rng)
    assert bat.calculate_id() == BatId(Cid.for_block(CODEC_RAW, bat.serialize()))
    for derive in (BatId.inline, BatId.sha256, Bat.calculate_id):
        assert derive(bat).matches(bat)
        assert not derive(bat).matches(other)
        assert not derive(other).matches(bat)
    fast = BatWithId.calculated(bat)
    assert fast == BatWithId(bat, bat.calculate_id())
    assert fast.serialize() == BatWithId(bat, bat.calculate_id()).serialize()
    assert BatWithId.decode(fast.encode()) == fast
