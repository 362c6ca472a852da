"""cbor.json cases for keys, BATs, cipher texts and capabilities (handlers for `checks.cbor`).

Every handler encodes from the inputs and compares with the reference bytes, then decodes the
reference bytes and compares with the object (and, where it applies, text forms, derived ids,
decryption and signatures).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from nabu_py.codec import dag_cbor
from peergos_node.crypto.bat import (
    Bat,
    BatId,
    BatWithId,
    create_raw_block_prefix,
    parse_raw_block_prefix,
    remove_raw_block_prefix,
)
from peergos_node.crypto.boxing import (
    BoxingKeyPair,
    Curve25519SecretKey,
    deserialize_public_boxing_key,
    public_boxing_key_from_cbor,
)
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey, SigningKeyPair
from peergos_node.crypto.symmetric import CipherText, PaddedCipherText, SymmetricKey, SymmetricLink
from peergos_node.cryptree.capabilities import (
    AbsoluteCapability,
    WritableAbsoluteCapability,
    capability_from_cbor,
)
from peergos_node.vectors.checks._crypto_common import hexb, named_key_hash, named_keypair
from peergos_node.vectors.runner import CheckFailed, Context, expect_equal

Case = dict[str, Any]


def _inputs(case: Case) -> dict[str, Any]:
    value = case.get("inputs")
    if not isinstance(value, dict):
        raise CheckFailed("case has no inputs")
    return value


def _symmetric_key(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    key = SymmetricKey(hexb(inputs, "key_hex"), bool(inputs["isDirty"]))
    expect_equal("CBOR", key.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", SymmetricKey.deserialize(hexb(case, "cbor_hex")), key)


def _public_signing_key(case: Case, _doc: Case, ctx: Context) -> None:
    pair = named_keypair(ctx, _inputs(case)["keypair"])
    expect_equal("CBOR", pair.public.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", PublicSigningKey.deserialize(hexb(case, "cbor_hex")), pair.public)


def _secret_signing_key(case: Case, _doc: Case, ctx: Context) -> None:
    pair = named_keypair(ctx, _inputs(case)["keypair"])
    expect_equal("CBOR", pair.secret.serialize(), hexb(case, "cbor_hex"))
    decoded = SecretSigningKey.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, pair.secret)
    expect_equal("public half", decoded.public_key(), pair.public)


def _signing_key_pair(case: Case, _doc: Case, ctx: Context) -> None:
    pair = named_keypair(ctx, _inputs(case)["keypair"])
    expect_equal("CBOR", pair.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", SigningKeyPair.deserialize(hexb(case, "cbor_hex")), pair)
    expect_equal("string", pair.to_string(), case["string"])
    parsed = SigningKeyPair.from_string(case["string"])
    expect_equal("parsed string", parsed, pair)
    expect_equal("signs", parsed.public.unsign(parsed.sign(b"vector")), b"vector")


def _signer(case: Case, _doc: Case, ctx: Context) -> None:
    pair = named_keypair(ctx, _inputs(case)["keypair"])
    signer = SigningPrivateKeyAndPublicHash.of(pair)
    expect_equal("CBOR", signer.serialize(), hexb(case, "cbor_hex"))
    decoded = SigningPrivateKeyAndPublicHash.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, signer)
    expect_equal("hash names the signer's key", decoded.public_key_hash.inlined_signing_key(), pair.public)


def _check_key_hash(case: Case, key_hash: PublicKeyHash) -> None:
    expect_equal("CID bytes", key_hash.to_bytes(), hexb(case, "cid_bytes_hex"))
    expect_equal("string", str(key_hash), case["string"])
    expect_equal("CBOR", key_hash.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", PublicKeyHash.deserialize(hexb(case, "cbor_hex")), key_hash)
    expect_equal("parsed", PublicKeyHash.parse(case["string"]), key_hash)
    expect_equal("identity CID", key_hash.is_identity, True)


def _public_key_hash(case: Case, _doc: Case, ctx: Context) -> None:
    inputs = _inputs(case)
    pair = named_keypair(ctx, inputs["keypair"])
    expect_equal("key CBOR", pair.public.serialize(), hexb(inputs, "public_signing_key_cbor_hex"))
    key_hash = PublicKeyHash.of(pair.public)
    _check_key_hash(case, key_hash)
    expect_equal("inlined key", key_hash.inlined_signing_key(), pair.public)


def _public_key_hash_boxer(case: Case, _doc: Case, _ctx: Context) -> None:
    key_cbor = hexb(_inputs(case), "public_boxing_key_cbor_hex")
    key = deserialize_public_boxing_key(key_cbor)
    key_hash = PublicKeyHash.of(key)
    _check_key_hash(case, key_hash)
    expect_equal("inlined key", key_hash.inlined_key_cbor(), key_cbor)


def _public_boxing_key(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    public = Curve25519SecretKey(hexb(inputs, "secret_key_hex")).public_key()
    expect_equal("public key", public.key, hexb(inputs, "public_key_hex"))
    expect_equal("CBOR", public.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", public_boxing_key_from_cbor(dag_cbor.decode(hexb(case, "cbor_hex"))), public)


def _boxing_key_pair(case: Case, _doc: Case, _ctx: Context) -> None:
    pair = BoxingKeyPair.from_secret(Curve25519SecretKey(hexb(_inputs(case), "secret_key_hex")))
    expect_equal("CBOR", pair.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", BoxingKeyPair.deserialize(hexb(case, "cbor_hex")), pair)


def _bat(case: Case, _doc: Case, _ctx: Context) -> None:
    bat = Bat(hexb(_inputs(case), "secret_hex"))
    expect_equal("CBOR", bat.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", Bat.deserialize(hexb(case, "cbor_hex")), bat)
    expect_equal("encoded secret", bat.encode_secret(), case["encoded_secret"])
    expect_equal("parsed secret", Bat.from_string(case["encoded_secret"]), bat)


def _bat_id(derive: Callable[[Bat], BatId]) -> Callable[[Case, Case, Context], None]:
    def handler(case: Case, _doc: Case, _ctx: Context) -> None:
        inputs = _inputs(case)
        bat = Bat(hexb(inputs, "secret_hex"))
        if "bat_cbor_hex" in inputs:
            expect_equal("Bat CBOR", bat.serialize(), hexb(inputs, "bat_cbor_hex"))
        bat_id = derive(bat)
        expect_equal("CID bytes", bat_id.to_bytes(), hexb(case, "cid_bytes_hex"))
        expect_equal("string", str(bat_id), case["string"])
        expect_equal("CBOR", bat_id.serialize(), hexb(case, "cbor_hex"))
        expect_equal("decoded", BatId.deserialize(hexb(case, "cbor_hex")), bat_id)
        expect_equal("matches its BAT", bat_id.matches(bat), True)
        expect_equal("inline BAT", bat_id.inline_bat(), bat if bat_id.is_inline else None)

    return handler


_BAT_ID_BY_NAME: dict[str, Callable[[Bat], BatId]] = {
    "BatId_inline": BatId.inline,
    "BatId_sha256": BatId.sha256,
    "BatId_calculateId": Bat.calculate_id,
}


def _bat_with_id(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    bat = Bat(hexb(inputs, "secret_hex"))
    derive = _BAT_ID_BY_NAME.get(str(inputs["id"]))
    if derive is None:
        raise CheckFailed(f"unknown id derivation {inputs['id']!r}")
    bat_with_id = BatWithId(bat, derive(bat))
    expect_equal("CBOR", bat_with_id.serialize(), hexb(case, "cbor_hex"))
    expect_equal("decoded", BatWithId.deserialize(hexb(case, "cbor_hex")), bat_with_id)
    expect_equal("encoded", bat_with_id.encode(), case["encoded"])
    expect_equal("parsed", BatWithId.decode(case["encoded"]), bat_with_id)


_HEX_TAIL = re.compile(r"([0-9a-f]{68,})\s*$")


def _raw_block_prefix(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    inline = Bat(hexb(inputs, "inline_bat_secret_hex"))
    mirror: BatId | None = None
    if "mirror_bat_secret_hex" in inputs:
        mirror = BatId.sha256(Bat(hexb(inputs, "mirror_bat_secret_hex")))
        described = _HEX_TAIL.search(str(inputs.get("mirror_bat_id", "")))
        if described is not None:
            expect_equal("mirror BatId", mirror.to_bytes(), bytes.fromhex(described.group(1)))
    prefix = create_raw_block_prefix(inline, mirror)
    expect_equal("prefix", prefix, hexb(case, "prefix_hex"))
    if "magic_hex" in case:
        expect_equal("magic", prefix[:8], hexb(case, "magic_hex"))
    payload = b"fragment payload"
    ids, offset = parse_raw_block_prefix(hexb(case, "prefix_hex") + payload)
    expect_equal("parsed ids", ids, [BatId.inline(inline)] + ([mirror] if mirror is not None else []))
    expect_equal("payload offset", offset, len(prefix))
    expect_equal("payload", remove_raw_block_prefix(prefix + payload), payload)


def _capability(writable: bool) -> Callable[[Case, Case, Context], None]:
    def handler(case: Case, _doc: Case, ctx: Context) -> None:
        inputs = _inputs(case)
        with_bat = not str(case.get("name", "")).endswith("_no_bat")
        bat = Bat(hexb(inputs, "bat_secret_hex")) if with_bat else None
        cap = AbsoluteCapability(
            named_key_hash(ctx, "identity"),
            named_key_hash(ctx, "writer"),
            hexb(inputs, "map_key_hex"),
            bat,
            SymmetricKey(hexb(inputs, "read_base_key_hex")),
        )
        if writable:
            cap = cap.with_write_key(SymmetricKey(hexb(inputs, "write_base_key_hex")))
        expect_equal("CBOR", cap.serialize(), hexb(case, "cbor_hex"))
        decoded = capability_from_cbor(dag_cbor.decode(hexb(case, "cbor_hex")))
        expect_equal("decoded", decoded, cap)
        want_type = WritableAbsoluteCapability if writable else AbsoluteCapability
        expect_equal("decoded type", type(decoded), want_type)
        expect_equal("link", cap.to_link(), case["link"])
        expect_equal("parsed link", AbsoluteCapability.from_link(case["link"]), cap)

    return handler


def _symmetric_link(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    source, target = SymmetricKey(hexb(inputs, "from_key_hex")), SymmetricKey(hexb(inputs, "to_key_hex"))
    link = SymmetricLink.from_pair(source, target, ScriptedRng([hexb(inputs, "nonce_hex")]))
    expect_equal("CBOR", link.serialize(), hexb(case, "cbor_hex"))
    decoded = SymmetricLink.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, link)
    expect_equal("target key", decoded.target(source), target)


def _cipher_text(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    key, plaintext = SymmetricKey(hexb(inputs, "key_hex")), hexb(inputs, "plaintext_cbor_hex")
    ct = CipherText.encrypt(key, plaintext, ScriptedRng([hexb(inputs, "nonce_hex")]))
    expect_equal("CBOR", ct.serialize(), hexb(case, "cbor_hex"))
    decoded = CipherText.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, ct)
    expect_equal("plaintext", dag_cbor.encode(decoded.decrypt(key)), plaintext)


def _padded_cipher_text(case: Case, _doc: Case, _ctx: Context) -> None:
    inputs = _inputs(case)
    key, plaintext = SymmetricKey(hexb(inputs, "key_hex")), hexb(inputs, "plaintext_cbor_hex")
    block = int(inputs["padding_block"])
    ct = PaddedCipherText.encrypt(key, plaintext, block, ScriptedRng([hexb(inputs, "nonce_hex")]))
    expect_equal("CBOR", ct.serialize(), hexb(case, "cbor_hex"))
    decoded = PaddedCipherText.deserialize(hexb(case, "cbor_hex"))
    expect_equal("decoded", decoded, ct)
    padded = decoded.decrypt_bytes(key)
    expect_equal("padded length", len(padded), -(-len(plaintext) // block) * block)
    expect_equal("plaintext", dag_cbor.encode(decoded.decrypt(key)), plaintext)


CASES: dict[str, Callable[[Case, Case, Context], None]] = {
    "SymmetricKey": _symmetric_key,
    "SymmetricKey_dirty": _symmetric_key,
    "PublicSigningKey": _public_signing_key,
    "SecretSigningKey": _secret_signing_key,
    "SigningKeyPair": _signing_key_pair,
    "SigningPrivateKeyAndPublicHash": _signer,
    "PublicKeyHash": _public_key_hash,
    "PublicKeyHash_boxer": _public_key_hash_boxer,
    "PublicBoxingKey": _public_boxing_key,
    "BoxingKeyPair": _boxing_key_pair,
    "Bat": _bat,
    **{name: _bat_id(derive) for name, derive in _BAT_ID_BY_NAME.items()},
    "BatWithId": _bat_with_id,
    "RawBlockPrefix_no_mirror": _raw_block_prefix,
    "RawBlockPrefix_with_mirror": _raw_block_prefix,
    "AbsoluteCapability": _capability(writable=False),
    "AbsoluteCapability_no_bat": _capability(writable=False),
    "WritableAbsoluteCapability": _capability(writable=True),
    "SymmetricLink": _symmetric_link,
    "CipherText": _cipher_text,
    "PaddedCipherText_16": _padded_cipher_text,
    "PaddedCipherText_4096": _padded_cipher_text,
}

__all__ = ["CASES"]
