"""OwnerProof: a writer key's statement that it is owned by another key (spec/peergos.md §3.1).

CBOR `{o: link(owned key hash), p: sign_owned(cbor(owner key hash))}` — the owned key signs (attached)
the CBOR of the owner's PublicKeyHash (a tag-42 link). A writer is authorised for a user when such a
proof sits in its parent writer's owned-key CHAMP (or `WriterData.named`), up to the identity key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_bytes, expect_map, field
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import BadSignature, DecodeError

MAX_PROOF_BYTES = 512


@dataclass(frozen=True)
class OwnerProof(CborMixin):
    """Proof that `owned` is owned by whoever's key hash it signed."""

    owned: PublicKeyHash
    signed_owner: bytes

    @classmethod
    def build(cls, owned_pair: SigningKeyPair, owner: PublicKeyHash) -> OwnerProof:
        """Sign the owner's key hash with the owned key."""
        return cls(PublicKeyHash.of(owned_pair.public), owned_pair.sign(owner.serialize()))

    def owner(self) -> PublicKeyHash:
        """Verify the signature with the (inline) owned key and return the owner it names."""
        key = self.owned.inlined_signing_key()
        message = key.unsign(self.signed_owner)
        try:
            return PublicKeyHash.deserialize(message)
        except DecodeError:
            raise BadSignature("owner proof does not sign a key hash") from None

    def verify(self, owner: PublicKeyHash) -> None:
        """Raise BadSignature unless this proves that `owner` owns `owned`."""
        if self.owner() != owner:
            raise BadSignature(f"owner proof names another owner than {owner}")

    def to_cbor(self) -> CborValue:
        return {"o": self.owned.to_cbor(), "p": self.signed_owner}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "OwnerProof")
        return cls(
            PublicKeyHash.from_cbor(field(m, "o", "OwnerProof")),
            as_bytes(field(m, "p", "OwnerProof"), "OwnerProof.p", max_len=MAX_PROOF_BYTES),
        )
