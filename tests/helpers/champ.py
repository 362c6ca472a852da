"""Shared fixtures for CHAMP tests: a key pool that reaches every tree shape, values, and dict models.

The pool is built for the identity hasher: random 32-byte keys (shallow trees), keys sharing 4 bytes
(chains of nodes), keys sharing 11 bytes that only split at depth 29-31 (the deepest legal nodes), keys
sharing all 12 bytes = 96 hash bits (5 of them are a "Hash collision!"), and short keys whose missing hash
bytes read as zero (the empty key, 0x00, 0x0000, ... all collide).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.champ import KeyHasher, identity_hasher

_rng = random.Random(0xC4A3)

RANDOM_KEYS = [_rng.randbytes(32) for _ in range(16)]
_p4 = _rng.randbytes(4)
SHARED4_KEYS = [_p4 + _rng.randbytes(28) for _ in range(10)]
_p11 = _rng.randbytes(11)
DEEP_KEYS = [_p11 + bytes([b]) + _rng.randbytes(20) for b in (0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0x01)]
_p12 = _rng.randbytes(12)
COLLIDING_KEYS = [_p12 + _rng.randbytes(20) for _ in range(6)]
SHORT_KEYS = [b"", b"\x00", b"\x00\x00", b"\x00\x00\x00", b"\x00" * 4, b"\x01", b"\x08\x00"]

KEY_POOL: list[bytes] = RANDOM_KEYS + SHARED4_KEYS + DEEP_KEYS + COLLIDING_KEYS + SHORT_KEYS
SAFE_KEY_POOL: list[bytes] = RANDOM_KEYS + SHARED4_KEYS + DEEP_KEYS + COLLIDING_KEYS[:4] + SHORT_KEYS[:4]
"""Keys that can all be in one identity-hashed tree (no 5 share 96 bits)."""

VALUES: list[Any] = [Cid.for_block(CODEC_DAG_CBOR, f"champ-test-value/{i}".encode()) for i in range(5)] + [
    Cid.for_block(CODEC_RAW, b"raw"),
    7,
    b"inline value",
    [1, "two", {"three": None}],
]

_MASK96 = (1 << 96) - 1


def collides(keys: Iterable[bytes], hasher: KeyHasher = identity_hasher) -> bool:
    """True when more than 4 keys share all 96 hash bits a tree can use (a put must fail)."""
    counts = Counter(int.from_bytes(hasher(k), "little") & _MASK96 for k in keys)
    return any(n > 4 for n in counts.values())


def dict_diff(a: Mapping[bytes, Any], b: Mapping[bytes, Any]) -> dict[bytes, tuple[Any, Any]]:
    """key -> (old, new) for every key whose value differs (None = absent)."""
    out: dict[bytes, tuple[Any, Any]] = {}
    for key in a.keys() | b.keys():
        old, new = a.get(key), b.get(key)
        if old != new or type(old) is not type(new):
            out[key] = (old, new)
    return out
