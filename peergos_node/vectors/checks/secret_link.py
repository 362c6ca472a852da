"""secret_link.json: secret-link keys, EncryptedCapability, SecretLinkTarget and link strings.

Detected by cases carrying `link_key_hex` and `encrypted_capability_cbor_hex` (or a `create` section).
Each case checks the scrypt inputs and link key, encrypts the capability with the recorded nonce and
compares CBOR both ways, opens it again, and round-trips the link string. `create` replays the recorded
random draws through `SecretLink.create` and requires every draw to be consumed in order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from nabu_py.codec import dag_cbor
from peergos_node.crypto.login import derive_link_key
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.cryptree.capabilities import capability_from_cbor
from peergos_node.cryptree.secret_link import EncryptedCapability, SecretLink, SecretLinkTarget
from peergos_node.errors import BadCiphertext
from peergos_node.vectors.checks._crypto_common import dict_cases, has_case_with, hexb
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "secret_link"


def detect(doc: dict[str, Any]) -> bool:
    return has_case_with(doc, "link_key_hex", "encrypted_capability_cbor_hex") or (
        isinstance(doc.get("create"), dict) and "random_draws_hex_in_order" in doc["create"]
    )


def _owner(ctx: Context, link: str) -> PublicKeyHash:
    """The owner named in the link, cross-checked against cbor.json's identity key when present."""
    owner = SecretLink.from_link(link).owner
    identity = ctx.keypair("identity")
    if identity is not None:
        expected = bytes.fromhex(identity["public_key_hash"]["cid_bytes_hex"])
        expect_equal("owner is the identity key hash", owner.to_bytes(), expected)
    return owner


def _expiry(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC).timestamp())


def _check_case(case: dict[str, Any], ctx: Context) -> None:
    inputs, params = case["inputs"], case["scrypt"]
    label, link_password = int(inputs["label"]), str(inputs["link_password"])
    user_password = str(inputs.get("user_password") or "")
    expect_equal("salt", str(label), params["salt_utf8"])
    pw_input = hashlib.sha256((link_password + user_password).encode("utf-8")).digest()
    expect_equal("scrypt password input", pw_input, hexb(params, "password_input_hex"))
    scrypt_params = (params["log2N"], params["r"], params["p"], params["output_bytes"])
    expect_equal("scrypt parameters", scrypt_params, (15, 8, 1, 32))
    key = derive_link_key(label, link_password, user_password)
    expect_equal("link key", key.key, hexb(case, "link_key_hex"))

    cap = capability_from_cbor(dag_cbor.decode(hexb(inputs, "capability_cbor_hex")))
    expect_equal("capability CBOR", cap.serialize(), hexb(inputs, "capability_cbor_hex"))
    rng = ScriptedRng([hexb(inputs, "nonce_hex")])
    encrypted = EncryptedCapability.create(cap, label, link_password, user_password, rng)
    ec_cbor = hexb(case, "encrypted_capability_cbor_hex")
    expect_equal("EncryptedCapability CBOR", encrypted.serialize(), ec_cbor)
    decoded = EncryptedCapability.deserialize(ec_cbor)
    expect_equal("EncryptedCapability decoded", decoded, encrypted)
    expect_equal("opened capability", decoded.decrypt_with_key(key), cap)
    try:
        decoded.decrypt_with_key(derive_link_key(label, link_password + "x", user_password))
    except BadCiphertext:
        pass
    else:
        raise CheckFailed("a wrong link password opened the capability")

    target = SecretLinkTarget(encrypted, _expiry(inputs.get("expiry")), inputs.get("max_retrievals"))
    target_cbor = hexb(case, "secret_link_target_cbor_hex")
    expect_equal("SecretLinkTarget CBOR", target.serialize(), target_cbor)
    expect_equal("SecretLinkTarget decoded", SecretLinkTarget.deserialize(target_cbor), target)

    owner = _owner(ctx, case["link"])
    link = SecretLink(owner, label, link_password)
    expect_equal("link", link.to_link(), case["link"])
    expect_equal("link parsed", SecretLink.from_link(case["link"]), link)


def _check_create(create: dict[str, Any], ctx: Context) -> None:
    owner = _owner(ctx, create["link"])
    rng = ScriptedRng(bytes.fromhex(d) for d in create["random_draws_hex_in_order"])
    link = SecretLink.create(owner, rng)
    expect_equal("label", link.label, int(create["label"]))
    expect_equal("link password", link.link_password, create["link_password"])
    expect_equal("link", link.to_link(), create["link"])
    expect_equal("unused random draws", rng.remaining, 0)


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    for i, case in enumerate(dict_cases(doc)):
        with report.case(f"case{i} label={case.get('inputs', {}).get('label')}"):
            _check_case(case, ctx)
    create = doc.get("create")
    if isinstance(create, dict):
        with report.case("create"):
            _check_create(create, ctx)
