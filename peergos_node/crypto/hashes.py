"""Hash primitives Peergos builds on (spec/peergos.md §1.3, §1.4).

sha256 is used everywhere (block CIDs, BAT ids, map-key chaining, proof of work); HMAC-SHA256 drives
the S3-V4 block auth (§7); `hkdf_sha256_peergos` is Peergos' one-block HKDF used by hybrid boxing
(`Hasher.hkdfKey`): extract with a 32-byte zero salt, expand once with info `"peergos" || 0x01`, i.e.
`HMAC(HMAC(zero32, ikm), b"peergos\\x01")`. Thin wrappers over `hashlib`/`hmac` so callers never
import those for protocol work and the constructions are written down once.
"""

from __future__ import annotations

import hashlib
import hmac

_ZERO_SALT = bytes(32)
_HKDF_INFO_BLOCK1 = b"peergos\x01"


def sha256(data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte SHA-256 digest."""
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (32 bytes)."""
    return hmac.digest(key, message, "sha256")


def hkdf_sha256_peergos(ikm: bytes) -> bytes:
    """Peergos `hkdfKey`: HKDF-SHA256(ikm, salt = 32 zero bytes, info = "peergos", L = 32)."""
    prk = hmac.digest(_ZERO_SALT, ikm, "sha256")
    return hmac.digest(prk, _HKDF_INFO_BLOCK1, "sha256")


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings without leaking where they differ."""
    return hmac.compare_digest(a, b)


__all__ = ["constant_time_equal", "hkdf_sha256_peergos", "hmac_sha256", "sha256"]
