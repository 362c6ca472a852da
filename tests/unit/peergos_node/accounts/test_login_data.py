"""LoginData, the setLogin auth and LoginResponse."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.accounts.login_data import (
    MAX_LOGIN_DATA_SIZE,
    LoginData,
    LoginResponse,
    login_data_auth,
    verify_login_data_auth,
)
from peergos_node.accounts.mfa import MfaType, MultiFactorAuthMethod, MultiFactorAuthRequest
from peergos_node.corenode.dates import LocalDate
from peergos_node.errors import AuthError, DecodeError
from tests.helpers.pki import keypair, login_data, static_data


def test_login_data_cbor() -> None:
    plain = login_data()
    assert set(plain.to_cbor()) == {"u", "e", "r"}
    assert plain.to_cbor()["r"] == [1, keypair("alice/login").public.key]
    assert LoginData.deserialize(plain.serialize()) == plain
    changing = login_data(with_update=True)
    assert set(changing.to_cbor()) == {"u", "e", "r", "b", "p"}
    assert LoginData.from_body(changing.serialize()) == changing
    assert changing.without_identity_update() == LoginData(
        "alice", changing.entry_points, changing.authorised_reader
    )


def test_login_data_strictness() -> None:
    m = login_data(with_update=True).to_cbor()
    for bad in (
        {k: v for k, v in m.items() if k != "p"},
        {k: v for k, v in m.items() if k != "b"},
        {**m, "x": 1},
        {**m, "u": "a" * 65},
        {k: v for k, v in m.items() if k != "r"},
    ):
        with pytest.raises(DecodeError):
            LoginData.deserialize(dag_cbor.encode(bad))
    with pytest.raises(DecodeError, match="larger than"):
        LoginData.from_body(b"\xa0" * (MAX_LOGIN_DATA_SIZE + 1))


def test_set_login_auth_is_a_detached_identity_signature() -> None:
    identity = keypair("alice/identity")
    login = login_data()
    auth = login_data_auth(identity.secret, login)
    assert len(auth) == 64
    verify_login_data_auth(identity.public, login, auth)
    with pytest.raises(AuthError):
        verify_login_data_auth(keypair("mallory").public, login, auth)
    with pytest.raises(AuthError):
        verify_login_data_auth(identity.public, login_data("bob"), auth)
    with pytest.raises(AuthError):
        verify_login_data_auth(identity.public, login, auth[:63])


def test_login_response_arms() -> None:
    data = LoginResponse(static_data())
    assert data.is_login_data and data.to_cbor()["a"] is True
    assert LoginResponse.deserialize(data.serialize()) == data
    req = MultiFactorAuthRequest(
        (MultiFactorAuthMethod("", b"\x01", LocalDate(2026, 1, 1), MfaType.TOTP, True),), b"\x02" * 32
    )
    mfa = LoginResponse(req)
    assert not mfa.is_login_data and mfa.to_cbor() == {"a": False, "r": req.to_cbor()}
    assert LoginResponse.deserialize(mfa.serialize()) == mfa
    with pytest.raises(DecodeError):
        LoginResponse.deserialize(dag_cbor.encode({"a": True, "r": req.to_cbor()}))
    with pytest.raises(DecodeError):
        LoginResponse.deserialize(dag_cbor.encode({"a": 1, "r": static_data().to_cbor()}))
