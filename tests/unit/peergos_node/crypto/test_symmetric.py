"""secretbox in Peergos layout, SymmetricKey, CipherText, PaddedCipherText, SymmetricLink."""

from __future__ import annotations

import nacl.secret
import pytest

from nabu_py.codec import dag_cbor
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.crypto.symmetric import (
    CipherText,
    PaddedCipherText,
    SymmetricKey,
    SymmetricLink,
    pad_to_block,
    secretbox_decrypt,
    secretbox_encrypt,
)
from peergos_node.errors import BadCiphertext, DecodeError

KEY = bytes(range(32))
NONCE = bytes(range(100, 124))


class Raw:
    """A Cborable holding a ready CBOR value."""

    def __init__(self, value: object) -> None:
        self.value = value

    def to_cbor(self) -> object:
        return self.value


def test_secretbox_layout_is_tag_then_ciphertext_like_pynacl() -> None:
    msg = b"hello peergos" * 10
    ours = secretbox_encrypt(msg, NONCE, KEY)
    reference = nacl.secret.SecretBox(KEY).encrypt(msg, NONCE).ciphertext
    assert ours == reference
    assert len(ours) == len(msg) + 16
    assert secretbox_decrypt(ours, NONCE, KEY) == msg


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ct, n, k: (ct[:-1] + bytes([ct[-1] ^ 1]), n, k),
        lambda ct, n, k: (bytes([ct[0] ^ 0x80]) + ct[1:], n, k),
        lambda ct, n, k: (ct, bytes(24), k),
        lambda ct, n, k: (ct, n, bytes(32)),
        lambda ct, n, k: (ct[:15], n, k),
        lambda ct, n, k: (ct, n[:23], k),
        lambda ct, n, k: (ct, n, k[:31]),
    ],
)
def test_secretbox_rejects_tampering_and_bad_sizes(mutate: object) -> None:
    ct = secretbox_encrypt(b"payload", NONCE, KEY)
    args = mutate(ct, NONCE, KEY)  # type: ignore[operator]
    with pytest.raises(BadCiphertext):
        secretbox_decrypt(*args)


def test_symmetric_key_cbor_and_dirty_flag() -> None:
    key = SymmetricKey(KEY)
    assert key.serialize() == bytes.fromhex("83015820") + KEY + b"\xf4"
    dirty = key.make_dirty()
    assert dirty.dirty and dirty != key and dirty.key == key.key
    assert SymmetricKey.deserialize(dirty.serialize()) == dirty
    assert KEY.hex() not in repr(key)


@pytest.mark.parametrize(
    "value",
    [[2, KEY, False], [1, KEY], [1, KEY[:31], False], [1, KEY, 0], [1, KEY, False, 1], {"k": KEY}],
)
def test_symmetric_key_rejects_other_shapes(value: object) -> None:
    with pytest.raises(DecodeError):
        SymmetricKey.from_cbor(value)


def test_symmetric_key_constructor_validates() -> None:
    with pytest.raises(ValueError):
        SymmetricKey(b"short")
    with pytest.raises(ValueError):
        SymmetricKey(KEY, 1)  # type: ignore[arg-type]


def test_random_key_and_nonce_come_from_the_rng() -> None:
    assert SymmetricKey.random(ScriptedRng([KEY])) == SymmetricKey(KEY)
    assert SymmetricKey.create_nonce(ScriptedRng([NONCE])) == NONCE
    assert SymmetricKey.random(DeterministicRng(1)) == SymmetricKey.random(DeterministicRng(1))


def test_cipher_text_round_trip_uses_drawn_nonce() -> None:
    key = SymmetricKey(KEY)
    ct = CipherText.build(key, Raw({"a": [1, 2, b"x"]}), ScriptedRng([NONCE]))
    assert ct.nonce == NONCE
    assert ct.ciphertext == secretbox_encrypt(dag_cbor.encode({"a": [1, 2, b"x"]}), NONCE, KEY)
    decoded = CipherText.deserialize(ct.serialize())
    assert decoded == ct
    assert decoded.decrypt(key) == {"a": [1, 2, b"x"]}
    with pytest.raises(BadCiphertext):
        decoded.decrypt(SymmetricKey(bytes(32)))


def test_cipher_text_refuses_non_cbor_or_trailing_plaintext() -> None:
    key = SymmetricKey(KEY)
    with pytest.raises(DecodeError):
        CipherText.encrypt(key, b"\xff\xff", DeterministicRng(2)).decrypt(key)
    with pytest.raises(DecodeError):
        CipherText.encrypt(key, dag_cbor.encode(1) + b"\x00", DeterministicRng(2)).decrypt(key)


@pytest.mark.parametrize("value", [[NONCE], [NONCE[:23], b"x" * 16], [NONCE, b"x" * 15], [NONCE, "text"], {}])
def test_cipher_text_rejects_bad_shapes(value: object) -> None:
    with pytest.raises(DecodeError):
        CipherText.from_cbor(value)
    with pytest.raises(DecodeError):
        PaddedCipherText.from_cbor(value)


def test_pad_to_block() -> None:
    assert pad_to_block(b"abc", 16) == b"abc" + bytes(13)
    assert pad_to_block(b"x" * 16, 16) == b"x" * 16
    assert pad_to_block(b"x" * 17, 16) == b"x" * 17 + bytes(15)
    assert pad_to_block(b"", 16) == b""
    with pytest.raises(ValueError):
        pad_to_block(b"x", 0)


@pytest.mark.parametrize("block", [1, 16, 64, 4096])
def test_padded_cipher_text_pads_and_reads_one_item(block: int) -> None:
    key = SymmetricKey(KEY)
    value = {"name": "file.txt", "size": 12345}
    ct = PaddedCipherText.build(key, Raw(value), block, DeterministicRng(block))
    padded = ct.decrypt_bytes(key)
    assert len(padded) % block == 0
    assert padded.startswith(dag_cbor.encode(value))
    assert PaddedCipherText.deserialize(ct.serialize()).decrypt(key) == value


def test_padded_cipher_text_accepts_only_zero_padding() -> None:
    key = SymmetricKey(KEY)
    bad = PaddedCipherText.encrypt(key, dag_cbor.encode("hi") + b"\x00\x01", 1, DeterministicRng(3))
    with pytest.raises(DecodeError):
        bad.decrypt(key)


def test_symmetric_link_round_trip() -> None:
    source, target = SymmetricKey(KEY), SymmetricKey(bytes(32)).make_dirty()
    link = SymmetricLink.from_pair(source, target, DeterministicRng(4))
    decoded = SymmetricLink.deserialize(link.serialize())
    assert decoded.to_cbor() == link.link.to_cbor()
    assert decoded.target(source) == target
    with pytest.raises(BadCiphertext):
        decoded.target(target)
