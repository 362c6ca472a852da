"""TOTP second factors (spec/peergos.md §2.6; RFC 4226, RFC 6238; Java `TotpKey`,
`JdbcAccount.validateTotpCode`).

Theory of operation
-------------------
`addTotp` (and `addMount`, a TOTP owned by a mounted device) creates a 32-byte random secret and a 32-byte
random credential id, stores the factor *disabled*, and returns `TotpKey.encode()` =
`BASE32(credentialId):BASE32(secret)` (RFC 4648 alphabet, upper case, no `=` padding). The user's app is
given `otpauth://totp/peergos:<username>@peergos?secret=<BASE32>&issuer=peergos` (the QR code text; the
label is not URL-encoded, as in Java). `enableTotp` with a correct code enables it and removes any older
TOTP: only one is ever active.

A code is RFC 6238 TOTP with Java's parameters: HMAC-SHA1 (the only algorithm Google Authenticator
honours), 30 s steps counted from the Unix epoch (`counter = millis / 30000`), 6 digits zero-padded. The
server accepts the code of the current step or of the previous one (`now - 30 s`), nothing else.

HMAC comes from the standard library (`hmac`, `hashlib`); only peergos_node.crypto touches libsodium.
Time is a parameter (`now_millis`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass, field

from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.errors import DecodeError

ALGORITHM = "HmacSHA1"
DIGITS = 6
TIME_STEP_SECONDS = 30
KEY_BYTES = 32
CREDENTIAL_ID_BYTES = 32
ISSUER = "peergos"
MAX_ENCODED_KEY = 512


def b32encode_unpadded(data: bytes) -> str:
    """RFC 4648 base32, upper case, without `=` padding (Java `Base32().encodeToString(...)` minus `=`)."""
    return base64.b32encode(data).decode("ascii").rstrip("=")


def b32decode_unpadded(text: str) -> bytes:
    """Inverse of `b32encode_unpadded` (either case); DecodeError on anything else."""
    if not text.isascii() or not text.isalnum():
        raise DecodeError("not base32 text")
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        return base64.b32decode(padded)
    except (binascii.Error, ValueError):
        raise DecodeError("not base32 text") from None


def _java_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP with HMAC-SHA1: dynamic truncation, mod 10^digits, zero-padded."""
    if not 1 <= digits <= 9:
        raise ValueError("HOTP codes have 1 to 9 digits")
    mac = hmac.new(key, struct.pack(">q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(key: bytes, now_millis: int, digits: int = DIGITS, step_seconds: int = TIME_STEP_SECONDS) -> str:
    """RFC 6238 TOTP at `now_millis` (counter = millis / step, Java integer division)."""
    return hotp(key, _java_div(now_millis, step_seconds * 1000), digits)


def verify_totp(key: bytes, code: str, now_millis: int) -> bool:
    """Whether `code` is the code of the current or the previous 30 s step."""
    if type(code) is not str or len(code) != DIGITS or not code.isascii():
        return False
    current = totp(key, now_millis)
    previous = totp(key, now_millis - TIME_STEP_SECONDS * 1000)
    # evaluate both comparisons: the time taken does not tell which window matched
    ok_current = hmac.compare_digest(current, code)
    ok_previous = hmac.compare_digest(previous, code)
    return ok_current or ok_previous


@dataclass(frozen=True)
class TotpKey:
    """A TOTP factor's credential id and secret, as returned by `addTotp`/`addMount`."""

    credential_id: bytes
    key: bytes = field(repr=False)

    @classmethod
    def generate(cls, rng: Rng = SYSTEM_RNG) -> TotpKey:
        """A fresh factor: the 32-byte secret is drawn first, then the 32-byte credential id (as Java)."""
        key = rng.random_bytes(KEY_BYTES)
        return cls(rng.random_bytes(CREDENTIAL_ID_BYTES), key)

    def encode(self) -> str:
        """`BASE32(credentialId):BASE32(key)` (the `addTotp` response body, UTF-8)."""
        return b32encode_unpadded(self.credential_id) + ":" + b32encode_unpadded(self.key)

    @classmethod
    def from_string(cls, encoded: str) -> TotpKey:
        """Parse `encode()`'s form (DecodeError otherwise)."""
        if type(encoded) is not str or len(encoded) > MAX_ENCODED_KEY or encoded.count(":") != 1:
            raise DecodeError("a TOTP key is BASE32(credential id):BASE32(key)")
        cred, key = encoded.split(":")
        if not cred or not key:
            raise DecodeError("a TOTP key is BASE32(credential id):BASE32(key)")
        return cls(b32decode_unpadded(cred), b32decode_unpadded(key))

    def otpauth_uri(self, username: str) -> str:
        """The authenticator-app URI (Java `getQRCode`'s text)."""
        label = f"{ISSUER}:{username}@{ISSUER}"
        return f"otpauth://totp/{label}?secret={b32encode_unpadded(self.key)}&issuer={ISSUER}"

    def code(self, now_millis: int) -> str:
        """The current code (what a mount or an authenticator app would show)."""
        return totp(self.key, now_millis)

    def verify(self, code: str, now_millis: int) -> bool:
        """Whether `code` is valid now (current or previous step)."""
        return verify_totp(self.key, code, now_millis)


__all__ = [
    "ALGORITHM",
    "CREDENTIAL_ID_BYTES",
    "DIGITS",
    "KEY_BYTES",
    "TIME_STEP_SECONDS",
    "TotpKey",
    "b32decode_unpadded",
    "b32encode_unpadded",
    "hotp",
    "totp",
    "verify_totp",
]
