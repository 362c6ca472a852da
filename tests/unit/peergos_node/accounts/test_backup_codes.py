"""Backup codes: generation exactly as Java, display form, normalisation, single-use redemption."""

from __future__ import annotations

import hashlib

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.accounts.backup_codes import (
    CODE_COUNT,
    BackupCodeHashes,
    BackupCodes,
    format_code,
    generate_code,
    hash_code,
    normalise,
)
from peergos_node.crypto.rng import DeterministicRng, ScriptedRng
from peergos_node.errors import AuthError, DecodeError


def test_code_from_random_bytes() -> None:
    assert generate_code(bytes(7)) == "aaaaaaaaaa"
    assert generate_code(b"foobar!") == "mzxw6ytboi"  # base32("foobar!") = MZXW6YTBOIQQ====
    with pytest.raises(ValueError):
        generate_code(bytes(6))


def test_generation_draw_order_and_duplicates() -> None:
    draws = [bytes(7), bytes(7)] + [bytes([i]) * 7 for i in range(1, 10)] + [b"\xcc" * 32]
    codes = BackupCodes.generate(ScriptedRng(draws))
    assert len(codes.codes) == CODE_COUNT == len(set(codes.codes))
    assert codes.codes[0] == "aaaaaaaaaa"  # the repeated draw was skipped
    assert codes.credential_id == b"\xcc" * 32
    assert all(len(c) == 10 for c in codes.codes)


def test_display_and_normalisation() -> None:
    assert format_code("a3f5b2xqz7") == "a3f5b-2xqz7"
    assert normalise("A3F5B-2XQZ7") == "a3f5b2xqz7"
    assert normalise(" a3f5b 2xqz7\n") == "a3f5b2xqz7"
    assert normalise("a1b0c8d9") == "abcd"  # 0, 1, 8, 9 are not base32
    assert hash_code("A3F5B-2XQZ7") == hashlib.sha256(b"a3f5b2xqz7").digest()


def test_codes_are_single_use() -> None:
    codes = BackupCodes.generate(DeterministicRng("backup"))
    stored = codes.hashes()
    assert stored.remaining_name == "10"
    first = codes.formatted()[0].upper()
    after = stored.redeem(first)
    assert after.remaining_name == "9"
    with pytest.raises(AuthError):
        after.redeem(codes.codes[0])  # spent
    with pytest.raises(AuthError):
        stored.redeem("not a code")
    remaining = after
    for code in codes.codes[1:]:
        remaining = remaining.redeem(code)
    assert remaining.remaining_name == "0" and remaining.hashes == ()


def test_cbor_forms() -> None:
    codes = BackupCodes(b"\x01" * 32, ("aaaaaaaaaa", "bbbbbbbbbb"))
    assert codes.to_cbor() == {"i": b"\x01" * 32, "c": ["aaaaaaaaaa", "bbbbbbbbbb"]}
    assert BackupCodes.deserialize(codes.serialize()) == codes
    stored = codes.hashes()
    assert stored.to_cbor() == {"h": [hash_code("aaaaaaaaaa"), hash_code("bbbbbbbbbb")]}
    assert BackupCodeHashes.deserialize(stored.serialize()) == stored
    with pytest.raises(DecodeError):
        BackupCodeHashes.deserialize(dag_cbor.encode({"h": [b"short"]}))
    with pytest.raises(DecodeError):
        BackupCodes.deserialize(dag_cbor.encode({"i": b"", "c": [1]}))
