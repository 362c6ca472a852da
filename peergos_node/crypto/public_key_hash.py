"""Public key hashes: how Peergos names keys (spec/peergos.md §1.5, §3.1; vectors README "Public key hash").

Theory of operation
-------------------
A `PublicKeyHash` is a CIDv1 with codec dag-cbor over the CBOR of a public key
(`ContentAddressedStorage.hashKey`). When that CBOR is at most 36 bytes (`MAX_IDENTITY_HASH_SIZE`) the
multihash is the **identity** hash, i.e. the key itself is inlined in the CID and nothing needs to be
stored or looked up: every Ed25519 signing key (36 bytes of CBOR) and every Curve25519 boxing key. Larger
keys (hybrid ML-KEM boxing keys) are stored as a dag-cbor block and named by its sha2-256 CID.

Forms: CBOR is a merkle link (tag 42); text is the CID's base58btc multibase string (`z...`); Peergos'
`toBase58()` is the same without the `z`.

`SigningPrivateKeyAndPublicHash` (CBOR `{p: link(public key hash), s: secret key}`) is the "signer"
handed around with write capabilities; it lives here because it pairs a key with its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats import multihash
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.cbor import Cborable, CborMixin, CborValue, as_link, expect_map, field, only_keys
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey, SigningKeyPair

MAX_IDENTITY_HASH_SIZE = 36


def _check_cid(cid: Cid) -> None:
    if cid.version != 1 or cid.codec != CODEC_DAG_CBOR:
        raise DecodeError("a public key hash is a CIDv1 with codec dag-cbor")
    code = cid.multihash[0]
    if code == multihash.IDENTITY:
        if len(cid.digest) > MAX_IDENTITY_HASH_SIZE:
            raise DecodeError(f"an inline key is at most {MAX_IDENTITY_HASH_SIZE} bytes")
    elif code != multihash.SHA2_256:
        raise DecodeError("a public key hash uses the identity or sha2-256 multihash")


@dataclass(frozen=True)
class PublicKeyHash(CborMixin):
    """The CID naming a public key; CBOR is a tag-42 link, text is `z...`."""

    cid: Cid

    def __post_init__(self) -> None:
        if not isinstance(self.cid, Cid):
            raise TypeError("PublicKeyHash wraps a Cid")
        _check_cid(self.cid)

    @classmethod
    def of_key_cbor(cls, key_cbor: bytes) -> PublicKeyHash:
        """Hash serialised key CBOR: inline identity CID up to 36 bytes, else sha2-256."""
        if len(key_cbor) <= MAX_IDENTITY_HASH_SIZE:
            return cls(Cid.v1(CODEC_DAG_CBOR, multihash.wrap(multihash.IDENTITY, key_cbor)))
        return cls(Cid.for_block(CODEC_DAG_CBOR, key_cbor))

    @classmethod
    def of(cls, key: Cborable) -> PublicKeyHash:
        """The hash of a public (signing or boxing) key."""
        return cls.of_key_cbor(dag_cbor.encode(key.to_cbor()))

    @classmethod
    def parse(cls, text: str) -> PublicKeyHash:
        """Parse the `z...` text form (any multibase the CID parser accepts)."""
        return cls(Cid.parse(text))

    @property
    def is_identity(self) -> bool:
        """True when the key is inlined in the hash."""
        return self.cid.is_identity

    def inlined_key_cbor(self) -> bytes | None:
        """The inlined key CBOR, or None for a sha2-256 (stored) key."""
        return self.cid.digest if self.cid.is_identity else None

    def inlined_signing_key(self) -> PublicSigningKey:
        """The Ed25519 key inlined in this hash; DecodeError if there is none or it is not one."""
        raw = self.inlined_key_cbor()
        if raw is None:
            raise DecodeError("this public key hash does not inline its key")
        return PublicSigningKey.from_cbor(dag_cbor.decode(raw))

    def to_bytes(self) -> bytes:
        """The CID bytes."""
        return self.cid.to_bytes()

    def to_base58(self) -> str:
        """Plain base58 of the CID bytes (Peergos `toBase58()`, no multibase prefix)."""
        return self.cid.to_base58()

    def __str__(self) -> str:
        return str(self.cid)

    def to_cbor(self) -> CborValue:
        return self.cid

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(as_link(value, "PublicKeyHash"))


@dataclass(frozen=True)
class SigningPrivateKeyAndPublicHash(CborMixin):
    """A writer's secret signing key with its public key hash (CBOR `{p: link, s: secret key}`)."""

    public_key_hash: PublicKeyHash
    secret: SecretSigningKey

    @classmethod
    def of(cls, pair: SigningKeyPair) -> SigningPrivateKeyAndPublicHash:
        """Pair a key pair's secret with the hash of its public key."""
        return cls(PublicKeyHash.of(pair.public), pair.secret)

    def to_cbor(self) -> CborValue:
        return {"p": self.public_key_hash.to_cbor(), "s": self.secret.to_cbor()}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "SigningPrivateKeyAndPublicHash")
        only_keys(m, {"p", "s"}, "SigningPrivateKeyAndPublicHash")
        return cls(
            PublicKeyHash.from_cbor(field(m, "p", "SigningPrivateKeyAndPublicHash")),
            SecretSigningKey.from_cbor(field(m, "s", "SigningPrivateKeyAndPublicHash")),
        )


__all__ = ["MAX_IDENTITY_HASH_SIZE", "PublicKeyHash", "SigningPrivateKeyAndPublicHash"]
