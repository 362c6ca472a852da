"""varint, multibase, multihash and CID: known values and rejection of malformed input."""

from __future__ import annotations

import hashlib

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nabu_py.errors import DecodeError, HashMismatch
from nabu_py.multiformats import multibase, multihash, varint
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_LIBP2P_KEY, CODEC_RAW, Cid


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (16384, "808001"),
        ((1 << 63) - 1, "ff" * 8 + "7f"),
    ],
)
def test_varint_known_values(value: int, encoded: str) -> None:
    assert varint.encode(value).hex() == encoded
    assert varint.decode(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize("bad", ["", "80", "ff" * 9 + "01", "8000", "0100"])
def test_varint_rejects(bad: str) -> None:
    with pytest.raises(DecodeError):
        varint.decode(bytes.fromhex(bad))


def test_varint_encode_range() -> None:
    with pytest.raises(ValueError):
        varint.encode(-1)
    with pytest.raises(ValueError):
        varint.encode(1 << 63)


def test_multibase_round_trips() -> None:
    data = bytes(range(40))
    for base, prefix in (("base58btc", "z"), ("base32", "b"), ("base32upper", "B"), ("base16", "f")):
        text = multibase.encode(data, base)
        assert text[0] == prefix
        assert multibase.decode(text) == data
    assert multibase.encode(b"hello", "base58btc") == "zCn8eVZg"
    assert multibase.encode(b"hello", "base32") == "bnbswy3dp"
    assert multibase.b58encode(b"\x00\x00\x01") == "112"


@pytest.mark.parametrize("bad", ["", "z0OIl", "x123", "bnbswy3dp1", "bNbswy", "fzz", "z" + "2" * 9000])
def test_multibase_rejects(bad: str) -> None:
    with pytest.raises(DecodeError):
        multibase.decode(bad)


def test_multihash_sha256_identity_blake2b() -> None:
    mh = multihash.compute(multihash.SHA2_256, b"abc")
    assert mh == b"\x12\x20" + hashlib.sha256(b"abc").digest()
    assert multihash.decode(mh) == (multihash.SHA2_256, hashlib.sha256(b"abc").digest())
    ident = multihash.compute(multihash.IDENTITY, b"key")
    assert ident == b"\x00\x03key"
    b2 = multihash.compute(multihash.BLAKE2B_512, b"user1")
    assert b2[:3] == bytes.fromhex("c0e40240")[:3] or b2.startswith(varint.encode(0xB240) + b"\x40")
    assert multihash.decode(b2)[1] == hashlib.blake2b(b"user1", digest_size=64).digest()
    multihash.verify(mh, b"abc")
    with pytest.raises(HashMismatch):
        multihash.verify(mh, b"abd")


@pytest.mark.parametrize("bad", ["1220" + "00" * 31, "1221" + "00" * 33, "00ff01", "120", "12200000"])
def test_multihash_rejects(bad: str) -> None:
    with pytest.raises((DecodeError, ValueError)):
        multihash.decode(bytes.fromhex(bad))


def test_cid_v1_forms() -> None:
    cid = Cid.for_block(CODEC_DAG_CBOR, b"hi")
    assert cid.version == 1 and cid.codec == CODEC_DAG_CBOR and cid.hash_code == multihash.SHA2_256
    assert bytes(cid)[:4] == bytes.fromhex("01711220")
    assert str(cid).startswith("zdpu")
    assert cid.to_base32().startswith("bafyrei")
    assert Cid.parse(str(cid)) == cid == Cid.parse(cid.to_base32()) == Cid.decode(bytes(cid))
    assert hash(cid) == hash(Cid.decode(bytes(cid)))
    raw = Cid.for_block(CODEC_RAW, b"hi")
    assert raw.to_base32().startswith("bafkrei") and raw != cid
    cid.verify(b"hi")
    with pytest.raises(HashMismatch):
        cid.verify(b"ho")


def test_cid_v0() -> None:
    cid = Cid.parse("QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ")
    assert cid.version == 0 and cid.codec == CODEC_DAG_PB
    assert str(cid) == "QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"
    assert len(bytes(cid)) == 34


def test_cid_identity_peer_key() -> None:
    mh = multihash.compute(multihash.IDENTITY, bytes(36))
    cid = Cid.v1(CODEC_LIBP2P_KEY, mh)
    assert cid.is_identity and cid.digest == bytes(36)


def test_cid_is_immutable() -> None:
    cid = Cid.for_block(CODEC_RAW, b"x")
    with pytest.raises(AttributeError):
        cid.codec = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad", ["", "02711220" + "00" * 32, "01711220" + "00" * 31, "01711220" + "00" * 33, "00"]
)
def test_cid_rejects_bytes(bad: str) -> None:
    with pytest.raises(DecodeError):
        Cid.decode(bytes.fromhex(bad))


@pytest.mark.parametrize("bad", ["", "z", "Qm", "hello", "zzzz", "b" + "a" * 600])
def test_cid_rejects_text(bad: str) -> None:
    with pytest.raises(DecodeError):
        Cid.parse(bad)


@given(st.binary(max_size=3000), st.integers(0, 4))
def test_base58_matches_the_reference_encoder(data: bytes, zeros: int) -> None:
    data = bytes(zeros) + data
    text = multibase.b58encode(data)
    assert text == base58.b58encode(data).decode()
    assert multibase.b58decode(text) == data == base58.b58decode(text)
