"""Ed25519 keys and signatures in Peergos' forms."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey, SigningKeyPair
from peergos_node.errors import BadSignature, DecodeError

# RFC 8032 §7.1, TEST 1 (empty message)
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PK = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_test_vector_attached_and_detached() -> None:
    pair = SigningKeyPair.from_seed(RFC_SEED)
    assert pair.public.key == RFC_PK
    assert pair.secret.secret == RFC_SEED + RFC_PK
    assert pair.sign(b"") == RFC_SIG
    assert pair.signature_only(b"") == RFC_SIG
    assert pair.public.unsign(RFC_SIG) == b""
    pair.public.verify_detached(RFC_SIG, b"")


def test_sign_and_unsign_round_trip() -> None:
    pair = SigningKeyPair.random(DeterministicRng(1))
    signed = pair.sign(b"message")
    assert signed[64:] == b"message" and len(signed) == 64 + 7
    assert pair.public.unsign(signed) == b"message"
    pair.public.verify_detached(signed[:64], b"message")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-1] + bytes([s[-1] ^ 1]),
        lambda s: bytes([s[0] ^ 1]) + s[1:],
        lambda s: s[:63],
        lambda s: b"",
        lambda s: s + b"x",
    ],
)
def test_tampered_signatures_fail(mutate: object) -> None:
    pair = SigningKeyPair.random(DeterministicRng(2))
    signed = pair.sign(b"message")
    with pytest.raises(BadSignature):
        pair.public.unsign(mutate(signed))  # type: ignore[operator]


def test_wrong_key_and_detached_failures() -> None:
    pair, other = SigningKeyPair.random(DeterministicRng(3)), SigningKeyPair.random(DeterministicRng(4))
    sig = pair.signature_only(b"m")
    with pytest.raises(BadSignature):
        other.public.verify_detached(sig, b"m")
    with pytest.raises(BadSignature):
        pair.public.verify_detached(sig, b"n")
    with pytest.raises(BadSignature):
        pair.public.verify_detached(sig[:63], b"m")


def test_cbor_forms() -> None:
    pair = SigningKeyPair.from_seed(RFC_SEED)
    assert pair.public.serialize() == dag_cbor.encode([1, RFC_PK]) and len(pair.public.serialize()) == 36
    assert pair.secret.serialize() == dag_cbor.encode([1, RFC_SEED + RFC_PK])
    assert pair.serialize() == dag_cbor.encode([[1, RFC_PK], [1, RFC_SEED + RFC_PK]])
    assert SigningKeyPair.deserialize(pair.serialize()) == pair
    assert SigningKeyPair.from_string(pair.to_string()) == pair
    assert pair.to_string().startswith("z")
    assert RFC_SEED.hex() not in repr(pair)


def test_secret_key_must_hold_its_own_public_key() -> None:
    bad = RFC_SEED + bytes(32)
    with pytest.raises(ValueError):
        SecretSigningKey(bad)
    with pytest.raises(DecodeError):
        SecretSigningKey.from_cbor([1, bad])


def test_key_pair_halves_must_match() -> None:
    a, b = SigningKeyPair.random(DeterministicRng(5)), SigningKeyPair.random(DeterministicRng(6))
    with pytest.raises(ValueError):
        SigningKeyPair(a.public, b.secret)
    with pytest.raises(DecodeError):
        SigningKeyPair.from_cbor([a.public.to_cbor(), b.secret.to_cbor()])


@pytest.mark.parametrize("value", [[2, RFC_PK], [1, RFC_PK[:31]], [1], [1, RFC_PK, 0], "key"])
def test_public_key_rejects_other_shapes(value: object) -> None:
    with pytest.raises(DecodeError):
        PublicSigningKey.from_cbor(value)


def test_random_pair_draws_one_seed() -> None:
    assert SigningKeyPair.random(ScriptedRng([RFC_SEED])).public.key == RFC_PK
    with pytest.raises(ValueError):
        SecretSigningKey.from_seed(b"short")
