"""login.json: scrypt login derivation (UserUtil.generateUser), 64-byte and legacy 96-byte layouts.

Detected by cases carrying `username` and `scrypt_output_hex`. Checks the algorithm CBOR both ways,
the exact scrypt inputs (sha256 of the password, username + extra salt), the output, and every key
derived from it (login key pair, its CBOR and public key hash, root key, legacy boxing key).
"""

from __future__ import annotations

import hashlib
from typing import Any

from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.boxing import Curve25519PublicKey, Curve25519SecretKey
from peergos_node.crypto.login import SecretGenerationAlgorithm, login_keys_from_output, login_scrypt
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.vectors.checks._crypto_common import dict_cases, has_case_with, hexb
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "login"


def detect(doc: dict[str, Any]) -> bool:
    return has_case_with(doc, "username", "scrypt_output_hex")


def _algorithm(case: dict[str, Any]) -> SecretGenerationAlgorithm:
    a = case.get("algorithm")
    if not isinstance(a, dict) or a.get("type") != "Scrypt":
        raise CheckFailed("algorithm must be an object of type Scrypt")
    return SecretGenerationAlgorithm(
        memory_cost=int(a["memoryCost_log2N"]),
        cpu_cost=int(a["cpuCost_r"]),
        parallelism=int(a["parallelism_p"]),
        output_bytes=int(a["outputBytes"]),
        extra_salt=str(a["extraSalt"]),
    )


def _check_case(case: dict[str, Any]) -> None:
    username, password = str(case["username"]), str(case["password"])
    alg = _algorithm(case)
    expect_equal("extra salt", alg.extra_salt, case.get("extra_salt", alg.extra_salt))
    expect_equal("algorithm CBOR", alg.serialize(), hexb(case, "algorithm_cbor_hex"))
    decoded = SecretGenerationAlgorithm.deserialize(hexb(case, "algorithm_cbor_hex"))
    expect_equal("algorithm decoded", decoded, alg)
    pw_input = hashlib.sha256(password.encode("utf-8")).digest()
    expect_equal("scrypt password input", pw_input, hexb(case, "scrypt_password_input_hex"))
    salt_input = (username + alg.extra_salt).encode("utf-8")
    expect_equal("scrypt salt input", salt_input, hexb(case, "scrypt_salt_input_hex"))
    out = login_scrypt(username, password, alg)
    expect_equal("scrypt output", out, hexb(case, "scrypt_output_hex"))

    keys = login_keys_from_output(out)
    expect_equal("login seed", keys.signing.secret.seed, hexb(case, "login_signing_seed_hex"))
    expect_equal("login public key", keys.signing.public.key, hexb(case, "login_public_key_hex"))
    expect_equal("login secret key", keys.signing.secret.secret, hexb(case, "login_secret_key_hex"))
    pk_cbor = hexb(case, "login_public_signing_key_cbor_hex")
    expect_equal("login public key CBOR", keys.signing.public.serialize(), pk_cbor)
    pkh = PublicKeyHash.of(keys.signing.public)
    expected_hash = case["login_public_key_hash"]
    expect_equal("login key hash bytes", pkh.to_bytes(), hexb(expected_hash, "cid_bytes_hex"))
    expect_equal("login key hash string", str(pkh), expected_hash["string"])
    expect_equal("login key hash parsed", PublicKeyHash(Cid.parse(expected_hash["string"])), pkh)
    expect_equal("root key", keys.root_key.key, hexb(case, "root_key_hex"))
    expect_equal("root key CBOR", keys.root_key.serialize(), hexb(case, "root_key_cbor_hex"))
    if alg.generates_boxer_and_identity:
        if keys.boxing is None:
            raise CheckFailed("legacy derivation gave no boxing key")
        secret, public = keys.boxing.secret, keys.boxing.public
        if not isinstance(secret, Curve25519SecretKey) or not isinstance(public, Curve25519PublicKey):
            raise CheckFailed("legacy boxing keys are Curve25519")
        expect_equal("box secret key", secret.key, hexb(case, "box_secret_key_hex"))
        expect_equal("box public key", public.key, hexb(case, "box_public_key_hex"))
        expect_equal("box public key CBOR", public.serialize(), hexb(case, "box_public_key_cbor_hex"))
    elif keys.boxing is not None or "box_secret_key_hex" in case:
        raise CheckFailed("only the legacy 96-byte derivation yields a boxing key")


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    for i, case in enumerate(dict_cases(doc)):
        with report.case(str(case.get("username", f"case{i}"))):
            _check_case(case)
