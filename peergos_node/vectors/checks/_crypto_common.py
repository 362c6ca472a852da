"""Small helpers shared by the crypto vector checks (hex fields, named key pairs, case lists)."""

from __future__ import annotations

from typing import Any

from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.vectors.runner import CheckFailed, Context


def hexb(d: dict[str, Any], key: str) -> bytes:
    """The bytes of a `*_hex` field."""
    value = d.get(key)
    if not isinstance(value, str):
        raise CheckFailed(f"vector field {key!r} is missing or not a hex string")
    return bytes.fromhex(value)


def dict_cases(doc: dict[str, Any], key: str = "cases") -> list[dict[str, Any]]:
    """The list of case objects under `key` (empty if absent)."""
    value = doc.get(key)
    if not isinstance(value, list):
        return []
    return [c for c in value if isinstance(c, dict)]


def has_case_with(doc: dict[str, Any], *fields: str, key: str = "cases") -> bool:
    """Whether `doc[key]` is a non-empty list of objects and the first has all `fields`."""
    cases = doc.get(key)
    return (
        isinstance(cases, list)
        and bool(cases)
        and isinstance(cases[0], dict)
        and all(f in cases[0] for f in fields)
    )


def named_keypair(ctx: Context, name: str) -> SigningKeyPair:
    """A shared key pair from cbor.json's `keypairs`, rebuilt from its seed and cross-checked."""
    data = ctx.keypair(name)
    if data is None:
        raise CheckFailed(f"key pair {name!r} not found in the vector directory")
    pair = SigningKeyPair.from_seed(hexb(data, "seed_hex"))
    if pair.public.key != hexb(data, "public_key_hex") or pair.secret.secret != hexb(data, "secret_key_hex"):
        raise CheckFailed(f"key pair {name!r}: seed does not give the listed keys")
    return pair


def named_key_hash(ctx: Context, name: str) -> PublicKeyHash:
    """The public key hash of a shared key pair."""
    return PublicKeyHash.of(named_keypair(ctx, name).public)
