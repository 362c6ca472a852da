"""Signed-time authorisation (spec/peergos.md §2.3, §2.6, §18.24; Java `TimeLimited`,
`TimeLimitedClient`).

Theory of operation
-------------------
A caller proves it holds a key, without a session, by signing the current time:

- **signed time** (`sign_time` / `verify_signed_time`): the key's attached Ed25519 signature over the CBOR
  of a long, the caller's clock in UTC milliseconds (`TimeLimitedClient.signNow`). `getLogin` takes it from
  the login key and accepts ±24 h; usage/quota/space calls take the identity's within 300 s or 24 h;
  `mirror` within 10 minutes; admin calls within 60 s.
- **signed request** (`SignedRequest`, `sign_request` / `verify_signed_request`): the identity's attached
  signature over CBOR `{p: path, t: millis}`. Binding the path (e.g. `peergos/v0/login/addTotp`, no
  leading slash) stops a signature for one endpoint being replayed against another. MFA management accepts
  it for 24 h; BAT and server-message calls for 300 s.

A time is accepted when `|now - t| <= window` (both directions, so a fast client clock works too).
Every failure — bad signature, wrong key, malformed CBOR, stale time, wrong path — is an `AuthError` with
Java's message where Java has one. `now_millis` is always a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from nabu_py.codec import dag_cbor
from peergos_node.cbor import CborMixin, CborValue, as_int, as_str, expect_map, field, only_keys
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey
from peergos_node.errors import AuthError, BadSignature, DecodeError

LOGIN_URL = "peergos/v0/login/"
LOGIN_WINDOW_SECONDS = 24 * 3600
"""`getLogin` (login key) and MFA management (identity key)."""
MFA_MANAGEMENT_WINDOW_SECONDS = 24 * 3600
IDENTITY_REQUEST_WINDOW_SECONDS = 300
"""BAT, server-message and usage calls."""
MIRROR_WINDOW_SECONDS = 10 * 60
ADMIN_WINDOW_SECONDS = 60
MAX_SIGNED_AUTH = 4096
MAX_PATH_CHARS = 1024

MFA_METHODS = (
    "listMfa",
    "addTotp",
    "enableTotp",
    "addMount",
    "enableMount",
    "genBackupCodes",
    "registerWebauthnStart",
    "registerWebauthnComplete",
    "deleteMfa",
)
"""The login endpoints that need an identity-signed request for `login_path(method)`."""


def login_path(method: str) -> str:
    """The path an MFA management request signs, e.g. `peergos/v0/login/listMfa`."""
    return LOGIN_URL + method


def _key(key: PublicSigningKey | PublicKeyHash) -> PublicSigningKey:
    if isinstance(key, PublicSigningKey):
        return key
    try:
        return key.inlined_signing_key()
    except DecodeError:
        raise AuthError("Couldn't retrieve owner key!") from None


def _unsign(signed: bytes, key: PublicSigningKey | PublicKeyHash) -> CborValue:
    if len(signed) > MAX_SIGNED_AUTH:
        raise AuthError("Authorisation too large")
    try:
        return dag_cbor.decode(_key(key).unsign(signed))
    except BadSignature:
        raise AuthError("Invalid signature in authorisation") from None
    except DecodeError as e:
        raise AuthError(f"Invalid cbor in authorisation: {e}") from None


def _check_window(millis: int, window_seconds: int, now_millis: int) -> None:
    if abs(now_millis - millis) > window_seconds * 1000:
        raise AuthError("Stale auth time, is your clock accurate?")


def sign_time(signer: SecretSigningKey, now_millis: int) -> bytes:
    """The attached signature over CBOR(now in UTC milliseconds) (`TimeLimitedClient.signNow`)."""
    return signer.sign(dag_cbor.encode(now_millis))


def verify_signed_time(
    signed: bytes, key: PublicSigningKey | PublicKeyHash, window_seconds: int, now_millis: int
) -> int:
    """`TimeLimited.isAllowedTime`: return the signed milliseconds, or raise AuthError."""
    value = _unsign(signed, key)
    if type(value) is not int:
        raise AuthError("Invalid cbor for time in authorisation!")
    try:
        millis = as_int(value, "signed time")
    except DecodeError:
        raise AuthError("Invalid cbor for time in authorisation!") from None
    _check_window(millis, window_seconds, now_millis)
    return millis


@dataclass(frozen=True)
class SignedRequest(CborMixin):
    """A path and the time it was signed (CBOR `{p: path, t: millis}`)."""

    path: str
    created_millis: int

    def sign(self, signer: SecretSigningKey) -> bytes:
        """The attached signature over the CBOR."""
        return signer.sign(self.serialize())

    def to_cbor(self) -> CborValue:
        return {"p": self.path, "t": self.created_millis}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "SignedRequest"
        m = expect_map(value, ctx)
        only_keys(m, {"p", "t"}, ctx)
        return cls(
            as_str(field(m, "p", ctx), f"{ctx}.p", max_len=MAX_PATH_CHARS),
            as_int(field(m, "t", ctx), f"{ctx}.t"),
        )


def sign_request(signer: SecretSigningKey, path: str, now_millis: int) -> bytes:
    """Sign `{p: path, t: now}` (what an MFA management or BAT call sends as `auth`)."""
    return SignedRequest(path, now_millis).sign(signer)


def verify_signed_request(
    signed: bytes,
    key: PublicSigningKey | PublicKeyHash,
    expected_path: str,
    window_seconds: int,
    now_millis: int,
) -> int:
    """`TimeLimited.isAllowed`: return the signed milliseconds, or raise AuthError."""
    value = _unsign(signed, key)
    try:
        req = SignedRequest.from_cbor(value)
    except DecodeError as e:
        raise AuthError(f"Invalid signed request: {e}") from None
    _check_window(req.created_millis, window_seconds, now_millis)
    if req.path != expected_path:
        raise AuthError(f"Illegal path for signed request: {req.path}")
    return req.created_millis


__all__ = [
    "ADMIN_WINDOW_SECONDS",
    "IDENTITY_REQUEST_WINDOW_SECONDS",
    "LOGIN_URL",
    "LOGIN_WINDOW_SECONDS",
    "MFA_MANAGEMENT_WINDOW_SECONDS",
    "MFA_METHODS",
    "MIRROR_WINDOW_SECONDS",
    "SignedRequest",
    "login_path",
    "sign_request",
    "sign_time",
    "verify_signed_request",
    "verify_signed_time",
]
