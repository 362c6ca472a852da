"""Signing and verifying pointer updates (spec/peergos.md §4.1-4.3).

The stored pointer value is the writer's **attached** Ed25519 signature over the PointerUpdate CBOR.
Writer keys are Ed25519 and their PublicKeyHash inlines the key, so verification needs no lookup.
`SignedPointerUpdate` `{s: signed, w: link(writer)}` and `MultiWriterCommit` `{p: [SignedPointerUpdate]}`
are the bodies of `setPointers` (an atomic multi-writer commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_bytes, expect_list, expect_map, field
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import DecodeError
from peergos_node.mutable.pointer_update import MAX_SIGNED_POINTER_SIZE, PointerUpdate

MAX_COMMIT_WRITERS = 64


def sign_pointer(writer: SigningKeyPair, update: PointerUpdate) -> bytes:
    """The attached signature over the update's CBOR (what a server stores)."""
    return writer.sign(update.serialize())


def verify_signed_pointer(writer: PublicKeyHash, signed: bytes) -> PointerUpdate:
    """Check the writer's signature and parse the update (BadSignature / DecodeError)."""
    if len(signed) > MAX_SIGNED_POINTER_SIZE:
        raise DecodeError(f"signed pointer larger than {MAX_SIGNED_POINTER_SIZE} bytes")
    payload = writer.inlined_signing_key().unsign(signed)
    return PointerUpdate.deserialize(payload)


@dataclass(frozen=True)
class SignedPointerUpdate(CborMixin):
    """One writer's signed update inside a multi-writer commit."""

    writer: PublicKeyHash
    signed: bytes

    def to_cbor(self) -> CborValue:
        return {"s": self.signed, "w": self.writer.to_cbor()}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "SignedPointerUpdate")
        return cls(
            PublicKeyHash.from_cbor(field(m, "w", "SignedPointerUpdate")),
            as_bytes(
                field(m, "s", "SignedPointerUpdate"), "SignedPointerUpdate.s", max_len=MAX_SIGNED_POINTER_SIZE
            ),
        )


@dataclass(frozen=True)
class MultiWriterCommit(CborMixin):
    """An atomic commit of several writers' pointers."""

    updates: tuple[SignedPointerUpdate, ...]

    def to_cbor(self) -> CborValue:
        return {"p": [u.to_cbor() for u in self.updates]}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "MultiWriterCommit")
        items = expect_list(
            field(m, "p", "MultiWriterCommit"), "MultiWriterCommit.p", max_len=MAX_COMMIT_WRITERS
        )
        return cls(tuple(SignedPointerUpdate.from_cbor(i) for i in items))
