"""Signup, login, password change and second factors through the HTTP API of a real home server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peergos_node.accounts.mfa import MultiFactorAuthRequest, MultiFactorAuthResponse
from peergos_node.accounts.time_limited import login_path, sign_request
from peergos_node.accounts.totp import totp
from peergos_node.client.account import LoginFailed, change_password, login, signup
from peergos_node.client.http import RemoteError, RemoteRateLimited
from peergos_node.crypto.rng import DeterministicRng
from tests.helpers.home import home_server


async def test_signup_login_and_password_change(tmp_path: Path) -> None:
    async with home_server(tmp_path / "h") as home:
        net = home.net
        session = await signup(net, "alice", "correct horse", home.token(), rng=DeterministicRng(b"alice"))
        assert session.username == "alice"
        assert await net.core.get_public_key("alice") == session.owner
        assert "alice" in await net.core.get_usernames("")
        again = await login(net, "alice", "correct horse")
        assert again.identity == session.identity and again.boxer == session.boxer
        with pytest.raises(LoginFailed):
            await login(net, "alice", "wrong horse")
        changed = await change_password(net, again, "battery staple")
        assert changed.owner == session.owner, "the identity does not change"
        await login(net, "alice", "battery staple")
        with pytest.raises(LoginFailed):
            await login(net, "alice", "correct horse")


async def test_signup_refusals_leave_nothing_behind(tmp_path: Path) -> None:
    async with home_server(tmp_path / "h") as home:
        net, storage = home.net, home.server.storage
        await signup(net, "bob", "pw-one-two", home.token())
        users_before = storage.usage.users()
        with pytest.raises(Exception, match="already exists"):
            await signup(net, "bob", "other-pass", home.token())
        for bad in ("Bob", "no spaces", "-dash", "a" * 40, "admin", "root"):
            with pytest.raises(RemoteError):
                await signup(net, bad, "password-x", home.token())
        with pytest.raises(RemoteError, match="not currently accepting"):
            await signup(net, "carol", "password-x", "")
        with pytest.raises(RemoteError, match="Invalid signup token"):
            await signup(net, "carol", "password-x", "00" * 32)
        assert storage.usage.users() == users_before
        assert await net.core.get_chain("carol") == ()
        # a token is single use
        token = home.token()
        await signup(net, "carol", "password-x", token)
        with pytest.raises(RemoteError, match="Invalid signup token"):
            await signup(net, "dave", "password-y", token)


async def test_totp_and_backup_codes(tmp_path: Path) -> None:
    async with home_server(tmp_path / "h") as home:
        net = home.net
        s = await signup(net, "erin", "a-long-password", home.token())
        now = int(time.time() * 1000)
        key = await net.account.add_totp("erin", sign_request(s.identity.secret, login_path("addTotp"), now))
        assert await net.account.enable_totp(
            "erin",
            key.credential_id,
            totp(key.key, now),
            sign_request(s.identity.secret, login_path("enableTotp"), now),
        )
        codes = await net.account.gen_backup_codes(
            "erin", sign_request(s.identity.secret, login_path("genBackupCodes"), now)
        )
        methods = await net.account.list_mfa(
            "erin", sign_request(s.identity.secret, login_path("listMfa"), now)
        )
        assert {m.type.value for m in methods} == {1, 3}
        with pytest.raises(LoginFailed, match="second factor is required"):
            await login(net, "erin", "a-long-password")

        async def totp_answer(req: MultiFactorAuthRequest) -> MultiFactorAuthResponse:
            [m] = [m for m in req.methods if m.type.value == 1]
            return MultiFactorAuthResponse(m.credential_id, totp(key.key, int(time.time() * 1000)))

        await login(net, "erin", "a-long-password", totp_answer)

        async def wrong(req: MultiFactorAuthRequest) -> MultiFactorAuthResponse:
            return MultiFactorAuthResponse(
                req.methods[0].credential_id,
                "000000" if totp(key.key, int(time.time() * 1000)) != "000000" else "111111",
            )

        with pytest.raises(LoginFailed):
            await login(net, "erin", "a-long-password", wrong)
        backup_id = next(m.credential_id for m in methods if m.type.value == 3)
        code = codes.formatted()[0]

        async def backup(req: MultiFactorAuthRequest) -> MultiFactorAuthResponse:
            return MultiFactorAuthResponse(backup_id, code)

        await login(net, "erin", "a-long-password", backup)
        with pytest.raises(LoginFailed):
            await login(net, "erin", "a-long-password", backup)  # single use


async def test_login_rejects_stale_or_foreign_auth_and_rate_limits(tmp_path: Path) -> None:
    async with home_server(tmp_path / "h") as home:
        net = home.net
        s = await signup(net, "frank", "frank-pass-1", home.token())
        other = await signup(net, "gina", "gina-pass-1", home.token())
        reader = s.login_keys.signing.public
        from peergos_node.accounts.time_limited import sign_time

        old = sign_time(s.login_keys.signing.secret, int(time.time() * 1000) - 25 * 3600 * 1000)
        with pytest.raises(RemoteError, match="Stale"):
            await net.account.get_login("frank", reader, old)
        foreign = sign_time(other.login_keys.signing.secret, int(time.time() * 1000))
        with pytest.raises(RemoteError):
            await net.account.get_login("frank", reader, foreign)
        with pytest.raises(RemoteError, match="Incorrect"):
            await net.account.get_login("frank", other.login_keys.signing.public, foreign)
        with pytest.raises(RemoteRateLimited):
            for _ in range(20):
                try:
                    await net.account.get_login("frank", other.login_keys.signing.public, foreign)
                except RemoteRateLimited:
                    raise
                except RemoteError:
                    pass
