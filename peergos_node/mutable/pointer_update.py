"""PointerUpdate: the CAS record a writer signs to move its pointer (spec/peergos.md §4.1, Java
`PointerUpdate`, `MaybeMultihash`).

CBOR `[original, updated, sequence]` (the legacy 2-element form without sequence is still parsed); each
hash is a **byte string of CID bytes** (not a tag-42 link) or null for "no pointer" / "deleted".
original != updated is enforced, as Peergos does. Sequences start at 1 and must strictly increase.
The stored pointer value is the writer's attached Ed25519 signature over this CBOR (≤ 147 bytes in
Peergos, `MAX_POINTER_SIZE`); signature handling lives with the key types in peergos_node.crypto.
"""

from __future__ import annotations

from dataclasses import dataclass

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid
from peergos_node.cbor import CborMixin, CborValue, as_cid_bytes, as_int, expect_list

MAX_SIGNED_POINTER_SIZE = 147
"""Largest signed pointer a server stores (64-byte signature + CBOR of two CIDs and a sequence)."""


def maybe_cid_to_cbor(cid: Cid | None) -> CborValue:
    """MaybeMultihash CBOR: CID bytes or null."""
    return None if cid is None else cid.to_bytes()


def maybe_cid_from_cbor(value: CborValue, ctx: str) -> Cid | None:
    """Parse a MaybeMultihash."""
    return None if value is None else as_cid_bytes(value, ctx)


@dataclass(frozen=True)
class PointerUpdate(CborMixin):
    """A compare-and-set from `original` to `updated`, with an optional sequence number."""

    original: Cid | None
    updated: Cid | None
    sequence: int | None

    def __post_init__(self) -> None:
        if self.original == self.updated:
            raise ValueError("a pointer update must change the target (original == updated)")
        if self.sequence is not None and not 0 <= self.sequence < 1 << 63:
            raise ValueError("sequence out of range")

    @staticmethod
    def next_sequence(sequence: int | None) -> int:
        """Peergos `increment`: 1 for a first update, else sequence + 1."""
        return 1 if sequence is None else sequence + 1

    def to_cbor(self) -> CborValue:
        items: list[CborValue] = [maybe_cid_to_cbor(self.original), maybe_cid_to_cbor(self.updated)]
        if self.sequence is not None:
            items.append(self.sequence)
        return items

    @classmethod
    def from_cbor(cls, value: CborValue) -> PointerUpdate:
        items = expect_list(value, "PointerUpdate")
        if len(items) not in (2, 3):
            raise DecodeError("PointerUpdate: expected 2 or 3 items")
        original = maybe_cid_from_cbor(items[0], "PointerUpdate.original")
        updated = maybe_cid_from_cbor(items[1], "PointerUpdate.updated")
        seq = as_int(items[2], "PointerUpdate.sequence", lo=0) if len(items) == 3 else None
        if original == updated:
            raise DecodeError("PointerUpdate: original equals updated")
        return cls(original, updated, seq)

    @classmethod
    def from_signed_unverified(cls, signed: bytes) -> PointerUpdate:
        """Parse the payload of an attached signature *without verifying it*: only for values this server
        already verified before storing them (garbage collection, usage accounting)."""
        if len(signed) < 64:
            raise DecodeError("signed pointer shorter than a signature")
        return cls.deserialize(signed[64:])
