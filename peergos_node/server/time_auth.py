"""Signed-time authorisation (Java `TimeLimited.isAllowedTime`, spec/peergos.md §2.3, §12.6).

The caller proves it holds a key by sending its attached Ed25519 signature over the CBOR of the current
time in UTC milliseconds; the server accepts it within a window (300 s for usage, 24 h for quota and
login data) of its own clock. The key is the owner's identity key, inlined in its PublicKeyHash.
"""

from __future__ import annotations

from nabu_py.codec import dag_cbor
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.errors import AuthError, BadSignature, DecodeError


def sign_time(pair: SigningKeyPair, now_s: float) -> bytes:
    """Sign the current time (UTC milliseconds) with a key pair."""
    return pair.sign(dag_cbor.encode(int(now_s * 1000)))


def verify_signed_time(key: PublicKeyHash, signed: bytes, window_s: int, now_s: float) -> int:
    """Check a signed time against `key` and the window; return the signed UTC milliseconds."""
    try:
        message = key.inlined_signing_key().unsign(signed)
        millis = dag_cbor.decode(message)
    except (BadSignature, DecodeError, ValueError) as e:
        raise AuthError(f"invalid signed time: {e}") from None
    if type(millis) is not int:
        raise AuthError("Invalid cbor for time in authorisation!")
    if abs(now_s * 1000 - millis) > window_s * 1000:
        raise AuthError("Stale auth time, is your clock accurate?")
    return millis
