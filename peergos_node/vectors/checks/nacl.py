"""nacl.json: secretbox, Curve25519 box, Ed25519 sign and key generation in Peergos layouts.

Detected by its sections (`secretbox`, `box`, `sign`, `keygen`: lists of objects). Each case checks
both directions: our output equals the reference, the reference opens/verifies, and a one-bit change
is rejected.
"""

from __future__ import annotations

from typing import Any

from peergos_node.crypto.boxing import Curve25519PublicKey, Curve25519SecretKey
from peergos_node.crypto.rng import ScriptedRng
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey, SigningKeyPair
from peergos_node.crypto.symmetric import secretbox_decrypt, secretbox_encrypt
from peergos_node.errors import BadCiphertext, BadSignature
from peergos_node.vectors.checks._crypto_common import dict_cases, hexb
from peergos_node.vectors.runner import CheckFailed, Context, FileReport, expect_equal

NAME = "nacl"
SECTIONS = ("secretbox", "box", "sign", "keygen")


def detect(doc: dict[str, Any]) -> bool:
    return "cases" not in doc and any(dict_cases(doc, s) for s in SECTIONS)


def _flip(data: bytes, index: int = 0) -> bytes:
    out = bytearray(data)
    out[index % len(out)] ^= 1
    return bytes(out)


def _secretbox(case: dict[str, Any]) -> None:
    key, nonce, msg, out = (hexb(case, k) for k in ("key_hex", "nonce_hex", "message_hex", "output_hex"))
    expect_equal("secretbox output", secretbox_encrypt(msg, nonce, key), out)
    expect_equal("secretbox open", secretbox_decrypt(out, nonce, key), msg)
    try:
        secretbox_decrypt(_flip(out), nonce, key)
    except BadCiphertext:
        return
    raise CheckFailed("a tampered secretbox opened")


def _box(case: dict[str, Any]) -> None:
    sender = Curve25519SecretKey(hexb(case, "sender_secret_hex"))
    recipient = Curve25519SecretKey(hexb(case, "recipient_secret_hex"))
    expect_equal("sender public key", sender.public_key().key, hexb(case, "sender_public_hex"))
    expect_equal("recipient public key", recipient.public_key().key, hexb(case, "recipient_public_hex"))
    msg, out, nonce = hexb(case, "message_hex"), hexb(case, "output_hex"), hexb(case, "nonce_hex")
    rng = ScriptedRng([nonce])
    sealed = Curve25519PublicKey(hexb(case, "recipient_public_hex")).encrypt_message_for(msg, sender, rng)
    expect_equal("box output (tag || ciphertext || nonce)", sealed, out)
    opened = recipient.decrypt_message(out, Curve25519PublicKey(hexb(case, "sender_public_hex")))
    expect_equal("box open", opened, msg)
    try:
        recipient.decrypt_message(_flip(out, 3), sender.public_key())
    except BadCiphertext:
        return
    raise CheckFailed("a tampered box opened")


def _sign(case: dict[str, Any]) -> None:
    secret = SecretSigningKey(hexb(case, "secret_key_hex"))
    public = PublicSigningKey(hexb(case, "public_key_hex"))
    expect_equal("public key of secret key", secret.public_key(), public)
    msg, signed, sig = hexb(case, "message_hex"), hexb(case, "signed_hex"), hexb(case, "signature_only_hex")
    expect_equal("signed message (sig || msg)", secret.sign(msg), signed)
    expect_equal("detached signature", secret.signature_only(msg), sig)
    expect_equal("unsign", public.unsign(signed), msg)
    public.verify_detached(sig, msg)
    try:
        public.unsign(_flip(signed, 5))
    except BadSignature:
        return
    raise CheckFailed("a tampered signature verified")


def _keygen(case: dict[str, Any]) -> None:
    kind = case.get("type")
    if kind == "curve25519":
        public = Curve25519SecretKey(hexb(case, "secret_key_hex")).public_key()
        expect_equal("curve25519 public key", public.key, hexb(case, "public_key_hex"))
    elif kind == "ed25519":
        pair = SigningKeyPair.from_seed(hexb(case, "seed_hex"))
        expect_equal("ed25519 public key", pair.public.key, hexb(case, "public_key_hex"))
    else:
        raise CheckFailed(f"unknown key type {kind!r}")


_RUN = {"secretbox": _secretbox, "box": _box, "sign": _sign, "keygen": _keygen}


def check(doc: dict[str, Any], ctx: Context, report: FileReport) -> None:
    for section in SECTIONS:
        for i, case in enumerate(dict_cases(doc, section)):
            with report.case(f"{section}[{i}]"):
                _RUN[section](case)
