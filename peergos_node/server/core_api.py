"""HTTP API of the PKI (`/peergos/v0/core/*`) and of login data (`/peergos/v0/login/*`)
(spec/peergos.md §12.2, §12.5; Java `CoreNodeHandler`, `AccountHandler`).

Core bodies use Java DataOutputStream framing (peergos_node.corenode.messages). Login calls take their
arguments in the query (`username`, `author` = hex CBOR of the login public key, `auth` = hex of a
signature, `mfa` = hex CBOR MultiFactorAuthResponse, `credid`, `code`) and, for `setLogin`, the CBOR
LoginData as body. Too many failed logins answer 429.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio
from starlette.responses import Response

from nabu_py.codec import dag_cbor
from peergos_node.accounts.login_data import LoginData, LoginResponse
from peergos_node.accounts.mfa import MultiFactorAuthResponse, filter_to_supported_types
from peergos_node.corenode.messages import (
    DifficultyResponse,
    GetPublicKeyResponse,
    GetUsernameRequest,
    GetUsernameResponse,
    SignupRequest,
    UpdateChainRequest,
    UsernameRequest,
    encode_chain_response,
    encode_usernames_gzip,
)
from peergos_node.crypto.signing import PublicSigningKey
from peergos_node.server.accounts_service import AccountService, RateLimitedError
from peergos_node.server.http import ApiApp, ApiRequest, HttpError, RateLimited, bool_response, bytes_response
from peergos_node.server.pki import CoreNode
from peergos_node.server.signup import SignupService

T = TypeVar("T")
CORE = "/peergos/v0/core/"
LOGIN = "/peergos/v0/login/"


def _hex(req: ApiRequest, key: str) -> bytes:
    try:
        return bytes.fromhex(req.arg(key))
    except ValueError:
        raise HttpError(f"{key} must be hex") from None


def build_core_api(
    core: CoreNode, signup: SignupService | None, accounts: AccountService | None, threads: int = 8
) -> ApiApp:
    """Endpoints for the PKI and (when this server has users) signup and login."""
    limiter = trio.CapacityLimiter(threads)
    app = ApiApp({}, name="core-api")

    async def run(fn: Callable[[], T]) -> T:
        try:
            return await trio.to_thread.run_sync(fn, limiter=limiter)
        except RateLimitedError as e:
            raise RateLimited(str(e)) from None

    async def get_chain(req: ApiRequest) -> Response:
        name = UsernameRequest.decode(req.body).username
        return bytes_response(encode_chain_response(await run(lambda: core.get_chain(name))))

    async def update_chain(req: ApiRequest) -> Response:
        r = UpdateChainRequest.decode(req.body)
        res = await run(lambda: core.update_chain(r.username, r.chain, r.proof, r.token))
        return bytes_response(DifficultyResponse(None if res is None else res.difficulty).encode())

    async def do_signup(req: ApiRequest) -> Response:
        if signup is None:
            raise HttpError("this server does not accept sign ups")
        r = SignupRequest.decode(req.body)
        res = await run(lambda: signup.signup(r))
        return bytes_response(res.encode())

    async def get_public_key(req: ApiRequest) -> Response:
        name = UsernameRequest.decode(req.body).username
        return bytes_response(GetPublicKeyResponse(await run(lambda: core.get_public_key(name))).encode())

    async def get_username(req: ApiRequest) -> Response:
        key = GetUsernameRequest.decode(req.body).owner
        name = await run(lambda: core.get_username(key))
        if name is None:
            raise HttpError(f"Unknown username for key: {key}")
        return bytes_response(GetUsernameResponse(name).encode())

    async def get_usernames(req: ApiRequest) -> Response:
        prefix = req.path[len(CORE + "getUsernamesGzip") :].lstrip("/")
        names = await run(lambda: core.get_usernames(prefix))
        resp = bytes_response(encode_usernames_gzip(names))
        resp.headers["Content-Encoding"] = "gzip"
        resp.headers["Content-Type"] = "application/json"
        return resp

    app.add(CORE + "getChain", get_chain)
    app.add(CORE + "updateChain", update_chain, max_body=64 * 1024)
    app.add(CORE + "signup", do_signup, max_body=256 * 1024)
    app.add(CORE + "getPublicKey", get_public_key)
    app.add(CORE + "getUsername", get_username)
    app.add_prefix(CORE + "getUsernamesGzip", get_usernames)
    if accounts is None:
        return app

    async def set_login(req: ApiRequest) -> Response:
        login = LoginData.from_body(req.body)
        auth = _hex(req, "auth")
        return bool_response(await run(lambda: accounts.set_login(login, auth)))

    async def get_login(req: ApiRequest) -> Response:
        username = req.arg("username")
        reader = PublicSigningKey.deserialize(_hex(req, "author"))
        auth = _hex(req, "auth")
        mfa = MultiFactorAuthResponse.deserialize(_hex(req, "mfa")) if req.has("mfa") else None
        result = await run(lambda: accounts.get_login(username, reader, auth, mfa))
        response = LoginResponse(result)
        if not response.is_login_data:
            response = LoginResponse(filter_to_supported_types(result, req.opt("mfaTypes")))  # type: ignore[arg-type]
        return bytes_response(response.serialize())

    async def list_mfa(req: ApiRequest) -> Response:
        username, auth = req.arg("username"), _hex(req, "auth")
        methods = await run(lambda: accounts.list_mfa(username, auth))
        return bytes_response(dag_cbor.encode([m.to_cbor() for m in methods]))

    async def add_totp(req: ApiRequest) -> Response:
        username, auth = req.arg("username"), _hex(req, "auth")
        key = await run(lambda: accounts.add_totp(username, auth))
        return bytes_response(key.encode().encode())

    async def enable_totp(req: ApiRequest) -> Response:
        username, auth, credid, code = (
            req.arg("username"),
            _hex(req, "auth"),
            _hex(req, "credid"),
            req.arg("code"),
        )
        ok = await run(lambda: accounts.enable_totp(username, credid, code, auth))
        return bytes_response(dag_cbor.encode(ok))

    async def gen_backup_codes(req: ApiRequest) -> Response:
        username, auth = req.arg("username"), _hex(req, "auth")
        codes = await run(lambda: accounts.gen_backup_codes(username, auth))
        return bytes_response(codes.serialize())

    async def delete_mfa(req: ApiRequest) -> Response:
        username, auth, credid = req.arg("username"), _hex(req, "auth"), _hex(req, "credid")
        return bytes_response(dag_cbor.encode(await run(lambda: accounts.delete_mfa(username, credid, auth))))

    app.add(LOGIN + "setLogin", set_login, max_body=16 * 1024)
    app.add(LOGIN + "getLogin", get_login)
    app.add(LOGIN + "listMfa", list_mfa)
    app.add(LOGIN + "addTotp", add_totp)
    app.add(LOGIN + "enableTotp", enable_totp)
    app.add(LOGIN + "genBackupCodes", gen_backup_codes)
    app.add(LOGIN + "deleteMfa", delete_mfa)
    return app
