"""Secret links: creation, link strings, EncryptedCapability and SecretLinkTarget."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability
from peergos_node.cryptree.secret_link import (
    LINK_PASSWORD_ALPHABET,
    EncryptedCapability,
    SecretLink,
    SecretLinkTarget,
    create_link_password,
)
from peergos_node.errors import BadCiphertext, DecodeError

OWNER = PublicKeyHash.of(SigningKeyPair.random(DeterministicRng("owner")).public)
CAP = AbsoluteCapability(OWNER, OWNER, bytes(32), None, SymmetricKey(bytes(range(32))))


def test_create_draws_label_then_password_bytes() -> None:
    draws = [
        b"\x39\x30\x00\x00",
        *[bytes([b]) for b in (0, 25, 26, 51, 52, 61, 255, 62, 7, 100, 8, 9, 10, 11, 12)],
    ]
    link = SecretLink.create(OWNER, ScriptedRng(draws))
    assert link.label == 12345 and link.link_password == "AZaz09HIJKLM"


def test_zero_label_is_redrawn() -> None:
    rng = ScriptedRng([bytes(4), b"\x01\x00\x00\x00", *[b"\x00"] * 12])
    link = SecretLink.create(OWNER, rng)
    assert link.label == 1 and link.link_password == "A" * 12 and rng.remaining == 0


def test_passwords_use_the_alphabet() -> None:
    password = create_link_password(DeterministicRng(3))
    assert len(password) == 12 and set(password) <= set(LINK_PASSWORD_ALPHABET)


def test_link_strings() -> None:
    link = SecretLink.create(OWNER, DeterministicRng(4))
    text = link.to_link()
    assert text == f"secret/{OWNER}/{link.label}#{link.link_password}"
    assert SecretLink.from_link(text) == link
    assert SecretLink.from_link("/" + text + "?open=true") == link


@pytest.mark.parametrize(
    "text",
    [
        f"secret/{OWNER}/0#abc",
        f"secret/{OWNER}/0012#abc",
        f"secret/{OWNER}/-5#abc",
        f"secret/{OWNER}/12",
        f"secret/{OWNER}/12#",
        f"secret/{OWNER}/12#a-b",
        f"public/{OWNER}/12#abc",
        f"secret/{OWNER}/99999999999999999999#abc",
        "secret/zzz/12#abc",
        "secret/" + "z" * 600,
    ],
)
def test_bad_link_strings(text: str) -> None:
    with pytest.raises(DecodeError):
        SecretLink.from_link(text)


@pytest.mark.parametrize("user_password", ["", "extra"])
def test_encrypted_capability(user_password: str) -> None:
    encrypted = EncryptedCapability.create(CAP, 77, "abcDEF123456", user_password, DeterministicRng(5))
    assert encrypted.has_user_password is bool(user_password)
    assert ("p" in dag_cbor.decode(encrypted.serialize())) is bool(user_password)
    decoded = EncryptedCapability.deserialize(encrypted.serialize())
    assert decoded == encrypted
    assert decoded.decrypt(77, "abcDEF123456", user_password) == CAP
    with pytest.raises(BadCiphertext):
        decoded.decrypt(77, "abcDEF123456", user_password + "!")
    with pytest.raises(BadCiphertext):
        decoded.decrypt(78, "abcDEF123456", user_password)


def test_secret_link_target() -> None:
    encrypted = EncryptedCapability.create(CAP, 9, "pw", "", DeterministicRng(6))
    for target in (
        SecretLinkTarget(encrypted),
        SecretLinkTarget(encrypted, expiry=1767225600),
        SecretLinkTarget(encrypted, expiry=1767225600, max_retrievals=3),
    ):
        assert SecretLinkTarget.deserialize(target.serialize()) == target
    with pytest.raises(DecodeError):
        SecretLinkTarget.from_cbor({"cap": encrypted.to_cbor(), "max": -1})
    with pytest.raises(DecodeError):
        SecretLinkTarget.from_cbor({"cap": encrypted.to_cbor(), "other": 1})


def test_link_key_matches_encrypted_capability() -> None:
    link = SecretLink(OWNER, 42, "abc")
    encrypted = EncryptedCapability.create(CAP, link.label, link.link_password, "", DeterministicRng(7))
    assert encrypted.decrypt_with_key(link.link_key()) == CAP
