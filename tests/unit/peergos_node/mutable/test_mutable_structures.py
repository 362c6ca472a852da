"""Pointer updates, signed pointers, owner proofs and WriterData: behaviour beyond the vectors."""

from __future__ import annotations

import pytest

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.crypto.login import SecretGenerationAlgorithm
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import BadSignature, DecodeError
from peergos_node.mutable.owner_proof import OwnerProof
from peergos_node.mutable.pointer_update import MAX_SIGNED_POINTER_SIZE, PointerUpdate
from peergos_node.mutable.signed_pointer import (
    MultiWriterCommit,
    SignedPointerUpdate,
    sign_pointer,
    verify_signed_pointer,
)
from peergos_node.mutable.writer_data import WriterData

RNG = DeterministicRng(b"mutable-tests")
A = Cid.for_block(CODEC_DAG_CBOR, b"a")
B = Cid.for_block(CODEC_DAG_CBOR, b"b")


def pair() -> SigningKeyPair:
    return SigningKeyPair.random(RNG)


def test_pointer_update_rules() -> None:
    with pytest.raises(ValueError):
        PointerUpdate(A, A, 1)
    assert PointerUpdate.next_sequence(None) == 1 and PointerUpdate.next_sequence(7) == 8
    legacy = PointerUpdate(None, A, None)
    assert PointerUpdate.deserialize(legacy.serialize()) == legacy
    with pytest.raises(DecodeError):
        PointerUpdate.deserialize(bytes.fromhex("83f6f601"))  # original == updated
    with pytest.raises(DecodeError):
        PointerUpdate.deserialize(bytes.fromhex("81f6"))


def test_signed_pointer_verifies_only_for_its_writer() -> None:
    w, other = pair(), pair()
    upd = PointerUpdate(A, B, 3)
    signed = sign_pointer(w, upd)
    assert len(signed) <= MAX_SIGNED_POINTER_SIZE
    assert verify_signed_pointer(PublicKeyHash.of(w.public), signed) == upd
    with pytest.raises(BadSignature):
        verify_signed_pointer(PublicKeyHash.of(other.public), signed)
    tampered = bytearray(signed)
    tampered[-1] ^= 1
    with pytest.raises(BadSignature):
        verify_signed_pointer(PublicKeyHash.of(w.public), bytes(tampered))
    with pytest.raises(DecodeError):
        verify_signed_pointer(PublicKeyHash.of(w.public), signed + bytes(200))


def test_multi_writer_commit_round_trip() -> None:
    w1, w2 = pair(), pair()
    commit = MultiWriterCommit(
        (
            SignedPointerUpdate(PublicKeyHash.of(w1.public), sign_pointer(w1, PointerUpdate(None, A, 1))),
            SignedPointerUpdate(PublicKeyHash.of(w2.public), sign_pointer(w2, PointerUpdate(A, B, 2))),
        )
    )
    assert MultiWriterCommit.deserialize(commit.serialize()) == commit


def test_owner_proof() -> None:
    owner, owned, stranger = pair(), pair(), pair()
    owner_hash = PublicKeyHash.of(owner.public)
    proof = OwnerProof.build(owned, owner_hash)
    proof.verify(owner_hash)
    with pytest.raises(BadSignature):
        proof.verify(PublicKeyHash.of(stranger.public))
    forged = OwnerProof(PublicKeyHash.of(owned.public), stranger.sign(owner_hash.serialize()))
    with pytest.raises(BadSignature):
        forged.owner()
    not_a_hash = OwnerProof(PublicKeyHash.of(owned.public), owned.sign(b"\x01\x02"))
    with pytest.raises(BadSignature):
        not_a_hash.owner()


def test_writer_data_round_trip_and_strictness() -> None:
    ident, writer = pair(), pair()
    wd = WriterData(
        controller=PublicKeyHash.of(ident.public),
        algorithm=SecretGenerationAlgorithm.default(RNG),
        owned=A,
        named={"pki": OwnerProof.build(writer, PublicKeyHash.of(ident.public))},
        tree=B,
    )
    assert WriterData.deserialize(wd.serialize()) == wd
    assert wd.with_tree(A).tree == A and wd.tree == B
    with pytest.raises(DecodeError):
        WriterData.deserialize(bytes.fromhex("a0"))  # no controller
    bad = wd.to_cbor()
    bad["unknown"] = 1
    from nabu_py.codec import dag_cbor

    with pytest.raises(DecodeError):
        WriterData.deserialize(dag_cbor.encode(bad))
