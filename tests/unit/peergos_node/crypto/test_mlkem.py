"""ML-KEM-1024 (FIPS 203), cross-checked against OpenSSL through `cryptography`."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM1024PrivateKey

from peergos_node.crypto import mlkem
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.errors import DecodeError

SEEDS = [DeterministicRng(f"mlkem-{i}").random_bytes(64) for i in range(4)]


@pytest.mark.parametrize("seed", SEEDS)
def test_keygen_matches_openssl_and_sizes(seed: bytes) -> None:
    ek, dk = mlkem.keygen(seed[:32], seed[32:])
    assert len(ek) == 1568 and len(dk) == 3168
    reference = MLKEM1024PrivateKey.from_seed_bytes(seed)
    assert reference.public_key().public_bytes_raw() == ek
    assert mlkem.encapsulation_key_of(dk) == ek
    assert dk.endswith(seed[32:])  # z is the last 32 bytes of the expanded key


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_each_side_decapsulates_what_the_other_encapsulated(seed: bytes) -> None:
    ek, dk = mlkem.keygen(seed[:32], seed[32:])
    reference = MLKEM1024PrivateKey.from_seed_bytes(seed)
    shared, ct = mlkem.encapsulate(ek, DeterministicRng(seed).random_bytes(32))
    assert len(ct) == 1568 and len(shared) == 32
    assert reference.decapsulate(ct) == shared
    theirs_shared, theirs_ct = reference.public_key().encapsulate()
    assert mlkem.decapsulate(dk, theirs_ct) == theirs_shared


def test_implicit_rejection_matches_openssl() -> None:
    seed = SEEDS[0]
    ek, dk = mlkem.keygen(seed[:32], seed[32:])
    reference = MLKEM1024PrivateKey.from_seed_bytes(seed)
    shared, ct = mlkem.encapsulate(ek, bytes(32))
    for position in (0, 700, 1567):
        tampered = bytearray(ct)
        tampered[position] ^= 0x04
        rejected = mlkem.decapsulate(dk, bytes(tampered))
        assert rejected != shared
        assert rejected == reference.decapsulate(bytes(tampered))


def test_encapsulation_is_deterministic_in_its_randomness() -> None:
    ek, _dk = mlkem.keygen(bytes(32), bytes(32))
    assert mlkem.encapsulate(ek, b"\x01" * 32) == mlkem.encapsulate(ek, b"\x01" * 32)
    assert mlkem.encapsulate(ek, b"\x01" * 32) != mlkem.encapsulate(ek, b"\x02" * 32)


def test_encapsulation_key_check() -> None:
    ek, _dk = mlkem.keygen(bytes(32), b"\x01" * 32)
    mlkem.check_encapsulation_key(ek)
    out_of_range = b"\xff\x0f" + ek[2:]  # first coefficient 0xfff >= q
    with pytest.raises(DecodeError):
        mlkem.check_encapsulation_key(out_of_range)
    with pytest.raises(DecodeError):
        mlkem.encapsulate(out_of_range, bytes(32))
    with pytest.raises(DecodeError):
        mlkem.check_encapsulation_key(ek[:-1])


def test_decapsulation_key_and_ciphertext_checks() -> None:
    ek, dk = mlkem.keygen(bytes(32), b"\x01" * 32)
    _shared, ct = mlkem.encapsulate(ek, bytes(32))
    broken = bytearray(dk)
    broken[3168 - 40] ^= 1  # inside the embedded H(ek)
    with pytest.raises(DecodeError):
        mlkem.decapsulate(bytes(broken), ct)
    with pytest.raises(DecodeError):
        mlkem.decapsulate(dk[:-1], ct)
    with pytest.raises(DecodeError):
        mlkem.decapsulate(dk, ct[:-1])


def test_seed_sizes_are_enforced() -> None:
    with pytest.raises(ValueError):
        mlkem.keygen(bytes(31), bytes(32))
    ek, _dk = mlkem.keygen(bytes(32), bytes(32))
    with pytest.raises(ValueError):
        mlkem.encapsulate(ek, bytes(16))
