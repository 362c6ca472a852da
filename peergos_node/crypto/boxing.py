"""Public-key encryption ("boxing") in Peergos' forms (spec/peergos.md §1.3).

Theory of operation
-------------------
Two key types, told apart by the first element of their CBOR list:

1. **Curve25519** (type 1): NaCl `crypto_box` = X25519, HSalsa20 with a zero nonce, then
   XSalsa20-Poly1305 with a random 24-byte nonce. Peergos' layout is `tag || ciphertext || nonce`, the
   nonce **appended**. Keys: public `[1, h'pk32']`, secret `[1, h'sk32']`.
2. **Hybrid Curve25519 + ML-KEM-1024** (type 2, the default for new accounts): public
   `[2, {c: [1, h'pk'], m: {p: h'ek(1568)'}}]`, secret `[2, {c: [1, h'sk'], m: {s: h'dk(3168)'}}]` where
   `dk` is the FIPS 203 expanded decapsulation key (see `mlkem`). Encryption to a hybrid key:
   1. draw `s1` (32 bytes) and box it from the sender's Curve25519 secret to the recipient's Curve25519
      public key → `c`;
   2. ML-KEM encapsulate to the recipient → (`s2`, ciphertext `m`);
   3. `k = HKDF-SHA256(s1 || s2, salt = 32 zero bytes, info = "peergos")` (one block,
      `hashes.hkdf_sha256_peergos`);
   4. secretbox the payload under `k` with a fresh nonce → `i`, nonce `n`;
   the result is the CBOR map `{c, m, i, n}` (`HybridCipherText`). Random draws happen in Java's order:
   `s1`, the ML-KEM message, the box nonce, the secretbox nonce.

`BoxingKeyPair` is `[public, secret]`. A Curve25519 public key's CBOR is 36 bytes, so its public key
hash is an inline identity CID; a hybrid key's is the sha2-256 CID of its stored block (`public_key_hash`).
Decryption failures raise `BadCiphertext`; malformed keys or cipher texts raise `DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import nacl.bindings as _sodium
import nacl.exceptions as _nacl_exc

from nabu_py.codec import dag_cbor
from peergos_node.cbor import CborMixin, CborValue, as_bytes, as_int, expect_list, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto import mlkem
from peergos_node.crypto.hashes import hkdf_sha256_peergos
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import MAC_BYTES, NONCE_BYTES, secretbox_decrypt, secretbox_encrypt
from peergos_node.errors import BadCiphertext, DecodeError

TYPE_CURVE25519 = 1
TYPE_HYBRID_CURVE25519_MLKEM = 2
CURVE25519_KEY_BYTES = 32
BOX_NONCE_BYTES = 24
HYBRID_SECRET_BYTES = 32


def _curve_key(value: CborValue, ctx: str) -> bytes:
    items = expect_list(value, ctx, length=2)
    as_int(items[0], f"{ctx}.type", TYPE_CURVE25519, TYPE_CURVE25519)
    return as_bytes(items[1], f"{ctx}.key", length=CURVE25519_KEY_BYTES)


def _check_key_bytes(key: bytes, length: int, what: str) -> None:
    if type(key) is not bytes or len(key) != length:
        raise ValueError(f"{what} is exactly {length} bytes")


@dataclass(frozen=True)
class Curve25519PublicKey(CborMixin):
    """A Curve25519 boxing public key (CBOR `[1, h'pk32']`)."""

    key: bytes

    def __post_init__(self) -> None:
        _check_key_bytes(self.key, CURVE25519_KEY_BYTES, "a Curve25519 public key")

    def encrypt_message_for(self, message: bytes, sender: SecretBoxingKey, rng: Rng = SYSTEM_RNG) -> bytes:
        """`crypto_box` from `sender` to this key: `tag || ciphertext || nonce`."""
        if not isinstance(sender, Curve25519SecretKey):
            raise TypeError("a Curve25519 box needs a Curve25519 sender key")
        nonce = rng.random_bytes(BOX_NONCE_BYTES)
        try:
            boxed = _sodium.crypto_box_easy(message, nonce, self.key, sender.key)
        except _nacl_exc.CryptoError:
            raise DecodeError("invalid Curve25519 public key (low order point)") from None
        return boxed + nonce

    def to_cbor(self) -> CborValue:
        return [TYPE_CURVE25519, self.key]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(_curve_key(value, "Curve25519PublicKey"))


@dataclass(frozen=True)
class Curve25519SecretKey(CborMixin):
    """A Curve25519 boxing secret key (CBOR `[1, h'sk32']`)."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_bytes(self.key, CURVE25519_KEY_BYTES, "a Curve25519 secret key")

    @classmethod
    def random(cls, rng: Rng = SYSTEM_RNG) -> Curve25519SecretKey:
        """32 random bytes (X25519 clamps them when used)."""
        return cls(rng.random_bytes(CURVE25519_KEY_BYTES))

    def public_key(self) -> Curve25519PublicKey:
        """X25519 base-point multiple."""
        return Curve25519PublicKey(_sodium.crypto_scalarmult_base(self.key))

    def decrypt_message(self, cipher: bytes, sender: PublicBoxingKey) -> bytes:
        """Open `tag || ciphertext || nonce` from `sender`; BadCiphertext on any failure."""
        if not isinstance(sender, Curve25519PublicKey):
            raise BadCiphertext("a Curve25519 box needs a Curve25519 sender key")
        if len(cipher) < MAC_BYTES + BOX_NONCE_BYTES:
            raise BadCiphertext("box cipher text shorter than tag and nonce")
        body, nonce = cipher[:-BOX_NONCE_BYTES], cipher[-BOX_NONCE_BYTES:]
        try:
            return _sodium.crypto_box_open_easy(body, nonce, sender.key, self.key)
        except _nacl_exc.CryptoError:
            raise BadCiphertext("box authentication failed") from None

    def to_cbor(self) -> CborValue:
        return [TYPE_CURVE25519, self.key]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(_curve_key(value, "Curve25519SecretKey"))


@dataclass(frozen=True)
class MlkemPublicKey(CborMixin):
    """An ML-KEM-1024 encapsulation key (CBOR `{p: h'ek'}`); checked per FIPS 203 §7.2."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        mlkem.check_encapsulation_key(self.key)

    def to_cbor(self) -> CborValue:
        return {"p": self.key}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "MlkemPublicKey")
        only_keys(m, {"p"}, "MlkemPublicKey")
        return cls(as_bytes(cbor_field(m, "p", "MlkemPublicKey"), "MlkemPublicKey.p"))


@dataclass(frozen=True)
class MlkemSecretKey(CborMixin):
    """An ML-KEM-1024 expanded decapsulation key (CBOR `{s: h'dk'}`); checked per FIPS 203 §7.3."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        mlkem.check_decapsulation_key(self.key)

    def public_key(self) -> MlkemPublicKey:
        """The encapsulation key embedded in the expanded key."""
        return MlkemPublicKey(mlkem.encapsulation_key_of(self.key))

    def to_cbor(self) -> CborValue:
        return {"s": self.key}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "MlkemSecretKey")
        only_keys(m, {"s"}, "MlkemSecretKey")
        return cls(as_bytes(cbor_field(m, "s", "MlkemSecretKey"), "MlkemSecretKey.s"))


@dataclass(frozen=True)
class HybridCipherText(CborMixin):
    """Hybrid box output: CBOR `{c: curve25519 box of s1, m: ML-KEM ciphertext, i: secretbox, n: nonce}`."""

    curve25519_ciphertext: bytes
    mlkem_ciphertext: bytes
    encrypted_input: bytes
    nonce: bytes

    def to_cbor(self) -> CborValue:
        return {
            "c": self.curve25519_ciphertext,
            "m": self.mlkem_ciphertext,
            "i": self.encrypted_input,
            "n": self.nonce,
        }

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "HybridCipherText"
        m = expect_map(value, ctx)
        only_keys(m, {"c", "m", "i", "n"}, ctx)
        return cls(
            as_bytes(cbor_field(m, "c", ctx), f"{ctx}.c"),
            as_bytes(cbor_field(m, "m", ctx), f"{ctx}.m", length=mlkem.CIPHERTEXT_BYTES),
            as_bytes(cbor_field(m, "i", ctx), f"{ctx}.i"),
            as_bytes(cbor_field(m, "n", ctx), f"{ctx}.n", length=NONCE_BYTES),
        )


def _hybrid_parts(value: CborValue, ctx: str) -> tuple[CborValue, CborValue]:
    items = expect_list(value, ctx, length=2)
    as_int(items[0], f"{ctx}.type", TYPE_HYBRID_CURVE25519_MLKEM, TYPE_HYBRID_CURVE25519_MLKEM)
    m = expect_map(items[1], ctx)
    only_keys(m, {"c", "m"}, ctx)
    return cbor_field(m, "c", ctx), cbor_field(m, "m", ctx)


@dataclass(frozen=True)
class HybridPublicKey(CborMixin):
    """Hybrid Curve25519 + ML-KEM-1024 public key (CBOR `[2, {c: curve25519, m: {p: ek}}]`)."""

    curve25519: Curve25519PublicKey
    mlkem: MlkemPublicKey

    def encrypt_message_for(self, message: bytes, sender: SecretBoxingKey, rng: Rng = SYSTEM_RNG) -> bytes:
        """Encrypt per spec §1.3; returns the serialised `HybridCipherText`."""
        if not isinstance(sender, HybridSecretKey):
            raise TypeError("a hybrid box needs a hybrid sender key")
        s1 = rng.random_bytes(HYBRID_SECRET_BYTES)
        s2, kem_ct = mlkem.encapsulate(self.mlkem.key, rng.random_bytes(mlkem.SEED_BYTES))
        key = hkdf_sha256_peergos(s1 + s2)
        curve_ct = self.curve25519.encrypt_message_for(s1, sender.curve25519, rng)
        nonce = rng.random_bytes(NONCE_BYTES)
        return HybridCipherText(curve_ct, kem_ct, secretbox_encrypt(message, nonce, key), nonce).serialize()

    def to_cbor(self) -> CborValue:
        return [TYPE_HYBRID_CURVE25519_MLKEM, {"c": self.curve25519.to_cbor(), "m": self.mlkem.to_cbor()}]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        c, m = _hybrid_parts(value, "HybridPublicKey")
        return cls(Curve25519PublicKey.from_cbor(c), MlkemPublicKey.from_cbor(m))


@dataclass(frozen=True)
class HybridSecretKey(CborMixin):
    """Hybrid Curve25519 + ML-KEM-1024 secret key (CBOR `[2, {c: curve25519, m: {s: dk}}]`)."""

    curve25519: Curve25519SecretKey
    mlkem: MlkemSecretKey

    @classmethod
    def random(cls, rng: Rng = SYSTEM_RNG) -> HybridSecretKey:
        """A fresh key: Curve25519 secret, then the ML-KEM seeds d and z."""
        curve = Curve25519SecretKey.random(rng)
        _ek, dk = mlkem.keygen(rng.random_bytes(mlkem.SEED_BYTES), rng.random_bytes(mlkem.SEED_BYTES))
        return cls(curve, MlkemSecretKey(dk))

    def public_key(self) -> HybridPublicKey:
        """The matching public key."""
        return HybridPublicKey(self.curve25519.public_key(), self.mlkem.public_key())

    def decrypt_message(self, cipher: bytes, sender: PublicBoxingKey) -> bytes:
        """Open a `HybridCipherText`; BadCiphertext if any layer fails, DecodeError if malformed."""
        if not isinstance(sender, HybridPublicKey):
            raise BadCiphertext("a hybrid box needs a hybrid sender key")
        hybrid = HybridCipherText.deserialize(cipher)
        s1 = self.curve25519.decrypt_message(hybrid.curve25519_ciphertext, sender.curve25519)
        s2 = mlkem.decapsulate(self.mlkem.key, hybrid.mlkem_ciphertext)
        key = hkdf_sha256_peergos(s1 + s2)
        return secretbox_decrypt(hybrid.encrypted_input, hybrid.nonce, key)

    def to_cbor(self) -> CborValue:
        return [TYPE_HYBRID_CURVE25519_MLKEM, {"c": self.curve25519.to_cbor(), "m": self.mlkem.to_cbor()}]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        c, m = _hybrid_parts(value, "HybridSecretKey")
        return cls(Curve25519SecretKey.from_cbor(c), MlkemSecretKey.from_cbor(m))


PublicBoxingKey = Curve25519PublicKey | HybridPublicKey
SecretBoxingKey = Curve25519SecretKey | HybridSecretKey


def _key_type(value: CborValue, ctx: str) -> int:
    items = expect_list(value, ctx, length=2)
    return as_int(items[0], f"{ctx}.type", 0, 255)


def public_boxing_key_from_cbor(value: CborValue) -> PublicBoxingKey:
    """Decode either public boxing key type by its type tag (Peergos `PublicBoxingKey.fromCbor`)."""
    t = _key_type(value, "PublicBoxingKey")
    if t == TYPE_CURVE25519:
        return Curve25519PublicKey.from_cbor(value)
    if t == TYPE_HYBRID_CURVE25519_MLKEM:
        return HybridPublicKey.from_cbor(value)
    raise DecodeError(f"PublicBoxingKey: unknown type {t}")


def secret_boxing_key_from_cbor(value: CborValue) -> SecretBoxingKey:
    """Decode either secret boxing key type by its type tag."""
    t = _key_type(value, "SecretBoxingKey")
    if t == TYPE_CURVE25519:
        return Curve25519SecretKey.from_cbor(value)
    if t == TYPE_HYBRID_CURVE25519_MLKEM:
        return HybridSecretKey.from_cbor(value)
    raise DecodeError(f"SecretBoxingKey: unknown type {t}")


def deserialize_public_boxing_key(data: bytes) -> PublicBoxingKey:
    """Strictly parse the CBOR bytes of a public boxing key."""
    return public_boxing_key_from_cbor(dag_cbor.decode(data))


@dataclass(frozen=True)
class BoxingKeyPair(CborMixin):
    """A boxing key pair (CBOR `[public, secret]`); the halves must match and be of the same type."""

    public: PublicBoxingKey
    secret: SecretBoxingKey

    def __post_init__(self) -> None:
        if self.secret.public_key() != self.public:
            raise ValueError("the public and secret halves of the boxing key pair do not match")

    @classmethod
    def from_secret(cls, secret: SecretBoxingKey) -> BoxingKeyPair:
        """The pair of a secret key."""
        return cls(secret.public_key(), secret)

    @classmethod
    def random_curve25519(cls, rng: Rng = SYSTEM_RNG) -> BoxingKeyPair:
        """A fresh Curve25519 pair (legacy accounts, ephemeral follow-request keys)."""
        return cls.from_secret(Curve25519SecretKey.random(rng))

    @classmethod
    def random_hybrid(cls, rng: Rng = SYSTEM_RNG) -> BoxingKeyPair:
        """A fresh hybrid post-quantum pair (the default for new accounts)."""
        return cls.from_secret(HybridSecretKey.random(rng))

    def to_cbor(self) -> CborValue:
        return [self.public.to_cbor(), self.secret.to_cbor()]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        items = expect_list(value, "BoxingKeyPair", length=2)
        public = public_boxing_key_from_cbor(items[0])
        secret = secret_boxing_key_from_cbor(items[1])
        try:
            return cls(public, secret)
        except ValueError as e:
            raise DecodeError(f"BoxingKeyPair: {e}") from None


__all__ = [
    "BoxingKeyPair",
    "Curve25519PublicKey",
    "Curve25519SecretKey",
    "HybridCipherText",
    "HybridPublicKey",
    "HybridSecretKey",
    "MlkemPublicKey",
    "MlkemSecretKey",
    "PublicBoxingKey",
    "SecretBoxingKey",
    "deserialize_public_boxing_key",
    "public_boxing_key_from_cbor",
    "secret_boxing_key_from_cbor",
]
