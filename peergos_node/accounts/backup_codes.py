"""Single-use backup codes (spec/peergos.md §2.6; Java `BackupCodes`, `JdbcAccount.generateBackupCodes`,
`validateBackupCode`).

Theory of operation
-------------------
`genBackupCodes` (allowed only once an enabled interactive factor other than backup codes exists, see
`mfa.has_interactive_factor`) returns `BackupCodes` CBOR `{i: h'credential id', c: [code, ...]}`: ten
codes, each the first 10 characters of the lower-case, unpadded base32 of 7 random bytes (redrawn if a
code repeats), then a 32-byte random credential id. Codes are shown grouped in fives (`a3f5b-2xqz7`).

The server never keeps the codes: it stores `BackupCodeHashes` CBOR `{h: [sha256(normalise(code)), ...]}`
as the factor's value and the number of unused codes, as decimal text, as the factor's name (so `"0"`
marks an exhausted set, which is no longer listed). Generating a new set replaces the old one.

Redeeming (`BackupCodeHashes.redeem`) normalises what the user typed (lower case, keep only `a-z` and
`2-7`, so separators, spaces and case do not matter), compares hashes in constant time, and returns the
remaining set; the store must write it back with a compare-and-set on the old value so two concurrent
logins cannot both spend the same code. A code that is not in the set is an `AuthError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Self

from peergos_node.cbor import CborMixin, CborValue, as_bytes, as_str, expect_list, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.errors import AuthError

CODE_COUNT = 10
CODE_CHARS = 10
CODE_BYTES = 7
GROUP = 5
CREDENTIAL_ID_BYTES = 32
MAX_CODES = 64
MAX_CODE_CHARS = 64
MAX_CREDENTIAL_ID = 1024


def generate_code(random: bytes) -> str:
    """A code from random bytes: lower-case unpadded base32, first 10 characters (Java `generate`)."""
    if len(random) < CODE_BYTES:
        raise ValueError("Insufficient randomness for a backup code!")
    return base64.b32encode(random).decode("ascii").rstrip("=").lower()[:CODE_CHARS]


def format_code(code: str) -> str:
    """Display form, groups of five joined by `-` (Java `format`)."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalise(code: str) -> str:
    """Lower case, keeping only the base32 characters `a-z` and `2-7` (Java `normalise`)."""
    return "".join(c for c in code.lower() if "a" <= c <= "z" or "2" <= c <= "7")


def hash_code(code: str) -> bytes:
    """What the server stores for a code: sha256 of its normalised UTF-8."""
    return hashlib.sha256(normalise(code).encode("utf-8")).digest()


@dataclass(frozen=True)
class BackupCodeHashes(CborMixin):
    """The stored value of a backup-code factor: the hashes of the unused codes (CBOR `{h: [...]}`)."""

    hashes: tuple[bytes, ...]

    @property
    def remaining_name(self) -> str:
        """The factor's name while this set is stored: the count of unused codes."""
        return str(len(self.hashes))

    def redeem(self, code: str) -> BackupCodeHashes:
        """Spend `code`: the set without it, or AuthError if it is not an unused code of this set."""
        h = hash_code(code)
        remaining = tuple(x for x in self.hashes if not hmac.compare_digest(x, h))
        if len(remaining) == len(self.hashes):
            raise AuthError("Invalid backup code")
        return BackupCodeHashes(remaining)

    def to_cbor(self) -> CborValue:
        return {"h": list(self.hashes)}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "BackupCodeHashes"
        m = expect_map(value, ctx)
        only_keys(m, {"h"}, ctx)
        items = expect_list(cbor_field(m, "h", ctx), f"{ctx}.h", max_len=MAX_CODES)
        return cls(tuple(as_bytes(i, f"{ctx}.h", length=32) for i in items))


@dataclass(frozen=True)
class BackupCodes(CborMixin):
    """A freshly generated set, the only time the plaintext codes exist (CBOR `{i, c}`)."""

    credential_id: bytes
    codes: tuple[str, ...] = field(repr=False)

    @classmethod
    def generate(cls, rng: Rng = SYSTEM_RNG) -> BackupCodes:
        """Ten distinct codes from 7 random bytes each, then a 32-byte credential id (Java's draw order)."""
        codes: list[str] = []
        while len(codes) < CODE_COUNT:
            code = generate_code(rng.random_bytes(CODE_BYTES))
            if code not in codes:
                codes.append(code)
        return cls(rng.random_bytes(CREDENTIAL_ID_BYTES), tuple(codes))

    def formatted(self) -> tuple[str, ...]:
        """The codes in display form."""
        return tuple(format_code(c) for c in self.codes)

    def hashes(self) -> BackupCodeHashes:
        """What the server stores for this set."""
        return BackupCodeHashes(tuple(hash_code(c) for c in self.codes))

    def to_cbor(self) -> CborValue:
        return {"i": self.credential_id, "c": list(self.codes)}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "BackupCodes"
        m = expect_map(value, ctx)
        only_keys(m, {"i", "c"}, ctx)
        items = expect_list(cbor_field(m, "c", ctx), f"{ctx}.c", max_len=MAX_CODES)
        return cls(
            as_bytes(cbor_field(m, "i", ctx), f"{ctx}.i", max_len=MAX_CREDENTIAL_ID),
            tuple(as_str(i, f"{ctx}.c", max_len=MAX_CODE_CHARS) for i in items),
        )


__all__ = [
    "CODE_BYTES",
    "CODE_CHARS",
    "CODE_COUNT",
    "BackupCodeHashes",
    "BackupCodes",
    "format_code",
    "generate_code",
    "hash_code",
    "normalise",
]
