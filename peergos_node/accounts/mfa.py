"""Second-factor structures and rules (spec/peergos.md §2.3 step 5, §2.6; Java `login/mfa/*`,
`JdbcAccount`, `AccountHandler.filterToSupportedMfaTypes`).

Theory of operation
-------------------
Formats (CBOR maps, Peergos key order):

- `MultiFactorAuthMethod` `{n: name, i: h'credential id', c: created (epoch day), t: type, e: enabled}`;
  types TOTP=1, WEBAUTHN=2, BACKUP_CODES=3, MOUNT=4 (a TOTP owned by a mounted device: never offered to a
  person). Names are at most 32 (Java) characters.
- `MultiFactorAuthRequest` `{m: [method...], c: h'challenge'}` — what `getLogin` answers instead of the
  login data when a second factor is needed.
- `MultiFactorAuthResponse` `{i: h'credential id', r: code string | WebauthnResponse {a, c, s}}` — the
  client's answer, sent hex-encoded in `getLogin`'s `mfa` parameter.

Rules (pure functions over a user's factors, so any store can apply them):

- `is_listed`: TOTP and MOUNT factors that were never enabled, and exhausted backup-code sets (name
  `"0"`), are not listed (`listMfa`) and play no part in login.
- `methods_to_challenge`: login needs a second factor only if some *enabled* factor is interactive and not
  a backup-code set; then every enabled factor is returned for the challenge.
- `filter_to_supported_types`: the challenge sent to a client keeps only interactive factors whose type
  the client listed in `mfaTypes` (default TOTP and WEBAUTHN, for clients that predate the parameter).
- `has_interactive_factor`: backup codes may only be generated while such a factor exists, and are
  deleted with the last one.
- `check_factor_name`, `MAX_MFA`: new factors are named within 32 characters, at most 10 per user.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Self

from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_bool,
    as_bytes,
    as_int,
    as_str,
    expect_list,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.java_io import java_char_count
from peergos_node.errors import DecodeError

MAX_NAME_LENGTH = 32
MAX_MFA = 10
MAX_CREDENTIAL_ID = 1024
MAX_CHALLENGE = 1024
MAX_METHODS = 64
MAX_CODE_CHARS = 256
MAX_WEBAUTHN_FIELD = 16 * 1024
MAX_MFA_TYPES_PARAM = 256
_JAVA_INT = re.compile(r"[+-]?[0-9]{1,10}", re.ASCII)


class MfaType(enum.IntEnum):
    """Second-factor types (Java `MultiFactorAuthMethod.Type`)."""

    TOTP = 1
    WEBAUTHN = 2
    BACKUP_CODES = 3
    MOUNT = 4

    @property
    def has_challenge(self) -> bool:
        """Whether answering needs the server's challenge (only WebAuthn)."""
        return self is MfaType.WEBAUTHN

    @property
    def interactive(self) -> bool:
        """Whether a person logging in can be asked for it (not a device mount)."""
        return self is not MfaType.MOUNT

    @classmethod
    def by_value(cls, value: int) -> MfaType:
        """The type with this code; DecodeError for unknown ones."""
        try:
            return cls(value)
        except ValueError:
            raise DecodeError(
                f"Unknown second factor type: {value}. Please update to a newer version."
            ) from None


def check_factor_name(name: str) -> None:
    """Raise ValueError unless `name` fits (Java counts UTF-16 characters)."""
    if java_char_count(name) > MAX_NAME_LENGTH:
        raise ValueError(f"Second factor names must be smaller than {MAX_NAME_LENGTH + 1} characters")


@dataclass(frozen=True)
class MultiFactorAuthMethod(CborMixin):
    """One registered second factor as listed to its owner and in login challenges."""

    name: str
    credential_id: bytes
    created: LocalDate
    type: MfaType
    enabled: bool

    def __post_init__(self) -> None:
        check_factor_name(self.name)

    def to_cbor(self) -> CborValue:
        return {
            "n": self.name,
            "i": self.credential_id,
            "c": self.created.to_epoch_day(),
            "t": int(self.type),
            "e": self.enabled,
        }

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "MultiFactorAuthMethod"
        m = expect_map(value, ctx)
        only_keys(m, {"n", "i", "c", "t", "e"}, ctx)
        name = as_str(cbor_field(m, "n", ctx), f"{ctx}.n", max_len=MAX_NAME_LENGTH)
        try:
            created = LocalDate.of_epoch_day(as_int(cbor_field(m, "c", ctx), f"{ctx}.c"))
            return cls(
                name,
                as_bytes(cbor_field(m, "i", ctx), f"{ctx}.i", max_len=MAX_CREDENTIAL_ID),
                created,
                MfaType.by_value(as_int(cbor_field(m, "t", ctx), f"{ctx}.t")),
                as_bool(cbor_field(m, "e", ctx), f"{ctx}.e"),
            )
        except ValueError as e:
            if isinstance(e, DecodeError):
                raise
            raise DecodeError(f"{ctx}: {e}") from None


@dataclass(frozen=True)
class MultiFactorAuthRequest(CborMixin):
    """The second factors a login may answer with, and the challenge for WebAuthn."""

    methods: tuple[MultiFactorAuthMethod, ...]
    challenge: bytes

    def to_cbor(self) -> CborValue:
        return {"m": [x.to_cbor() for x in self.methods], "c": self.challenge}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "MultiFactorAuthRequest"
        m = expect_map(value, ctx)
        only_keys(m, {"m", "c"}, ctx)
        items = expect_list(cbor_field(m, "m", ctx), f"{ctx}.m", max_len=MAX_METHODS)
        return cls(
            tuple(MultiFactorAuthMethod.from_cbor(i) for i in items),
            as_bytes(cbor_field(m, "c", ctx), f"{ctx}.c", max_len=MAX_CHALLENGE),
        )


@dataclass(frozen=True)
class WebauthnResponse(CborMixin):
    """A WebAuthn assertion or attestation (CBOR `{a, c, s}`); verifying it is the WebAuthn library's job."""

    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes = field(repr=False)

    def to_cbor(self) -> CborValue:
        return {"a": self.authenticator_data, "c": self.client_data_json, "s": self.signature}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "WebauthnResponse"
        m = expect_map(value, ctx)
        only_keys(m, {"a", "c", "s"}, ctx)
        return cls(
            as_bytes(cbor_field(m, "a", ctx), f"{ctx}.a", max_len=MAX_WEBAUTHN_FIELD),
            as_bytes(cbor_field(m, "c", ctx), f"{ctx}.c", max_len=MAX_WEBAUTHN_FIELD),
            as_bytes(cbor_field(m, "s", ctx), f"{ctx}.s", max_len=MAX_WEBAUTHN_FIELD),
        )


@dataclass(frozen=True)
class MultiFactorAuthResponse(CborMixin):
    """A client's answer to a challenge: a code (TOTP, mount, backup code) or a WebAuthn response."""

    credential_id: bytes
    response: str | WebauthnResponse

    def to_cbor(self) -> CborValue:
        r = self.response if isinstance(self.response, str) else self.response.to_cbor()
        return {"i": self.credential_id, "r": r}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "MultiFactorAuthResponse"
        m = expect_map(value, ctx)
        only_keys(m, {"i", "r"}, ctx)
        raw = cbor_field(m, "r", ctx)
        response: str | WebauthnResponse = (
            as_str(raw, f"{ctx}.r", max_len=MAX_CODE_CHARS)
            if type(raw) is str
            else WebauthnResponse.from_cbor(raw)
        )
        return cls(as_bytes(cbor_field(m, "i", ctx), f"{ctx}.i", max_len=MAX_CREDENTIAL_ID), response)


# ---- rules ----------------------------------------------------------------------------------------


def is_listed(method: MultiFactorAuthMethod) -> bool:
    """Whether a stored factor counts at all (never-enabled code factors and spent backup sets do not)."""
    if method.type in (MfaType.TOTP, MfaType.MOUNT) and not method.enabled:
        return False
    return not (method.type is MfaType.BACKUP_CODES and method.name == "0")


def listed(methods: Iterable[MultiFactorAuthMethod]) -> tuple[MultiFactorAuthMethod, ...]:
    """The factors `listMfa` returns."""
    return tuple(m for m in methods if is_listed(m))


def has_interactive_factor(methods: Iterable[MultiFactorAuthMethod]) -> bool:
    """Whether an enabled factor a person can be challenged with exists (TOTP or WebAuthn)."""
    return any(m.enabled and m.type.interactive and m.type is not MfaType.BACKUP_CODES for m in methods)


def methods_to_challenge(
    methods: Iterable[MultiFactorAuthMethod],
) -> tuple[MultiFactorAuthMethod, ...] | None:
    """The enabled listed factors to challenge a login with, or None when no second factor is needed."""
    enabled = tuple(m for m in listed(methods) if m.enabled)
    if not has_interactive_factor(enabled):
        return None
    return enabled


def parse_mfa_types(param: str | None) -> frozenset[int]:
    """The `mfaTypes` query parameter (comma-separated type codes); absent = {TOTP, WEBAUTHN}."""
    if param is None:
        return frozenset({MfaType.TOTP.value, MfaType.WEBAUTHN.value})
    if len(param) > MAX_MFA_TYPES_PARAM:
        raise DecodeError("mfaTypes parameter too long")
    out: set[int] = set()
    for part in param.split(","):
        if _JAVA_INT.fullmatch(part) is None or not -(1 << 31) <= int(part) < 1 << 31:
            raise DecodeError(f"invalid mfaTypes entry {part!r}")
        out.add(int(part))
    return frozenset(out)


def filter_to_supported_types(
    request: MultiFactorAuthRequest, mfa_types: str | None
) -> MultiFactorAuthRequest:
    """Keep the interactive factors whose types the client supports (`filterToSupportedMfaTypes`)."""
    supported = parse_mfa_types(mfa_types)
    kept = tuple(m for m in request.methods if m.type.interactive and m.type.value in supported)
    if len(kept) == len(request.methods):
        return request
    return MultiFactorAuthRequest(kept, request.challenge)


def check_can_add_factor(methods: Sequence[MultiFactorAuthMethod]) -> None:
    """Raise ValueError when a user already has the maximum number of factors."""
    if len(methods) >= MAX_MFA:
        raise ValueError("Too many multi factor auth methods. Please delete some.")


def check_can_generate_backup_codes(methods: Iterable[MultiFactorAuthMethod]) -> None:
    """Raise ValueError unless there is a factor for backup codes to back up."""
    if not has_interactive_factor(methods):
        raise ValueError("Please set up an authenticator app or security key before generating backup codes.")


__all__ = [
    "MAX_MFA",
    "MAX_NAME_LENGTH",
    "MfaType",
    "MultiFactorAuthMethod",
    "MultiFactorAuthRequest",
    "MultiFactorAuthResponse",
    "WebauthnResponse",
    "check_can_add_factor",
    "check_can_generate_backup_codes",
    "check_factor_name",
    "filter_to_supported_types",
    "has_interactive_factor",
    "is_listed",
    "listed",
    "methods_to_challenge",
    "parse_mfa_types",
]
