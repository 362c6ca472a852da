"""The Kademlia keyspace (Kademlia paper §2.1; libp2p kad-dht spec "Distance"; spec/nabu.md §3.2).

Every position in the keyspace is a 256-bit integer: `sha256(bytes)` read big-endian. A peer sits at
sha256(peer id multihash bytes) (Nabu used the raw multihash: bug §10.1, not copied); a record sits at
sha256(routing key), e.g. `/ipns/<multihash>`; a provider record at sha256(multihash bytes) (never the
CID bytes: Nabu bug §10.2). Distance is XOR of the two integers, so "closer" is plain integer
comparison of `a ^ target`, and the k-bucket of a peer is the length of the common prefix of its key
with ours, `256 - (a ^ b).bit_length()`, one int operation.

`kad_key` is memoised in a bounded LRU (C implementation) because the same peer ids come back in
reply after reply; the cache holds at most `KEY_CACHE_SIZE` entries.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

KEY_BITS = 256
KEY_CACHE_SIZE = 1 << 16
_sha256 = hashlib.sha256


@lru_cache(maxsize=KEY_CACHE_SIZE)
def kad_key(data: bytes) -> int:
    """Keyspace position of a peer id or routing key: sha256(data) as a 256-bit integer."""
    return int.from_bytes(_sha256(data).digest(), "big")


def distance(a: int, b: int) -> int:
    """XOR distance between two keys."""
    return a ^ b


def common_prefix_length(a: int, b: int) -> int:
    """Leading bits two keys share (256 when equal): the bucket of one key seen from the other."""
    return KEY_BITS - (a ^ b).bit_length()


MAX_REFRESH_CPL = 15
"""Deepest bucket a refresh targets: finding a key for common prefix length c takes ~2**(c+1) hashes."""


def random_peer_id_in_bucket(local: int, cpl: int, rng: random.Random) -> bytes:
    """A random sha2-256-shaped peer id whose key shares exactly `cpl` leading bits with `local`.

    FIND_NODE keys are peer ids, so a bucket refresh (libp2p kad-dht spec "Bootstrap process") needs
    a peer id, not a raw keyspace position; it is found by rejection sampling, hence the bound.
    """
    if not 0 <= cpl <= MAX_REFRESH_CPL:
        raise ValueError(f"refresh prefix length must be in 0..{MAX_REFRESH_CPL}, not {cpl}")
    shift = KEY_BITS - cpl - 1
    want = (local >> shift) ^ 1
    while True:  # expected 2**(cpl+1) <= 65536 iterations
        candidate = b"\x12\x20" + rng.randbytes(32)
        if int.from_bytes(_sha256(candidate).digest(), "big") >> shift == want:
            return candidate


def key_to_bytes(key: int) -> bytes:
    """The 32-byte big-endian form of a key."""
    return key.to_bytes(32, "big")
