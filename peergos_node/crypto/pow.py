"""Proof of work for signup, chain updates and mirroring (spec/peergos.md §2.1; vectors README "pow.json").

Theory of operation
-------------------
A proof is an 8-byte prefix — a little-endian counter starting at 0 — such that
`sha256(prefix || data)` satisfies the difficulty. `data` is the CBOR list of the claim chain at signup
(or the UTF-8 username when mirroring). CBOR: `{type: 0x12 (sha2-256), prefix: h'8 bytes'}`.

The difficulty check keeps **Java's quirk** (`ProofOfWork.satisfiesDifficulty`, which Peergos servers
also use to verify): the first `d // 8` bytes must be zero, and for the remaining `r = d % 8` bits Java
tests `(hash[d // 8] << (8 - r)) & 0xff == 0`, i.e. the **low** `r` bits of the next byte, not its
leading bits. So `00e0...` satisfies d = 11 and `0007...` does not. Changing this would make our proofs
fail on Java servers (and accept proofs Java would reject).

`find` hashes in a tight loop over a reused buffer (~0.65 us per attempt here): difficulty 11 takes a
few milliseconds, 20 about a second.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from dataclasses import dataclass
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_bytes, as_int, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.errors import ProofOfWorkError

TYPE_SHA2_256 = 0x12
PREFIX_BYTES = 8
MAX_DIFFICULTY = 256
_COUNTER = struct.Struct("<Q")


def _check_difficulty(difficulty: int) -> None:
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ProofOfWorkError(f"difficulty must be in [0, {MAX_DIFFICULTY}]")


def satisfies_difficulty(digest: bytes, difficulty: int) -> bool:
    """Java's check: `d // 8` zero bytes, then the low `d % 8` bits of the next byte zero."""
    _check_difficulty(difficulty)
    whole, rem = divmod(difficulty, 8)
    if len(digest) < whole + (1 if rem else 0):
        return False
    if any(digest[:whole]):
        return False
    return rem == 0 or (digest[whole] & ((1 << rem) - 1)) == 0


@dataclass(frozen=True)
class ProofOfWork(CborMixin):
    """An 8-byte prefix with its hash type (CBOR `{type: 18, prefix: h'...'}`)."""

    prefix: bytes

    def __post_init__(self) -> None:
        if type(self.prefix) is not bytes or len(self.prefix) != PREFIX_BYTES:
            raise ValueError("a proof-of-work prefix is exactly 8 bytes")

    @classmethod
    def of_counter(cls, counter: int) -> ProofOfWork:
        """The proof whose prefix is `counter` as a little-endian uint64."""
        return cls(_COUNTER.pack(counter))

    @property
    def counter(self) -> int:
        """The prefix as a little-endian counter."""
        return int(_COUNTER.unpack(self.prefix)[0])

    @classmethod
    def find(cls, data: bytes, difficulty: int, max_attempts: int | None = None) -> ProofOfWork:
        """The first counter from 0 whose `sha256(prefix || data)` satisfies `difficulty`."""
        _check_difficulty(difficulty)
        whole, rem = divmod(difficulty, 8)
        zeros = bytes(whole)
        low_mask = (1 << rem) - 1
        buf = bytearray(PREFIX_BYTES + len(data))
        buf[PREFIX_BYTES:] = data
        pack_into = _COUNTER.pack_into
        sha = hashlib.sha256
        counters = itertools.count() if max_attempts is None else iter(range(max_attempts))
        for counter in counters:
            pack_into(buf, 0, counter)
            digest = sha(buf).digest()
            # Cheap first-byte test rejects almost every attempt when difficulty >= 8.
            if (whole and digest[0]) or digest[:whole] != zeros:
                continue
            if rem == 0 or (digest[whole] & low_mask) == 0:
                return cls.of_counter(counter)
        raise ProofOfWorkError(f"no proof of work of difficulty {difficulty} in {max_attempts} attempts")

    def hash(self, data: bytes) -> bytes:
        """sha256(prefix || data)."""
        return hashlib.sha256(self.prefix + data).digest()

    def satisfies(self, data: bytes, difficulty: int) -> bool:
        """Whether this proof meets `difficulty` for `data`."""
        return satisfies_difficulty(self.hash(data), difficulty)

    def verify(self, data: bytes, difficulty: int) -> None:
        """Raise ProofOfWorkError unless this proof meets `difficulty` for `data`."""
        if not self.satisfies(data, difficulty):
            raise ProofOfWorkError(f"proof of work does not meet difficulty {difficulty}")

    def to_cbor(self) -> CborValue:
        return {"type": TYPE_SHA2_256, "prefix": self.prefix}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "ProofOfWork"
        m = expect_map(value, ctx)
        only_keys(m, {"type", "prefix"}, ctx)
        as_int(cbor_field(m, "type", ctx), f"{ctx}.type", TYPE_SHA2_256, TYPE_SHA2_256)
        return cls(as_bytes(cbor_field(m, "prefix", ctx), f"{ctx}.prefix", length=PREFIX_BYTES))


__all__ = ["MAX_DIFFICULTY", "PREFIX_BYTES", "ProofOfWork", "satisfies_difficulty"]
