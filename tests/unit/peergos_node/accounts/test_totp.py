"""TOTP: RFC 4226 / RFC 6238 vectors, Java's 6-digit 30 s codes with one step of grace, key encoding."""

from __future__ import annotations

import pytest

from peergos_node.accounts.totp import (
    TotpKey,
    b32decode_unpadded,
    b32encode_unpadded,
    hotp,
    totp,
    verify_totp,
)
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.errors import DecodeError

RFC_KEY = b"12345678901234567890"


def test_rfc4226_hotp_vectors() -> None:
    expected = [
        "755224",
        "287082",
        "359152",
        "969429",
        "338314",
        "254676",
        "287922",
        "162583",
        "399871",
        "520489",
    ]
    assert [hotp(RFC_KEY, c) for c in range(10)] == expected


@pytest.mark.parametrize(
    ("seconds", "code8"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_sha1_vectors(seconds: int, code8: str) -> None:
    assert totp(RFC_KEY, seconds * 1000, digits=8) == code8
    assert totp(RFC_KEY, seconds * 1000) == code8[-6:]  # Peergos uses 6 digits


def test_current_or_previous_step_only() -> None:
    key = TotpKey.generate(DeterministicRng("totp")).key
    now = 1_777_593_615_000  # 15 s into a step
    assert verify_totp(key, totp(key, now), now)
    assert verify_totp(key, totp(key, now - 30_000), now)
    assert not verify_totp(key, totp(key, now - 60_000), now)
    assert not verify_totp(key, totp(key, now + 30_000), now)
    assert verify_totp(key, totp(key, now), now + 14_999)  # same step
    assert verify_totp(key, totp(key, now), now + 44_999)  # next step: now previous
    assert not verify_totp(key, totp(key, now), now + 45_000)
    for bad in ("", "12345", "1234567", "١٢٣٤٥٦", "abcdef"):
        assert not verify_totp(key, bad, now)


def test_key_generation_order_and_encoding() -> None:
    key, cred = bytes(range(32)), bytes(range(100, 132))
    k = TotpKey.generate(ScriptedRng([key, cred]))
    assert (k.key, k.credential_id) == (key, cred)
    encoded = k.encode()
    cred_b32, key_b32 = encoded.split(":")
    assert "=" not in encoded and encoded.upper() == encoded
    assert b32decode_unpadded(key_b32) == key and b32decode_unpadded(cred_b32) == cred
    assert TotpKey.from_string(encoded) == k
    assert TotpKey.from_string(encoded.lower()) == k
    assert b32encode_unpadded(b"foobar") == "MZXW6YTBOI"  # RFC 4648 test vector, padding removed


def test_otpauth_uri() -> None:
    k = TotpKey(b"\x00" * 32, b"foobar")
    assert k.otpauth_uri("alice") == "otpauth://totp/peergos:alice@peergos?secret=MZXW6YTBOI&issuer=peergos"


@pytest.mark.parametrize(
    "text", ["", "ABC", "A:B:C", ":AAAA", "AAAA:", "AA1A:AAAA", "AAAA:AA A", "É:AAAA", "A" * 600 + ":A"]
)
def test_bad_key_strings(text: str) -> None:
    with pytest.raises(DecodeError):
        TotpKey.from_string(text)


def test_code_helpers() -> None:
    k = TotpKey.generate(DeterministicRng("helpers"))
    now = 1_700_000_000_000
    assert k.code(now) == totp(k.key, now) and k.verify(k.code(now), now)
    assert len(k.code(now)) == 6 and k.code(now).isdigit()
