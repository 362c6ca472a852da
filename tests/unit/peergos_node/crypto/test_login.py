"""scrypt login derivation and SecretGenerationAlgorithm."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.crypto.boxing import Curve25519SecretKey
from peergos_node.crypto.login import (
    SecretGenerationAlgorithm,
    derive_link_key,
    derive_login_keys,
    login_keys_from_output,
    login_scrypt,
    scrypt,
)
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import DecodeError


def test_scrypt_rfc7914_vector() -> None:
    out = scrypt(b"password", b"NaCl", 10, 8, 16, 64)
    assert out.hex() == (
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
    )


def test_algorithm_defaults_and_cbor() -> None:
    alg = SecretGenerationAlgorithm.default(ScriptedRng([bytes(range(32))]))
    assert (alg.memory_cost, alg.cpu_cost, alg.parallelism, alg.output_bytes) == (17, 8, 1, 64)
    assert alg.extra_salt == bytes(range(32)).hex()
    assert dag_cbor.decode(alg.serialize()) == {
        "type": 1,
        "m": 17,
        "c": 8,
        "p": 1,
        "o": 64,
        "s": alg.extra_salt,
    }
    assert SecretGenerationAlgorithm.deserialize(alg.serialize()) == alg
    legacy = SecretGenerationAlgorithm.legacy(ScriptedRng([bytes(32)]))
    assert legacy.generates_boxer_and_identity and not alg.generates_boxer_and_identity
    assert legacy.without_boxer_or_identity() == SecretGenerationAlgorithm(extra_salt=bytes(32).hex())
    renewed = alg.with_new_salt(ScriptedRng([b"\xff" * 32]))
    assert renewed.extra_salt == "ff" * 32 and renewed.memory_cost == alg.memory_cost


def test_missing_salt_decodes_as_empty() -> None:
    value = {"type": 1, "m": 17, "c": 8, "p": 1, "o": 64}
    assert SecretGenerationAlgorithm.from_cbor(value).extra_salt == ""


@pytest.mark.parametrize(
    "value",
    [
        {"type": 0},
        {"type": 1, "m": 16, "c": 8, "p": 1, "o": 64, "s": ""},
        {"type": 1, "m": 40, "c": 8, "p": 1, "o": 64, "s": ""},
        {"type": 1, "m": 22, "c": 64, "p": 1, "o": 64, "s": ""},
        {"type": 1, "m": 17, "c": 0, "p": 1, "o": 64, "s": ""},
        {"type": 1, "m": 17, "c": 8, "p": 1, "o": 32, "s": ""},
        {"type": 1, "m": 17, "c": 8, "p": 1, "s": ""},
        {"type": 1, "m": 17, "c": 8, "p": 1, "o": 64, "s": 5},
        [1, 17],
    ],
)
def test_algorithm_rejects_bad_or_dangerous_parameters(value: object) -> None:
    with pytest.raises(DecodeError):
        SecretGenerationAlgorithm.from_cbor(value)


def test_password_must_differ_from_username() -> None:
    with pytest.raises(ValueError):
        login_scrypt("alice", "alice", SecretGenerationAlgorithm())


def test_output_layouts() -> None:
    out64 = bytes(range(64))
    keys = login_keys_from_output(out64)
    assert keys.signing == SigningKeyPair.from_seed(out64[:32])
    assert keys.root_key.key == out64[32:] and not keys.root_key.dirty
    assert keys.boxing is None
    out96 = bytes(range(96))
    legacy = login_keys_from_output(out96)
    assert legacy.root_key.key == out96[64:]
    assert legacy.boxing is not None and legacy.boxing.secret == Curve25519SecretKey(out96[32:64])
    with pytest.raises(ValueError):
        login_keys_from_output(bytes(32))


def test_derivation_is_deterministic_and_salted() -> None:
    alg = SecretGenerationAlgorithm(extra_salt="ab")
    keys = derive_login_keys("dave", "a password", alg)
    assert keys == derive_login_keys("dave", "a password", alg)
    assert keys.root_key != derive_login_keys("dave", "a password", SecretGenerationAlgorithm()).root_key


def test_link_key_derivation() -> None:
    key = derive_link_key(12345, "abcDEF123456")
    assert key == derive_link_key(12345, "abcDEF", "123456")  # link + user password are concatenated
    assert key != derive_link_key(12346, "abcDEF123456")
    with pytest.raises(ValueError):
        derive_link_key(0, "x")
