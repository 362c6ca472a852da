"""HTTP access to a Peergos server's API (the client half of spec/peergos.md §12).

Every call is a POST (Peergos servers refuse other methods unless public). A 400 reply carries the
server's message URL-encoded in the `Trailer` header; it is turned back into the matching typed error
(`PointerCasError`, `QuotaExceeded`, or `RemoteError`) so callers can react (merge on CAS, report quota).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.bat import BatWithId
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import PeergosError
from peergos_node.mutable.signed_pointer import MultiWriterCommit, SignedPointerUpdate

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


def _maybe_cid(text: str) -> Cid | None:
    try:
        return None if text in ("", "EMPTY") else Cid.parse(text)
    except DecodeError:
        return None


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
            resp = await self.client.post(url, content=body, timeout=DEFAULT_TIMEOUT)
        except httpx.HTTPError as e:
            raise RemoteError(0, f"cannot reach {self.base_url}: {type(e).__name__}: {e}") from None
        if resp.status_code == 200:
            return resp.content
        message = urllib.parse.unquote_plus(resp.headers.get("trailer", ""))
        if message.startswith("PointerCAS:"):
            raise RemotePointerCas(resp.status_code, message)
        if "Storage quota reached" in message:
            raise RemoteQuotaExceeded(resp.status_code, message)
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
