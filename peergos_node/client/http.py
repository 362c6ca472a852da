"""HTTP access to a Peergos server's API (the client half of spec/peergos.md §12).

Every call is a POST (Peergos servers refuse other methods unless public). A 400 reply carries the
server's message URL-encoded in the `Trailer` header; it is turned back into the matching typed error
(`PointerCasError`, `QuotaExceeded`, or `RemoteError`) so callers can react (merge on CAS, report quota).
"""

from __future__ import annotations

import gzip
import json
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import Cid
from peergos_node.accounts.backup_codes import BackupCodes
from peergos_node.accounts.login_data import LoginData, LoginResponse
from peergos_node.accounts.mfa import MultiFactorAuthMethod, MultiFactorAuthResponse
from peergos_node.accounts.totp import TotpKey
from peergos_node.corenode.claims import UserPublicKeyLink
from peergos_node.corenode.messages import (
    DifficultyResponse,
    GetPublicKeyResponse,
    GetUsernameRequest,
    GetUsernameResponse,
    SignupRequest,
    UpdateChainRequest,
    UsernameRequest,
    decode_chain_response,
    decode_usernames_gzip,
)
from peergos_node.crypto.bat import BatWithId
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import PublicSigningKey
from peergos_node.errors import PeergosError
from peergos_node.mutable.signed_pointer import MultiWriterCommit, SignedPointerUpdate

CORE = "/peergos/v0/core/"
LOGIN = "/peergos/v0/login/"

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class RemoteError(PeergosError):
    """The server refused a request; `message` is what it said."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.message = message


class RemotePointerCas(RemoteError):
    """The server's pointer is not the one the update expected (Peergos `PointerCasException`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        parts = message[len("PointerCAS:") :].split(",")
        self.existing: Cid | None = _maybe_cid(parts[0]) if parts else None
        self.sequence: int | None = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class RemoteQuotaExceeded(RemoteError):
    """The server refused a write: storage quota reached."""


class RemoteRateLimited(RemoteError):
    """Too many requests (429): try again later."""


def _maybe_cid(text: str) -> Cid | None:
    try:
        return None if text in ("", "EMPTY") else Cid.parse(text)
    except DecodeError:
        return None


class _OneShotBody(httpx.AsyncByteStream):
    """A request body sent as one chunk.

    httpx wraps `bytes` in an async *generator*; when a request is cancelled mid-send (a sibling upload
    failed, say) that generator is collected unfinished and trio reports it. A plain iterator has no such
    state, so cancelling a request leaves nothing behind.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Once(self._data)


class _Once:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


@dataclass
class PeergosHttp:
    """POSTs to one server (a base URL such as http://127.0.0.1:8000)."""

    base_url: str
    client: httpx.AsyncClient

    async def post(self, path: str, params: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
        """POST and return the body, raising the typed error a refusal stands for."""
        query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            request = self.client.build_request("POST", url, content=body, timeout=DEFAULT_TIMEOUT)
            request.stream = _OneShotBody(body)
            resp = await self.client.send(request)
        except httpx.HTTPError as e:
            raise RemoteError(0, f"cannot reach {self.base_url}: {type(e).__name__}: {e}") from None
        if resp.status_code == 200:
            return resp.content
        message = urllib.parse.unquote_plus(resp.headers.get("trailer", ""))
        if message.startswith("PointerCAS:"):
            raise RemotePointerCas(resp.status_code, message)
        if "Storage quota reached" in message:
            raise RemoteQuotaExceeded(resp.status_code, message)
        if resp.status_code == 429:
            raise RemoteRateLimited(resp.status_code, message)
        raise RemoteError(resp.status_code, message or f"HTTP {resp.status_code} from {path}")


class HttpStorage:
    """Block storage (`/api/v0/...`) of a Peergos server."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def id(self) -> str:
        """The server's peer id (base58)."""
        return str(json.loads(await self.http.post("/api/v0/id"))["ID"])

    async def start_transaction(self, owner: PublicKeyHash) -> str:
        """Open a write transaction."""
        return (await self.http.post("/api/v0/transaction/start", [("owner", str(owner))])).decode()

    async def close_transaction(self, owner: PublicKeyHash, tid: str) -> bool:
        """Close a write transaction."""
        out = await self.http.post("/api/v0/transaction/close", [("arg", tid), ("owner", str(owner))])
        return out.strip() == b"1"

    async def put_blocks(
        self,
        owner: PublicKeyHash,
        writer: PublicKeyHash,
        signatures: Sequence[bytes],
        blocks: Sequence[bytes],
        tid: str,
        raw: bool,
    ) -> list[Cid]:
        """Write signed blocks (one request; callers group them to ≤ the server's limit)."""
        body = dag_cbor.encode({"b": list(blocks), "s": list(signatures)})
        params = [
            ("format", "raw" if raw else "dag-cbor"),
            ("owner", str(owner)),
            ("transaction", tid),
            ("writer", str(writer)),
        ]
        out = (await self.http.post("/api/v0/block/put/bulk", params, body)).decode()
        decoder = json.JSONDecoder()
        cids: list[Cid] = []
        i = 0
        while i < len(out):
            obj, i = decoder.raw_decode(out, i)
            cids.append(Cid.parse(obj["Hash"]))
        if len(cids) != len(blocks):
            raise RemoteError(200, f"server returned {len(cids)} hashes for {len(blocks)} blocks")
        return cids

    async def get_block(self, owner: PublicKeyHash, cid: Cid, bat: BatWithId | None = None) -> bytes | None:
        """A block (hash-verified here), or None if the server does not have it."""
        if cid.is_identity:
            return cid.digest
        params = [("arg", str(cid)), ("owner", str(owner))]
        if bat is not None:
            params.append(("bat", bat.encode()))
        data = await self.http.post("/api/v0/block/get", params)
        if not data:
            return None
        cid.verify(data)
        return data

    async def champ_lookup(
        self, owner: PublicKeyHash, root: Cid, caps: Sequence[tuple[bytes, BatWithId | None]]
    ) -> list[bytes]:
        """Blocks of CHAMP lookups (`champ/get/bulk`); callers verify them with `champ.verify_paths`."""
        encoded = [{"m": k} if b is None else {"m": k, "b": b.to_cbor()} for k, b in caps]
        caps_text = multibase.encode(dag_cbor.encode(encoded), "base58btc")
        data = await self.http.post(
            "/api/v0/champ/get/bulk", [("arg", str(root)), ("owner", str(owner)), ("caps", caps_text)]
        )
        value = dag_cbor.decode(data)
        if type(value) is not list or not all(type(b) is bytes for b in value):
            raise DecodeError("champ/get/bulk: expected a CBOR list of byte strings")
        return list(value)


class HttpMutablePointers:
    """Mutable pointers (`/peergos/v0/mutable/...`) of a Peergos server."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def get_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> bytes | None:
        """The signed pointer, unverified (callers verify it against the writer key)."""
        out = await self.http.post(
            "/peergos/v0/mutable/getPointer", [("owner", str(owner)), ("writer", str(writer))]
        )
        return out or None

    async def set_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash, signed: bytes) -> bool:
        """Commit one signed pointer update."""
        out = await self.http.post(
            "/peergos/v0/mutable/setPointer", [("owner", str(owner)), ("writer", str(writer))], signed
        )
        return out == b"\x01"

    async def set_pointers(self, owner: PublicKeyHash, updates: Sequence[SignedPointerUpdate]) -> bool:
        """Commit several writers' pointers atomically."""
        body = MultiWriterCommit(tuple(updates)).serialize()
        return (
            await self.http.post("/peergos/v0/mutable/setPointers", [("owner", str(owner))], body) == b"\x01"
        )


class HttpSpace:
    """Usage and quota (`/peergos/v0/storage/...`)."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def usage(self, owner: PublicKeyHash, signed_time: bytes) -> int:
        """Bytes the owner uses (auth: identity-signed time, 300 s window)."""
        out = await self.http.post(
            "/peergos/v0/storage/usage", [("owner", str(owner)), ("auth", signed_time.hex())]
        )
        return _cbor_int(out)

    async def quota(self, owner: PublicKeyHash, signed_time: bytes) -> int:
        """The owner's quota (auth: identity-signed time, 24 h window)."""
        out = await self.http.post(
            "/peergos/v0/storage/quota", [("owner", str(owner)), ("auth", signed_time.hex())]
        )
        return _cbor_int(out)


def _cbor_int(data: bytes) -> int:
    value = dag_cbor.decode(data)
    if type(value) is not int:
        raise DecodeError("expected a CBOR integer")
    return value


class HttpCoreNode:
    """The PKI API (`/peergos/v0/core/...`) of a server (its mirror answers lookups locally)."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def get_chain(self, username: str) -> tuple[UserPublicKeyLink, ...]:
        """The claim chain of a name (empty if unclaimed)."""
        return decode_chain_response(
            await self.http.post(CORE + "getChain", body=UsernameRequest(username).encode())
        )

    async def get_public_key(self, username: str) -> PublicKeyHash | None:
        """The identity key hash that holds a name."""
        body = await self.http.post(CORE + "getPublicKey", body=UsernameRequest(username).encode())
        return GetPublicKeyResponse.decode(body).owner

    async def get_username(self, key: PublicKeyHash) -> str:
        """The name of an identity key."""
        body = await self.http.post(CORE + "getUsername", body=GetUsernameRequest(key).encode())
        return GetUsernameResponse.decode(body).username

    async def get_usernames(self, prefix: str = "") -> list[str]:
        """Names starting with a prefix."""
        body = await self.http.post(CORE + "getUsernamesGzip/" + prefix)
        if body[:2] != b"\x1f\x8b":  # the HTTP client already undid Content-Encoding: gzip
            body = gzip.compress(body)
        return decode_usernames_gzip(body)

    async def signup(self, req: SignupRequest) -> DifficultyResponse:
        """Create an account (atomic OpLog replay after the PKI accepts the claim)."""
        return DifficultyResponse.decode(await self.http.post(CORE + "signup", body=req.encode()))

    async def update_chain(self, req: UpdateChainRequest) -> DifficultyResponse:
        """Renew, re-home or re-key a name."""
        return DifficultyResponse.decode(await self.http.post(CORE + "updateChain", body=req.encode()))


class HttpAccount:
    """Login data and second factors (`/peergos/v0/login/...`)."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def set_login(self, login: LoginData, auth: bytes) -> bool:
        """Store login data (auth: the identity's detached signature over it)."""
        out = await self.http.post(LOGIN + "setLogin", [("auth", auth.hex())], login.serialize())
        return out == b"\x01"

    async def get_login(
        self,
        username: str,
        reader: PublicSigningKey,
        auth: bytes,
        mfa: MultiFactorAuthResponse | None = None,
        mfa_types: str = "1,3",
    ) -> LoginResponse:
        """The encrypted login data, or a second-factor challenge."""
        params = [
            ("username", username),
            ("author", reader.serialize().hex()),
            ("auth", auth.hex()),
            ("mfaTypes", mfa_types),
        ]
        if mfa is not None:
            params.append(("mfa", mfa.serialize().hex()))
        return LoginResponse.deserialize(await self.http.post(LOGIN + "getLogin", params))

    async def _mfa_call(
        self, method: str, username: str, auth: bytes, extra: Sequence[tuple[str, str]] = ()
    ) -> bytes:
        return await self.http.post(LOGIN + method, [("username", username), ("auth", auth.hex()), *extra])

    async def list_mfa(self, username: str, auth: bytes) -> list[MultiFactorAuthMethod]:
        """Second factors (auth: identity-signed request for this path)."""
        items = dag_cbor.decode(await self._mfa_call("listMfa", username, auth))
        if type(items) is not list:
            raise DecodeError("listMfa: expected a CBOR list")
        return [MultiFactorAuthMethod.from_cbor(i) for i in items]

    async def add_totp(self, username: str, auth: bytes) -> TotpKey:
        """Create a TOTP factor (enable it with a code)."""
        return TotpKey.from_string((await self._mfa_call("addTotp", username, auth)).decode())

    async def enable_totp(self, username: str, credential_id: bytes, code: str, auth: bytes) -> bool:
        """Enable a TOTP factor."""
        out = await self._mfa_call(
            "enableTotp", username, auth, [("credid", credential_id.hex()), ("code", code)]
        )
        return dag_cbor.decode(out) is True

    async def gen_backup_codes(self, username: str, auth: bytes) -> BackupCodes:
        """Single-use backup codes."""
        return BackupCodes.deserialize(await self._mfa_call("genBackupCodes", username, auth))

    async def delete_mfa(self, username: str, credential_id: bytes, auth: bytes) -> bool:
        """Remove a factor."""
        out = await self._mfa_call("deleteMfa", username, auth, [("credid", credential_id.hex())])
        return dag_cbor.decode(out) is True
