"""Ed25519 signing keys in Peergos' forms (spec/peergos.md §1.2, §3.1).

Theory of operation
-------------------
Peergos signs with Ed25519 (TweetNaCl on the Java side, libsodium here; both implement RFC 8032 and
produce identical signatures). A secret key is stored as 64 bytes `seed || public key`. Almost every
signature is **attached**: `sign(m) = signature(64) || m`, and "unsign" (`crypto_sign_open`) returns
`m` or fails. A few places (login-data upload auth, §2.4) use a detached `signature_only`; verifying
that is the same as unsigning `signature || message`.

CBOR forms: `PublicSigningKey` `[1, h'pk32']` (type 1 = Ed25519, 36 bytes of CBOR, so its public key
hash is always an inline identity CID, see `public_key_hash`), `SecretSigningKey` `[1, h'seed||pk']`,
`SigningKeyPair` `[public, secret]` whose text form is the base58btc multibase (`z...`) of that CBOR.

Decoding checks that a secret key's second half really is the public key of its seed and that a key
pair's halves belong together, so a corrupt key can never silently produce signatures that nobody can
verify. Verification failures raise `BadSignature`; malformed CBOR raises `DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import nacl.bindings as _sodium
import nacl.exceptions as _nacl_exc

from nabu_py.codec import dag_cbor
from nabu_py.multiformats import multibase
from peergos_node.cbor import CborMixin, CborValue, as_bytes, as_int, expect_list
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.errors import BadSignature, DecodeError

TYPE_ED25519 = 1
PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64
SEED_BYTES = 32
SIGNATURE_BYTES = 64
MAX_KEY_PAIR_TEXT = 512


def _typed_key(value: CborValue, ctx: str, length: int) -> bytes:
    items = expect_list(value, ctx, length=2)
    as_int(items[0], f"{ctx}.type", TYPE_ED25519, TYPE_ED25519)
    return as_bytes(items[1], f"{ctx}.key", length=length)


@dataclass(frozen=True)
class PublicSigningKey(CborMixin):
    """An Ed25519 public key (CBOR `[1, h'pk32']`)."""

    key: bytes

    def __post_init__(self) -> None:
        if type(self.key) is not bytes or len(self.key) != PUBLIC_KEY_BYTES:
            raise ValueError("an Ed25519 public key is exactly 32 bytes")

    def unsign(self, signed: bytes) -> bytes:
        """Verify an attached signature `sig || message` and return the message; else BadSignature."""
        if len(signed) < SIGNATURE_BYTES:
            raise BadSignature("signed message shorter than a 64-byte signature")
        try:
            return _sodium.crypto_sign_open(signed, self.key)
        except _nacl_exc.CryptoError:
            raise BadSignature("Ed25519 signature does not verify") from None

    def verify_detached(self, signature: bytes, message: bytes) -> None:
        """Verify a detached signature (Peergos verifies these by unsigning `sig || message`)."""
        if len(signature) != SIGNATURE_BYTES:
            raise BadSignature("an Ed25519 signature is exactly 64 bytes")
        self.unsign(signature + message)

    def to_cbor(self) -> CborValue:
        return [TYPE_ED25519, self.key]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(_typed_key(value, "PublicSigningKey", PUBLIC_KEY_BYTES))


@dataclass(frozen=True)
class SecretSigningKey(CborMixin):
    """An Ed25519 secret key, 64 bytes `seed || public key` (CBOR `[1, h'seed||pk']`)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if type(self.secret) is not bytes or len(self.secret) != SECRET_KEY_BYTES:
            raise ValueError("an Ed25519 secret key is exactly 64 bytes (seed || public key)")
        _pk, sk = _sodium.crypto_sign_seed_keypair(self.secret[:SEED_BYTES])
        if sk != self.secret:
            raise ValueError("the secret key's public half does not belong to its seed")

    @classmethod
    def from_seed(cls, seed: bytes) -> SecretSigningKey:
        """The secret key of a 32-byte seed."""
        if len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is exactly 32 bytes")
        _pk, sk = _sodium.crypto_sign_seed_keypair(bytes(seed))
        return cls(sk)

    @property
    def seed(self) -> bytes:
        """The 32-byte seed."""
        return self.secret[:SEED_BYTES]

    def public_key(self) -> PublicSigningKey:
        """The matching public key."""
        return PublicSigningKey(self.secret[SEED_BYTES:])

    def sign(self, message: bytes) -> bytes:
        """Attached signature: `signature(64) || message`."""
        return _sodium.crypto_sign(message, self.secret)

    def signature_only(self, message: bytes) -> bytes:
        """Detached 64-byte signature."""
        return _sodium.crypto_sign(message, self.secret)[:SIGNATURE_BYTES]

    def to_cbor(self) -> CborValue:
        return [TYPE_ED25519, self.secret]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        secret = _typed_key(value, "SecretSigningKey", SECRET_KEY_BYTES)
        try:
            return cls(secret)
        except ValueError as e:
            raise DecodeError(f"SecretSigningKey: {e}") from None


@dataclass(frozen=True)
class SigningKeyPair(CborMixin):
    """An Ed25519 key pair (CBOR `[public, secret]`; text = base58btc multibase of the CBOR)."""

    public: PublicSigningKey
    secret: SecretSigningKey

    def __post_init__(self) -> None:
        if self.secret.public_key() != self.public:
            raise ValueError("the public and secret halves of the key pair do not match")

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKeyPair:
        """The key pair of a 32-byte seed."""
        secret = SecretSigningKey.from_seed(seed)
        return cls(secret.public_key(), secret)

    @classmethod
    def random(cls, rng: Rng = SYSTEM_RNG) -> SigningKeyPair:
        """A fresh key pair from a 32-byte random seed."""
        return cls.from_seed(rng.random_bytes(SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        """Attached signature `signature || message`."""
        return self.secret.sign(message)

    def signature_only(self, message: bytes) -> bytes:
        """Detached 64-byte signature."""
        return self.secret.signature_only(message)

    def to_string(self) -> str:
        """`z` + base58 of the CBOR (Peergos `SigningKeyPair.toString`)."""
        return multibase.encode(self.serialize(), "base58btc")

    @classmethod
    def from_string(cls, text: str) -> SigningKeyPair:
        """Parse the multibase text form."""
        if len(text) > MAX_KEY_PAIR_TEXT:
            raise DecodeError("SigningKeyPair text too long")
        return cls.from_cbor(dag_cbor.decode(multibase.decode(text)))

    def to_cbor(self) -> CborValue:
        return [self.public.to_cbor(), self.secret.to_cbor()]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        items = expect_list(value, "SigningKeyPair", length=2)
        public = PublicSigningKey.from_cbor(items[0])
        secret = SecretSigningKey.from_cbor(items[1])
        try:
            return cls(public, secret)
        except ValueError as e:
            raise DecodeError(f"SigningKeyPair: {e}") from None


__all__ = [
    "PUBLIC_KEY_BYTES",
    "SECRET_KEY_BYTES",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "PublicSigningKey",
    "SecretSigningKey",
    "SigningKeyPair",
]
