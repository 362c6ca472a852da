"""Keyspace: sha256 positions, XOR distance, bucket index, refresh ids."""

from __future__ import annotations

import hashlib
import random

import pytest

from nabu_py.protocols.kademlia import keys
from tests.helpers.kad import peer_id


def test_key_is_sha256_of_the_peer_id_bytes_not_the_raw_multihash() -> None:
    pid = peer_id(1)
    assert keys.kad_key(pid) == int.from_bytes(hashlib.sha256(pid).digest(), "big")
    assert keys.kad_key(pid) != int.from_bytes(pid[:32], "big")  # Nabu's bug (spec/nabu.md §10.1)
    assert keys.key_to_bytes(keys.kad_key(pid)) == hashlib.sha256(pid).digest()


def test_distance_and_prefix() -> None:
    a = 0b1011 << 252
    b = 0b1001 << 252
    assert keys.distance(a, b) == 0b0010 << 252
    assert keys.common_prefix_length(a, b) == 2
    assert keys.common_prefix_length(a, a) == 256
    assert keys.common_prefix_length(0, 1 << 255) == 0


@pytest.mark.parametrize("cpl", [0, 1, 5, 10])
def test_random_peer_id_in_bucket(cpl: int) -> None:
    rng = random.Random(cpl)
    local = keys.kad_key(peer_id(7))
    for _ in range(3):
        pid = keys.random_peer_id_in_bucket(local, cpl, rng)
        assert pid[:2] == b"\x12\x20" and len(pid) == 34
        assert keys.common_prefix_length(keys.kad_key(pid), local) == cpl


def test_random_peer_id_bounds() -> None:
    with pytest.raises(ValueError):
        keys.random_peer_id_in_bucket(0, keys.MAX_REFRESH_CPL + 1, random.Random(1))
