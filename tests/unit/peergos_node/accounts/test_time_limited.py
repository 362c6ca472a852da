"""Signed-time and signed-request authorisation (TimeLimited)."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from peergos_node.accounts.time_limited import (
    IDENTITY_REQUEST_WINDOW_SECONDS,
    LOGIN_WINDOW_SECONDS,
    SignedRequest,
    login_path,
    sign_request,
    sign_time,
    verify_signed_request,
    verify_signed_time,
)
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import AuthError
from tests.helpers.pki import keypair

NOW = 1_777_593_600_123
KEY = keypair("identity")
HASH = PublicKeyHash.of(KEY.public)


def test_signed_time_format() -> None:
    signed = sign_time(KEY.secret, NOW)
    assert KEY.public.unsign(signed) == dag_cbor.encode(NOW)
    assert verify_signed_time(signed, KEY.public, LOGIN_WINDOW_SECONDS, NOW) == NOW
    assert verify_signed_time(signed, HASH, LOGIN_WINDOW_SECONDS, NOW) == NOW


def test_signed_time_window_both_ways() -> None:
    window = 300
    signed = sign_time(KEY.secret, NOW)
    assert verify_signed_time(signed, KEY.public, window, NOW + 300_000) == NOW
    assert verify_signed_time(signed, KEY.public, window, NOW - 300_000) == NOW
    for now in (NOW + 300_001, NOW - 300_001):
        with pytest.raises(AuthError, match="Stale auth time"):
            verify_signed_time(signed, KEY.public, window, now)


def test_signed_time_rejections() -> None:
    signed = sign_time(KEY.secret, NOW)
    with pytest.raises(AuthError, match="signature"):
        verify_signed_time(signed, keypair("other").public, 300, NOW)
    with pytest.raises(AuthError, match="signature"):
        verify_signed_time(signed[:-1] + b"\x00", KEY.public, 300, NOW)
    with pytest.raises(AuthError, match="Invalid cbor for time"):
        verify_signed_time(KEY.sign(dag_cbor.encode("now")), KEY.public, 300, NOW)
    with pytest.raises(AuthError, match="Invalid cbor for time"):
        verify_signed_time(KEY.sign(dag_cbor.encode(1 << 63)), KEY.public, 300, NOW)
    with pytest.raises(AuthError, match="cbor"):
        verify_signed_time(KEY.sign(b"\xff\xff"), KEY.public, 300, NOW)
    with pytest.raises(AuthError):
        verify_signed_time(b"", KEY.public, 300, NOW)


def test_signed_request_is_path_bound() -> None:
    path = login_path("addTotp")
    assert path == "peergos/v0/login/addTotp"
    signed = sign_request(KEY.secret, path, NOW)
    assert SignedRequest.deserialize(KEY.public.unsign(signed)) == SignedRequest(path, NOW)
    assert SignedRequest(path, NOW).to_cbor() == {"p": path, "t": NOW}
    assert verify_signed_request(signed, HASH, path, LOGIN_WINDOW_SECONDS, NOW + 1000) == NOW
    with pytest.raises(AuthError, match="Illegal path for signed request"):
        verify_signed_request(signed, HASH, login_path("deleteMfa"), LOGIN_WINDOW_SECONDS, NOW)
    with pytest.raises(AuthError, match="Stale"):
        verify_signed_request(signed, HASH, path, IDENTITY_REQUEST_WINDOW_SECONDS, NOW + 301_000)
    with pytest.raises(AuthError):
        verify_signed_request(sign_time(KEY.secret, NOW), HASH, path, 300, NOW)  # a bare time is no request
    with pytest.raises(AuthError):
        verify_signed_request(signed, PublicKeyHash.of(keypair("other").public), path, 300, NOW)
