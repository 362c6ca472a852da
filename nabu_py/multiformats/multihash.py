"""Multihash (https://github.com/multiformats/multihash): varint(code) || varint(len) || digest.

Codes used here: identity 0x00 (inline keys, inline BAT ids, Ed25519 peer ids), sha2-256 0x12
(every block), blake2b-512 0xb240 (Peergos' PKI CHAMP key hash). Decoding checks that the declared
length matches the digest and stays within bounds.
"""

from __future__ import annotations

import hashlib

from nabu_py.errors import DecodeError, HashMismatch
from nabu_py.multiformats import varint

IDENTITY = 0x00
SHA2_256 = 0x12
BLAKE2B_512 = 0xB240

MAX_DIGEST_LEN = 128  # identity digests (inline keys) are the only long ones; ed25519 peer ids are 36
_FIXED_LEN = {SHA2_256: 32, BLAKE2B_512: 64}


def digest(code: int, data: bytes) -> bytes:
    """Compute the raw digest of `data` for a supported hash code."""
    if code == SHA2_256:
        return hashlib.sha256(data).digest()
    if code == IDENTITY:
        return bytes(data)
    if code == BLAKE2B_512:
        return hashlib.blake2b(data, digest_size=64).digest()
    raise ValueError(f"unsupported multihash code 0x{code:x}")


def wrap(code: int, raw_digest: bytes) -> bytes:
    """Build multihash bytes from a code and a raw digest."""
    if len(raw_digest) > MAX_DIGEST_LEN:
        raise ValueError("digest too long for a multihash")
    return varint.encode(code) + varint.encode(len(raw_digest)) + raw_digest


def compute(code: int, data: bytes) -> bytes:
    """Hash `data` and return the multihash bytes."""
    if code == SHA2_256:  # hot path: every block put and get
        return b"\x12\x20" + hashlib.sha256(data).digest()
    return wrap(code, digest(code, data))


def decode_from(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, bytes, int]:
    """Parse a multihash at `offset`; return (code, digest, end offset)."""
    code, i = varint.decode_from(data, offset)
    length, i = varint.decode_from(data, i)
    if length > MAX_DIGEST_LEN:
        raise DecodeError(f"multihash digest length {length} exceeds {MAX_DIGEST_LEN}")
    expected = _FIXED_LEN.get(code)
    if expected is not None and length != expected:
        raise DecodeError(f"multihash 0x{code:x} must have a {expected}-byte digest, not {length}")
    end = i + length
    if end > len(data):
        raise DecodeError("truncated multihash digest")
    return code, bytes(data[i:end]), end


def decode(mh: bytes) -> tuple[int, bytes]:
    """Parse exactly one multihash; return (code, digest)."""
    code, dig, end = decode_from(mh, 0)
    if end != len(mh):
        raise DecodeError("trailing bytes after multihash")
    return code, dig


def verify(mh: bytes, data: bytes) -> None:
    """Raise HashMismatch unless `data` hashes to the multihash `mh`."""
    code, dig = decode(mh)
    if code not in (SHA2_256, IDENTITY, BLAKE2B_512):
        raise DecodeError(f"unsupported multihash code 0x{code:x}")
    if digest(code, data) != dig:
        raise HashMismatch("data does not match its multihash")
