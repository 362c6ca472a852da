"""Curve25519 and hybrid Curve25519 + ML-KEM-1024 boxing (spec §1.3)."""

from __future__ import annotations

import nacl.public
import nacl.secret
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM1024PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nabu_py.codec import dag_cbor
from peergos_node.crypto.boxing import (
    BoxingKeyPair,
    Curve25519PublicKey,
    Curve25519SecretKey,
    HybridCipherText,
    HybridPublicKey,
    HybridSecretKey,
    public_boxing_key_from_cbor,
    secret_boxing_key_from_cbor,
)
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.errors import BadCiphertext, DecodeError

ALICE = Curve25519SecretKey(bytes(range(32)))
BOB = Curve25519SecretKey(bytes(range(32, 64)))


def test_curve25519_box_layout_matches_pynacl_with_nonce_appended() -> None:
    nonce = bytes(range(24))
    sealed = BOB.public_key().encrypt_message_for(b"hi bob", ALICE, ScriptedRng([nonce]))
    reference = nacl.public.Box(
        nacl.public.PrivateKey(ALICE.key), nacl.public.PublicKey(BOB.public_key().key)
    )
    expected = reference.encrypt(b"hi bob", nonce)
    assert sealed == expected.ciphertext + nonce
    assert BOB.decrypt_message(sealed, ALICE.public_key()) == b"hi bob"


@pytest.mark.parametrize(
    "cut", [lambda c: c[:-1], lambda c: c[:39], lambda c: b"", lambda c: bytes([c[0] ^ 1]) + c[1:]]
)
def test_curve25519_box_rejects_tampering(cut: object) -> None:
    sealed = BOB.public_key().encrypt_message_for(b"payload", ALICE, DeterministicRng(1))
    with pytest.raises(BadCiphertext):
        BOB.decrypt_message(cut(sealed), ALICE.public_key())  # type: ignore[operator]


def test_curve25519_wrong_sender_or_key_type() -> None:
    sealed = BOB.public_key().encrypt_message_for(b"payload", ALICE, DeterministicRng(1))
    with pytest.raises(BadCiphertext):
        BOB.decrypt_message(sealed, BOB.public_key())
    hybrid = HybridSecretKey.random(DeterministicRng(2))
    with pytest.raises(BadCiphertext):
        BOB.decrypt_message(sealed, hybrid.public_key())
    with pytest.raises(TypeError):
        BOB.public_key().encrypt_message_for(b"x", hybrid)


def test_encrypting_to_a_low_order_point_is_refused() -> None:
    with pytest.raises(DecodeError):
        Curve25519PublicKey(bytes(32)).encrypt_message_for(b"x", ALICE, DeterministicRng(3))


def _hybrid_pair(seed: str) -> tuple[HybridSecretKey, bytes]:
    """A hybrid key and the 64-byte ML-KEM seed d || z it was made from."""
    draws = DeterministicRng(seed).random_bytes(96)
    key = HybridSecretKey.random(ScriptedRng([draws[:32], draws[32:64], draws[64:]]))
    return key, draws[32:]


def test_hybrid_round_trip() -> None:
    sender, _ = _hybrid_pair("sender")
    recipient, _ = _hybrid_pair("recipient")
    sealed = recipient.public_key().encrypt_message_for(b"follow request", sender, DeterministicRng(4))
    assert recipient.decrypt_message(sealed, sender.public_key()) == b"follow request"


def test_hybrid_exact_construction_with_independent_primitives() -> None:
    """Rebuild every layer of spec §1.3 with PyNaCl, OpenSSL ML-KEM and cryptography's HKDF."""
    sender, _ = _hybrid_pair("sender")
    recipient, kem_seed = _hybrid_pair("recipient")
    s1, m, box_nonce, nonce = b"\x11" * 32, b"\x22" * 32, b"\x33" * 24, b"\x44" * 24
    rng = ScriptedRng([s1, m, box_nonce, nonce])  # Java's draw order
    sealed = recipient.public_key().encrypt_message_for(b"secret payload", sender, rng)
    assert rng.remaining == 0
    hybrid = HybridCipherText.deserialize(sealed)
    assert dag_cbor.decode(sealed).keys() == {"c", "m", "i", "n"}
    assert hybrid.nonce == nonce and hybrid.curve25519_ciphertext[-24:] == box_nonce
    box = nacl.public.Box(
        nacl.public.PrivateKey(recipient.curve25519.key),
        nacl.public.PublicKey(sender.curve25519.public_key().key),
    )
    assert box.decrypt(hybrid.curve25519_ciphertext[:-24], box_nonce) == s1
    s2 = MLKEM1024PrivateKey.from_seed_bytes(kem_seed).decapsulate(hybrid.mlkem_ciphertext)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32), info=b"peergos").derive(s1 + s2)
    assert nacl.secret.SecretBox(key).decrypt(hybrid.encrypted_input, nonce) == b"secret payload"


@pytest.mark.parametrize("field", ["c", "m", "i", "n"])
def test_hybrid_tampering_any_part_fails(field: str) -> None:
    sender, _ = _hybrid_pair("sender")
    recipient, _ = _hybrid_pair("recipient")
    sealed = recipient.public_key().encrypt_message_for(b"payload", sender, DeterministicRng(5))
    value = dag_cbor.decode(sealed)
    part = bytearray(value[field])
    part[len(part) // 2] ^= 1
    value[field] = bytes(part)
    with pytest.raises(BadCiphertext):
        recipient.decrypt_message(dag_cbor.encode(value), sender.public_key())


def test_hybrid_wrong_sender_and_malformed_input() -> None:
    sender, _ = _hybrid_pair("sender")
    recipient, _ = _hybrid_pair("recipient")
    sealed = recipient.public_key().encrypt_message_for(b"payload", sender, DeterministicRng(6))
    with pytest.raises(BadCiphertext):
        recipient.decrypt_message(sealed, recipient.public_key())
    with pytest.raises(BadCiphertext):
        recipient.decrypt_message(sealed, ALICE.public_key())
    with pytest.raises(DecodeError):
        recipient.decrypt_message(b"\xa0", sender.public_key())
    with pytest.raises(TypeError):
        recipient.public_key().encrypt_message_for(b"x", ALICE)


def test_cbor_forms_and_key_hashes() -> None:
    curve = BoxingKeyPair.from_secret(ALICE)
    assert curve.serialize() == dag_cbor.encode([[1, ALICE.public_key().key], [1, ALICE.key]])
    assert BoxingKeyPair.deserialize(curve.serialize()) == curve
    assert PublicKeyHash.of(curve.public).is_identity

    hybrid = BoxingKeyPair.random_hybrid(DeterministicRng(7))
    assert isinstance(hybrid.public, HybridPublicKey) and isinstance(hybrid.secret, HybridSecretKey)
    public_value = hybrid.public.to_cbor()
    assert public_value[0] == 2 and public_value[1]["c"] == [1, hybrid.public.curve25519.key]
    assert public_value[1]["m"] == {"p": hybrid.public.mlkem.key} and len(hybrid.public.mlkem.key) == 1568
    assert hybrid.secret.to_cbor()[1]["m"] == {"s": hybrid.secret.mlkem.key}
    assert len(hybrid.secret.mlkem.key) == 3168
    assert BoxingKeyPair.deserialize(hybrid.serialize()) == hybrid
    assert public_boxing_key_from_cbor(public_value) == hybrid.public
    assert secret_boxing_key_from_cbor(hybrid.secret.to_cbor()) == hybrid.secret
    assert not PublicKeyHash.of(hybrid.public).is_identity  # > 36 bytes: stored as a block


def test_key_pair_halves_must_match() -> None:
    with pytest.raises(DecodeError):
        BoxingKeyPair.from_cbor([BOB.public_key().to_cbor(), ALICE.to_cbor()])
    hybrid = BoxingKeyPair.random_hybrid(DeterministicRng(8))
    with pytest.raises(DecodeError):
        BoxingKeyPair.from_cbor([BOB.public_key().to_cbor(), hybrid.secret.to_cbor()])


@pytest.mark.parametrize(
    "value",
    [
        [3, b"x" * 32],
        [1, b"x" * 31],
        [2, {"c": [1, b"x" * 32]}],
        [2, {"c": [1, b"x" * 32], "m": {"p": b"k"}}],
        [1],
    ],
)
def test_boxing_keys_reject_other_shapes(value: object) -> None:
    with pytest.raises(DecodeError):
        public_boxing_key_from_cbor(value)
