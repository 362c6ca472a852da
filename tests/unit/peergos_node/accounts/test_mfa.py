"""Second-factor formats and rules."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.accounts.mfa import (
    MfaType,
    MultiFactorAuthMethod,
    MultiFactorAuthRequest,
    MultiFactorAuthResponse,
    WebauthnResponse,
    check_can_add_factor,
    check_can_generate_backup_codes,
    filter_to_supported_types,
    has_interactive_factor,
    is_listed,
    listed,
    methods_to_challenge,
    parse_mfa_types,
)
from peergos_node.corenode.dates import LocalDate
from peergos_node.errors import DecodeError

DAY = LocalDate(2026, 3, 1)


def _m(t: MfaType, enabled: bool = True, name: str = "", cred: bytes = b"\x01") -> MultiFactorAuthMethod:
    return MultiFactorAuthMethod(name, cred, DAY, t, enabled)


def test_method_cbor() -> None:
    m = MultiFactorAuthMethod("phone", b"\xaa\xbb", DAY, MfaType.TOTP, True)
    assert m.serialize() == dag_cbor.encode({"c": 20513, "e": True, "i": b"\xaa\xbb", "n": "phone", "t": 1})
    # {c: 20513 (2026-03-01 as an epoch day), e: true, i: h'aabb', n: "phone", t: 1}
    assert m.serialize().hex() == "a561631950216165f5616942aabb616e6570686f6e65617401"
    assert MultiFactorAuthMethod.deserialize(m.serialize()) == m


def test_method_strictness() -> None:
    good = _m(MfaType.WEBAUTHN).to_cbor()
    for bad in (
        {**good, "t": 5},
        {**good, "t": 0},
        {**good, "c": 1 << 62},
        {**good, "n": "x" * 33},
        {**good, "z": 1},
    ):
        with pytest.raises(DecodeError):
            MultiFactorAuthMethod.deserialize(dag_cbor.encode(bad))
    with pytest.raises(ValueError):
        MultiFactorAuthMethod("😀" * 17, b"", DAY, MfaType.TOTP, True)  # 34 Java chars


def test_types() -> None:
    assert [t.value for t in MfaType] == [1, 2, 3, 4]
    assert [t.has_challenge for t in MfaType] == [False, True, False, False]
    assert [t.interactive for t in MfaType] == [True, True, True, False]
    with pytest.raises(DecodeError, match="Please update"):
        MfaType.by_value(9)


def test_request_and_response_cbor() -> None:
    req = MultiFactorAuthRequest((_m(MfaType.TOTP), _m(MfaType.WEBAUTHN, cred=b"\x02")), b"challenge")
    assert set(req.to_cbor()) == {"m", "c"}
    assert MultiFactorAuthRequest.deserialize(req.serialize()) == req
    code = MultiFactorAuthResponse(b"\x01", "123456")
    assert code.to_cbor() == {"i": b"\x01", "r": "123456"}
    assert MultiFactorAuthResponse.deserialize(code.serialize()) == code
    web = MultiFactorAuthResponse(b"\x02", WebauthnResponse(b"auth", b"{}", b"sig"))
    assert web.to_cbor() == {"i": b"\x02", "r": {"a": b"auth", "c": b"{}", "s": b"sig"}}
    assert MultiFactorAuthResponse.deserialize(web.serialize()) == web
    with pytest.raises(DecodeError):
        MultiFactorAuthResponse.deserialize(dag_cbor.encode({"i": b"", "r": 5}))


def test_listing_rules() -> None:
    assert not is_listed(_m(MfaType.TOTP, enabled=False))
    assert not is_listed(_m(MfaType.MOUNT, enabled=False))
    assert is_listed(_m(MfaType.WEBAUTHN, enabled=False))
    assert not is_listed(_m(MfaType.BACKUP_CODES, name="0"))
    assert is_listed(_m(MfaType.BACKUP_CODES, name="3"))
    assert listed([_m(MfaType.TOTP, enabled=False), _m(MfaType.TOTP)]) == (_m(MfaType.TOTP),)


def test_when_login_needs_a_second_factor() -> None:
    assert methods_to_challenge([]) is None
    assert methods_to_challenge([_m(MfaType.BACKUP_CODES, name="10")]) is None
    assert methods_to_challenge([_m(MfaType.MOUNT, name="laptop")]) is None
    assert methods_to_challenge([_m(MfaType.TOTP, enabled=False)]) is None
    totp, backup, mount = _m(MfaType.TOTP), _m(MfaType.BACKUP_CODES, name="9"), _m(MfaType.MOUNT, name="nas")
    assert methods_to_challenge([totp, backup, mount]) == (totp, backup, mount)


def test_filter_to_supported_types() -> None:
    totp, web, backup, mount = (
        _m(MfaType.TOTP),
        _m(MfaType.WEBAUTHN),
        _m(MfaType.BACKUP_CODES, name="9"),
        _m(MfaType.MOUNT, name="nas"),
    )
    req = MultiFactorAuthRequest((totp, web, backup, mount), b"c")
    assert filter_to_supported_types(req, None).methods == (totp, web)  # clients from before mfaTypes
    assert filter_to_supported_types(req, "1,2,3,4").methods == (totp, web, backup)  # mounts never offered
    assert filter_to_supported_types(req, "3").methods == (backup,)
    same = MultiFactorAuthRequest((totp,), b"c")
    assert filter_to_supported_types(same, "1") is same
    assert parse_mfa_types("+1,-2") == frozenset({1, -2})
    for bad in ("", "1,", "a", " 1", "1 ", "99999999999", "1" * 300):
        with pytest.raises(DecodeError):
            parse_mfa_types(bad)


def test_factor_limits() -> None:
    with pytest.raises(ValueError, match="Please set up"):
        check_can_generate_backup_codes([_m(MfaType.MOUNT, name="x"), _m(MfaType.BACKUP_CODES, name="4")])
    check_can_generate_backup_codes([_m(MfaType.WEBAUTHN)])
    assert not has_interactive_factor([_m(MfaType.WEBAUTHN, enabled=False)])
    check_can_add_factor([_m(MfaType.WEBAUTHN)] * 9)
    with pytest.raises(ValueError, match="Too many"):
        check_can_add_factor([_m(MfaType.WEBAUTHN)] * 10)
