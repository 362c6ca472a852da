"""Hash helpers, cross-checked against independent implementations."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from peergos_node.crypto.hashes import constant_time_equal, hkdf_sha256_peergos, hmac_sha256, sha256


def test_sha256_known_answer() -> None:
    assert sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hmac_sha256_rfc4231_case_2() -> None:
    mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_peergos_hkdf_is_rfc5869_hkdf_with_zero_salt_and_info_peergos() -> None:
    for ikm in (b"", b"\x01" * 64, bytes(range(256))):
        reference = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32), info=b"peergos").derive(ikm)
        assert hkdf_sha256_peergos(ikm) == reference


def test_constant_time_equal() -> None:
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"ab")
