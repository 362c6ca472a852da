"""Symmetric encryption in Peergos' layouts (spec/peergos.md §1.1, §6.1).

Theory of operation
-------------------
Peergos encrypts with NaCl `crypto_secretbox` (XSalsa20-Poly1305, 32-byte key, 24-byte random nonce)
and stores `tag(16) || ciphertext` — libsodium's "easy" layout, without the 16 zero bytes of the
original NaCl API. We call libsodium's `crypto_secretbox_easy` / `crypto_secretbox_open_easy` through
`nacl.bindings` directly: PyNaCl's `SecretBox` class measured 3x slower on 5 MiB chunks.

CBOR forms (all canonical dag-cbor, `peergos_node.cbor`):

- `SymmetricKey`:     `[1, h'key32', isDirty]` (type 1 = TweetNaCl; the dirty flag marks a data key to be
                      rotated on the next write after a revocation, §6.9; equality includes it).
- `CipherText`:       `[h'nonce24', h'tag || ciphertext']` of the CBOR serialisation of a value.
- `PaddedCipherText`: the same shape, but the plaintext CBOR is zero-padded to a multiple of a block size
                      before encryption; decryption reads exactly one CBOR item and accepts only zero bytes
                      after it.
- `SymmetricLink`:    a `CipherText` of the target key's CBOR under the source key (parent write key →
                      child write key, §6.1).

Every random choice (keys, nonces) is drawn from an injectable `Rng`. Failed authentication raises
`BadCiphertext`; malformed CBOR raises `DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import nacl.bindings as _sodium
import nacl.exceptions as _nacl_exc

from nabu_py.codec import dag_cbor
from peergos_node.cbor import (
    Cborable,
    CborMixin,
    CborValue,
    as_bool,
    as_bytes,
    as_int,
    expect_list,
)
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.errors import BadCiphertext, DecodeError

KEY_BYTES = 32
NONCE_BYTES = 24
MAC_BYTES = 16
TYPE_TWEETNACL = 1

_secretbox_easy = _sodium.crypto_secretbox_easy
_secretbox_open_easy = _sodium.crypto_secretbox_open_easy


def secretbox_encrypt(plaintext: bytes, nonce: bytes, key: bytes) -> bytes:
    """XSalsa20-Poly1305: returns `tag(16) || ciphertext` (Peergos `TweetNaClKey.encrypt`)."""
    return _secretbox_easy(plaintext, nonce, key)


def secretbox_decrypt(ciphertext: bytes, nonce: bytes, key: bytes) -> bytes:
    """Open `tag || ciphertext`; BadCiphertext if it does not authenticate."""
    if len(ciphertext) < MAC_BYTES:
        raise BadCiphertext("secretbox cipher text shorter than its 16-byte tag")
    if len(nonce) != NONCE_BYTES or len(key) != KEY_BYTES:
        raise BadCiphertext("secretbox nonce must be 24 bytes and key 32 bytes")
    try:
        return _secretbox_open_easy(ciphertext, nonce, key)
    except _nacl_exc.CryptoError:
        raise BadCiphertext("secretbox authentication failed") from None


@dataclass(frozen=True)
class SymmetricKey(CborMixin):
    """A 32-byte XSalsa20-Poly1305 key plus Peergos' dirty flag (CBOR `[1, h'key', dirty]`)."""

    key: bytes = field(repr=False)
    dirty: bool = False

    def __post_init__(self) -> None:
        if type(self.key) is not bytes or len(self.key) != KEY_BYTES:
            raise ValueError("a symmetric key is exactly 32 bytes")
        if type(self.dirty) is not bool:
            raise ValueError("dirty must be a bool")

    @classmethod
    def random(cls, rng: Rng = SYSTEM_RNG) -> SymmetricKey:
        """A fresh clean key."""
        return cls(rng.random_bytes(KEY_BYTES))

    @staticmethod
    def create_nonce(rng: Rng = SYSTEM_RNG) -> bytes:
        """A fresh 24-byte nonce."""
        return rng.random_bytes(NONCE_BYTES)

    def encrypt(self, plaintext: bytes, nonce: bytes) -> bytes:
        """`tag || ciphertext` of `plaintext` under this key and `nonce`."""
        return _secretbox_easy(plaintext, nonce, self.key)

    def decrypt(self, ciphertext: bytes, nonce: bytes) -> bytes:
        """Plaintext of `tag || ciphertext`; BadCiphertext on failure."""
        return secretbox_decrypt(ciphertext, nonce, self.key)

    def make_dirty(self) -> SymmetricKey:
        """The same key marked dirty (to be rotated on the next write)."""
        return SymmetricKey(self.key, True)

    def to_cbor(self) -> CborValue:
        return [TYPE_TWEETNACL, self.key, self.dirty]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        items = expect_list(value, "SymmetricKey", length=3)
        as_int(items[0], "SymmetricKey.type", TYPE_TWEETNACL, TYPE_TWEETNACL)
        key = as_bytes(items[1], "SymmetricKey.key", length=KEY_BYTES)
        return cls(key, as_bool(items[2], "SymmetricKey.dirty"))


def _nonce_and_box(value: CborValue, ctx: str) -> tuple[bytes, bytes]:
    items = expect_list(value, ctx, length=2)
    nonce = as_bytes(items[0], f"{ctx}.nonce", length=NONCE_BYTES)
    box = as_bytes(items[1], f"{ctx}.ciphertext")
    if len(box) < MAC_BYTES:
        raise DecodeError(f"{ctx}: cipher text shorter than its 16-byte tag")
    return nonce, box


@dataclass(frozen=True)
class CipherText(CborMixin):
    """`[nonce, secretbox(cbor(value), nonce, key)]` (Peergos `CipherText`)."""

    nonce: bytes
    ciphertext: bytes = field(repr=False)

    @classmethod
    def encrypt(cls, key: SymmetricKey, plaintext: bytes, rng: Rng = SYSTEM_RNG) -> CipherText:
        """Encrypt already-serialised bytes under a fresh nonce."""
        nonce = key.create_nonce(rng)
        return cls(nonce, key.encrypt(plaintext, nonce))

    @classmethod
    def build(cls, key: SymmetricKey, obj: Cborable, rng: Rng = SYSTEM_RNG) -> CipherText:
        """Encrypt the CBOR serialisation of `obj` (Peergos `CipherText.build`)."""
        return cls.encrypt(key, dag_cbor.encode(obj.to_cbor()), rng)

    def decrypt_bytes(self, key: SymmetricKey) -> bytes:
        """The plaintext bytes; BadCiphertext if the key is wrong or the data was tampered with."""
        return key.decrypt(self.ciphertext, self.nonce)

    def decrypt(self, key: SymmetricKey) -> CborValue:
        """Decrypt and strictly decode exactly one CBOR value."""
        return dag_cbor.decode(self.decrypt_bytes(key))

    def to_cbor(self) -> CborValue:
        return [self.nonce, self.ciphertext]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(*_nonce_and_box(value, "CipherText"))


def pad_to_block(data: bytes, block: int) -> bytes:
    """Append zero bytes up to the next multiple of `block` (nothing if already aligned)."""
    if block < 1:
        raise ValueError("padding block must be positive")
    rem = len(data) % block
    return data if rem == 0 else data + bytes(block - rem)


@dataclass(frozen=True)
class PaddedCipherText(CborMixin):
    """Like `CipherText`, but the plaintext CBOR is zero-padded to a multiple of a block size."""

    nonce: bytes
    ciphertext: bytes = field(repr=False)

    @classmethod
    def encrypt(
        cls, key: SymmetricKey, plaintext: bytes, padding_block: int, rng: Rng = SYSTEM_RNG
    ) -> PaddedCipherText:
        """Pad serialised bytes to `padding_block` and encrypt under a fresh nonce."""
        nonce = key.create_nonce(rng)
        return cls(nonce, key.encrypt(pad_to_block(plaintext, padding_block), nonce))

    @classmethod
    def build(
        cls, key: SymmetricKey, obj: Cborable, padding_block: int, rng: Rng = SYSTEM_RNG
    ) -> PaddedCipherText:
        """Peergos `PaddedCipherText.build(key, cborable, paddingBlockSize)`."""
        return cls.encrypt(key, dag_cbor.encode(obj.to_cbor()), padding_block, rng)

    def decrypt_bytes(self, key: SymmetricKey) -> bytes:
        """The padded plaintext (CBOR followed by zero bytes)."""
        return key.decrypt(self.ciphertext, self.nonce)

    def decrypt(self, key: SymmetricKey) -> CborValue:
        """Decrypt, read exactly one CBOR item and require that only zero bytes follow it."""
        return dag_cbor.decode(self.decrypt_bytes(key), allow_zero_padding=True)

    def to_cbor(self) -> CborValue:
        return [self.nonce, self.ciphertext]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(*_nonce_and_box(value, "PaddedCipherText"))


@dataclass(frozen=True)
class SymmetricLink(CborMixin):
    """A key encrypted under another key (CBOR: the `CipherText` of the target key)."""

    link: CipherText

    @classmethod
    def from_pair(cls, source: SymmetricKey, target: SymmetricKey, rng: Rng = SYSTEM_RNG) -> SymmetricLink:
        """Encrypt `target` under `source` (Peergos `SymmetricLink.fromPair(from, to)`)."""
        return cls(CipherText.build(source, target, rng))

    def target(self, source: SymmetricKey) -> SymmetricKey:
        """Recover the target key; BadCiphertext for a wrong source key, DecodeError if not a key."""
        return SymmetricKey.from_cbor(self.link.decrypt(source))

    def to_cbor(self) -> CborValue:
        return self.link.to_cbor()

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(CipherText.from_cbor(value))


__all__ = [
    "KEY_BYTES",
    "MAC_BYTES",
    "NONCE_BYTES",
    "CipherText",
    "PaddedCipherText",
    "SymmetricKey",
    "SymmetricLink",
    "pad_to_block",
    "secretbox_decrypt",
    "secretbox_encrypt",
]
