"""PublicKeyHash: identity CIDs of small keys, sha256 CIDs of large ones, and the signer pair."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import DecodeError


def test_signing_key_hash_inlines_the_key() -> None:
    pair = SigningKeyPair.random(DeterministicRng(1))
    h = PublicKeyHash.of(pair.public)
    assert h.is_identity
    assert h.to_bytes() == b"\x01\x71\x00\x24" + pair.public.serialize()
    assert h.inlined_key_cbor() == pair.public.serialize()
    assert h.inlined_signing_key() == pair.public
    assert str(h).startswith("z") and str(h)[1:] == h.to_base58()
    assert PublicKeyHash.parse(str(h)) == h
    assert h.to_cbor() == h.cid and dag_cbor.decode(h.serialize()) == h.cid
    assert PublicKeyHash.deserialize(h.serialize()) == h


def test_large_keys_are_hashed_with_sha256() -> None:
    big = dag_cbor.encode([2, b"x" * 100])
    h = PublicKeyHash.of_key_cbor(big)
    assert not h.is_identity
    assert h.cid == Cid.for_block(CODEC_DAG_CBOR, big)
    assert h.inlined_key_cbor() is None
    with pytest.raises(DecodeError):
        h.inlined_signing_key()
    assert PublicKeyHash.of_key_cbor(b"x" * 36).is_identity
    assert not PublicKeyHash.of_key_cbor(b"x" * 37).is_identity


@pytest.mark.parametrize(
    "cid",
    [
        Cid.for_block(CODEC_RAW, b"x"),
        Cid(0, 0x70, b"\x12\x20" + bytes(32)),
        Cid.v1(CODEC_DAG_CBOR, b"\x00\x25" + bytes(37)),
        Cid.v1(CODEC_DAG_CBOR, b"\xb2\x40\x40" + bytes(64)),
    ],
)
def test_only_dag_cbor_identity_or_sha256_cids_are_key_hashes(cid: Cid) -> None:
    with pytest.raises(DecodeError):
        PublicKeyHash(cid)
    with pytest.raises(DecodeError):
        PublicKeyHash.from_cbor(cid)


def test_inlined_key_must_be_a_signing_key() -> None:
    h = PublicKeyHash.of_key_cbor(dag_cbor.encode([7, b"k"]))
    with pytest.raises(DecodeError):
        h.inlined_signing_key()


def test_signer_round_trip_and_strict_keys() -> None:
    pair = SigningKeyPair.random(DeterministicRng(2))
    signer = SigningPrivateKeyAndPublicHash.of(pair)
    assert signer.public_key_hash == PublicKeyHash.of(pair.public)
    assert SigningPrivateKeyAndPublicHash.deserialize(signer.serialize()) == signer
    with pytest.raises(DecodeError):
        SigningPrivateKeyAndPublicHash.from_cbor({**signer.to_cbor(), "x": 1})
    with pytest.raises(DecodeError):
        SigningPrivateKeyAndPublicHash.from_cbor({"p": signer.to_cbor()["p"]})
