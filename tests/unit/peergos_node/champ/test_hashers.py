"""Key hashers and map-key rules of Peergos' CHAMPs (spec §5.2, §18.8)."""

from __future__ import annotations

import hashlib

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from nabu_py.multiformats.multihash import wrap
from peergos_node.champ import (
    blake2b_hasher,
    identity_hasher,
    owned_key_from_map_key,
    owned_key_map_key,
    pki_key,
    secret_link_key,
    sha256_hasher,
)


def test_plain_hashers() -> None:
    assert identity_hasher(b"\x01\x02") == b"\x01\x02"
    assert blake2b_hasher(b"user1") == hashlib.blake2b(b"user1", digest_size=64).digest()
    assert len(blake2b_hasher(b"")) == 64
    assert sha256_hasher(b"name") == hashlib.sha256(b"name").digest()
    assert pki_key("user7") == b"user7"


def test_secret_link_key_is_sha256_of_the_little_endian_long() -> None:
    assert secret_link_key(1) == hashlib.sha256(b"\x01" + bytes(7)).digest()
    assert secret_link_key(0x01020304) == hashlib.sha256(bytes([4, 3, 2, 1, 0, 0, 0, 0])).digest()
    assert secret_link_key(-1) == hashlib.sha256(b"\xff" * 8).digest() == secret_link_key((1 << 64) - 1)
    for bad in (1 << 64, -(1 << 63) - 1):
        with pytest.raises(ValueError):
            secret_link_key(bad)


def test_owned_key_map_key_is_reversed_cbor_of_the_key_hash() -> None:
    pkh = Cid(1, CODEC_DAG_CBOR, wrap(0x00, bytes(range(36))))
    key = owned_key_map_key(pkh)
    assert key == dag_cbor.encode(pkh)[::-1]
    assert key[-2:] == b"\x2a\xd8"  # tag 42's head ends up last
    assert owned_key_from_map_key(key) == pkh
    for bad in (b"", dag_cbor.encode(5)[::-1], b"\xff\x00"):
        with pytest.raises(DecodeError):
            owned_key_from_map_key(bad)
