"""The two recorded writes of an OpLog: `PointerWrite` and `BlockWrite` (spec/peergos.md §2.4, §2.5,
§12.2; Java `OpLog.PointerWrite`, `OpLog.BlockWrite`).

Theory of operation
-------------------
Signup records every block and pointer write into an OpLog that the server replays in one go, and a
password change carries the new identity `WriterData` block plus its pointer update inside `LoginData`
(`b`, `p`). Both use these two CBOR maps:

- `PointerWrite` `{w: link(writer), s: h'signed pointer CAS'}` — the writer's attached signature over a
  `PointerUpdate`, exactly what `setPointer` takes;
- `BlockWrite` `{w: link(writer), s: h'signed hash', b: h'block', r: raw?}` — `s` is the writer's attached
  signature over sha256(block) (64 + 32 bytes), as in `block/put`; a block is never empty. An op with an
  `r` key is a block write, otherwise a pointer write (`OpLog.parseOperation`).

`BlockWrite.verify()` checks the signature and the hash and returns the block's CID (CIDv1 raw or
dag-cbor, sha2-256), the same checks a `block/put` gets; the pointer's checks (CAS, sequence, controller)
belong to the pointer store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Self

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.cbor import CborMixin, CborValue, as_bool, as_bytes, expect_map, field, only_keys
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SIGNATURE_BYTES, SigningKeyPair
from peergos_node.errors import BadSignature, DecodeError
from peergos_node.mutable.pointer_update import MAX_SIGNED_POINTER_SIZE

MAX_BLOCK_SIZE = 1024 * 1024 * 2
"""Decode bound on an inline block (bodies carrying them are far smaller: OpLog 64 KiB, LoginData 16 KiB)."""
SIGNED_HASH_BYTES = SIGNATURE_BYTES + 32


@dataclass(frozen=True)
class PointerWrite(CborMixin):
    """A signed pointer update for `writer`."""

    writer: PublicKeyHash
    signed: bytes

    def to_cbor(self) -> CborValue:
        return {"w": self.writer.to_cbor(), "s": self.signed}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "PointerWrite"
        m = expect_map(value, ctx)
        only_keys(m, {"w", "s"}, ctx)
        return cls(
            PublicKeyHash.from_cbor(field(m, "w", ctx)),
            as_bytes(field(m, "s", ctx), f"{ctx}.s", max_len=MAX_SIGNED_POINTER_SIZE),
        )


@dataclass(frozen=True)
class BlockWrite(CborMixin):
    """A block with its writer's signature over its sha256."""

    writer: PublicKeyHash
    signature: bytes
    block: bytes
    is_raw: bool

    def __post_init__(self) -> None:
        if not self.block:
            raise ValueError("Empty byte array in block write!")

    @classmethod
    def build(cls, writer: SigningKeyPair, block: bytes, is_raw: bool) -> BlockWrite:
        """Sign a block as `block/put` expects."""
        return cls(
            PublicKeyHash.of(writer.public), writer.sign(hashlib.sha256(block).digest()), block, is_raw
        )

    def verify(self) -> Cid:
        """Check the writer's signature over sha256(block) and return the block's CID (BadSignature)."""
        digest = hashlib.sha256(self.block).digest()
        key = self.writer.inlined_signing_key()
        if key.unsign(self.signature) != digest:
            raise BadSignature("Invalid signature for block!")
        return Cid.v1(CODEC_RAW if self.is_raw else CODEC_DAG_CBOR, b"\x12\x20" + digest)

    def to_cbor(self) -> CborValue:
        return {"w": self.writer.to_cbor(), "s": self.signature, "b": self.block, "r": self.is_raw}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "BlockWrite"
        m = expect_map(value, ctx)
        only_keys(m, {"w", "s", "b", "r"}, ctx)
        block = as_bytes(field(m, "b", ctx), f"{ctx}.b", max_len=MAX_BLOCK_SIZE)
        if not block:
            raise DecodeError(f"{ctx}: empty block")
        return cls(
            PublicKeyHash.from_cbor(field(m, "w", ctx)),
            as_bytes(field(m, "s", ctx), f"{ctx}.s", max_len=SIGNED_HASH_BYTES),
            block,
            as_bool(field(m, "r", ctx), f"{ctx}.r"),
        )


Operation = PointerWrite | BlockWrite


def operation_from_cbor(value: CborValue) -> Operation:
    """One OpLog operation: a block write if it has an `r` key, else a pointer write."""
    m = expect_map(value, "OpLog operation")
    if "r" in m:
        return BlockWrite.from_cbor(m)
    return PointerWrite.from_cbor(m)


__all__ = [
    "MAX_BLOCK_SIZE",
    "SIGNED_HASH_BYTES",
    "BlockWrite",
    "Operation",
    "PointerWrite",
    "operation_from_cbor",
]
