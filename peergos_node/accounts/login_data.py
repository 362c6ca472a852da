"""Login data and the login response (spec/peergos.md §2.2-2.5, §12.5; Java `LoginData`, `LoginResponse`,
`VerifyingAccount`).

Theory of operation
-------------------
The server keeps, per username, the encrypted `UserStaticData` and the **login public key** that may
fetch it (the "authorised reader", derived from the password with scrypt, §2.1):

- `LoginData` CBOR `{u: username, e: UserStaticData, r: PublicSigningKey, b?: BlockWrite, p?: PointerWrite}`.
  `b`/`p` travel together and only during a password change: the new identity `WriterData` block and the
  signed pointer update that publishes it. That pointer update is the commit point: the server stages the
  new login data, writes the block, and the new password works once the pointer moves.
- `setLogin` carries it as the body (at most `MAX_LOGIN_DATA_SIZE` bytes) with
  `auth = identity.signature_only(serialize(LoginData))`, a **detached** signature that the server checks
  by unsigning `auth || serialize(LoginData)` with the user's current identity key from the PKI
  (`verify_login_data_auth`).
- `getLogin` answers `LoginResponse` CBOR `{a: true, r: UserStaticData}` or, when a second factor is
  needed, `{a: false, r: MultiFactorAuthRequest}`. Its `auth` is the login key's signed time (±24 h,
  `time_limited`), and the server only answers if the key matches the stored reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from peergos_node.accounts.entry_points import UserStaticData
from peergos_node.accounts.mfa import MultiFactorAuthRequest
from peergos_node.cbor import CborMixin, CborValue, as_bool, as_str, expect_map, field, only_keys
from peergos_node.corenode.usernames import MAX_USERNAME_SIZE
from peergos_node.corenode.writes import BlockWrite, PointerWrite
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey
from peergos_node.errors import AuthError, BadSignature, DecodeError

MAX_LOGIN_DATA_SIZE = 16 * 1024
"""`setLogin` reads at most this many body bytes."""


@dataclass(frozen=True)
class LoginData(CborMixin):
    """A user's encrypted login blob, the key allowed to read it, and a staged identity update."""

    username: str
    entry_points: UserStaticData
    authorised_reader: PublicSigningKey
    identity_update: tuple[BlockWrite, PointerWrite] | None = None

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {
            "u": self.username,
            "e": self.entry_points.to_cbor(),
            "r": self.authorised_reader.to_cbor(),
        }
        if self.identity_update is not None:
            block, pointer = self.identity_update
            m["b"] = block.to_cbor()
            m["p"] = pointer.to_cbor()
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "LoginData"
        m = expect_map(value, ctx)
        only_keys(m, {"u", "e", "r", "b", "p"}, ctx)
        if ("b" in m) != ("p" in m):
            raise DecodeError(f"{ctx}: the identity update needs both 'b' and 'p'")
        update = (BlockWrite.from_cbor(m["b"]), PointerWrite.from_cbor(m["p"])) if "b" in m else None
        return cls(
            as_str(field(m, "u", ctx), f"{ctx}.u", max_len=MAX_USERNAME_SIZE),
            UserStaticData.from_cbor(field(m, "e", ctx)),
            PublicSigningKey.from_cbor(field(m, "r", ctx)),
            update,
        )

    @classmethod
    def from_body(cls, body: bytes) -> LoginData:
        """Parse a `setLogin` body (size-checked)."""
        if len(body) > MAX_LOGIN_DATA_SIZE:
            raise DecodeError(f"login data larger than {MAX_LOGIN_DATA_SIZE} bytes")
        return cls.deserialize(body)

    def without_identity_update(self) -> LoginData:
        """The row a server stores once the staged update is committed."""
        return LoginData(self.username, self.entry_points, self.authorised_reader)


def login_data_auth(identity: SecretSigningKey, login: LoginData) -> bytes:
    """The `setLogin` auth: the identity's detached signature over the LoginData CBOR."""
    return identity.signature_only(login.serialize())


def verify_login_data_auth(identity: PublicSigningKey, login: LoginData, auth: bytes) -> None:
    """Raise AuthError unless `auth` is the identity's detached signature over `login`."""
    try:
        identity.verify_detached(auth, login.serialize())
    except BadSignature:
        raise AuthError(f"Invalid login data signature for {login.username}") from None


@dataclass(frozen=True)
class LoginResponse(CborMixin):
    """`getLogin`'s answer: the login data, or a second-factor challenge."""

    result: UserStaticData | MultiFactorAuthRequest

    @property
    def is_login_data(self) -> bool:
        """True when the login data is enclosed (CBOR `a`)."""
        return isinstance(self.result, UserStaticData)

    def to_cbor(self) -> CborValue:
        return {"a": self.is_login_data, "r": self.result.to_cbor()}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "LoginResponse"
        m = expect_map(value, ctx)
        only_keys(m, {"a", "r"}, ctx)
        raw = field(m, "r", ctx)
        if as_bool(field(m, "a", ctx), f"{ctx}.a"):
            return cls(UserStaticData.from_cbor(raw))
        return cls(MultiFactorAuthRequest.from_cbor(raw))


__all__ = [
    "MAX_LOGIN_DATA_SIZE",
    "LoginData",
    "LoginResponse",
    "login_data_auth",
    "verify_login_data_auth",
]
