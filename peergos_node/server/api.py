"""The home server's HTTP API for storage, pointers and space (spec/peergos.md §12.1, §12.3, §12.6).

Paths, parameters and body/response formats are Peergos' (`StorageHandler`, `MutationHandler`,
`SpaceHandler`) so a Peergos client can talk to us:

| path | request | response |
|---|---|---|
| `/api/v0/id` | - | JSON `{"ID": peer id}` |
| `/api/v0/transaction/start?owner` | - | the transaction id as text |
| `/api/v0/transaction/close?arg=tid&owner` | - | `1` / `0` |
| `/api/v0/block/put/bulk?format&owner&transaction&writer` | CBOR `{b: blocks, s: sigs}` | JSON `{"Hash"}`s |
| `/api/v0/block/get?arg=cid&owner[&bat=][&auth=]` | - | block bytes (empty body = absent) |
| `/api/v0/block/stat?arg=cid` | - | JSON `{"Size": n}` |
| `/api/v0/champ/get?arg=root&arg=hex(key)&owner[&bat]` | - | CBOR list of block byte strings |
| `/api/v0/champ/get/bulk?arg=root&owner&caps=z...` | - | CBOR list of block byte strings |
| `/peergos/v0/mutable/getPointer?owner&writer` | - | signed pointer (empty = none) |
| `/peergos/v0/mutable/setPointer?owner&writer` | signed pointer | one byte: 1 |
| `/peergos/v0/mutable/setPointers?owner` | CBOR MultiWriterCommit | one byte: 1 |
| `/peergos/v0/storage/usage?owner&auth` | - | CBOR int |
| `/peergos/v0/storage/quota?owner&auth` | - | CBOR int |

Blocking work (database, block store, signature checks) runs in worker threads behind a bounded limiter.
The requesting peer for BAT auth is the `Source` header set by the `/http` proxy for p2p calls, else
this node (a local client).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import trio
from starlette.responses import Response

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import Cid
from peergos_node.accounts.time_limited import verify_signed_time
from peergos_node.cbor import as_bytes, expect_list, expect_map, field
from peergos_node.crypto.bat import BatWithId
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import AuthError
from peergos_node.mutable.signed_pointer import MultiWriterCommit
from peergos_node.server.home_storage import (
    MAX_BLOCKS_PER_PUT,
    MAX_CHAMP_GETS,
    MAX_GROUP_SIZE,
    ChunkMirrorCap,
    HomeStorage,
)
from peergos_node.server.http import (
    ApiApp,
    ApiRequest,
    Handler,
    HttpError,
    SyncHandler,
    bool_response,
    bytes_response,
    json_response,
    json_text_response,
)

T = TypeVar("T")

USAGE_AUTH_SECONDS = 300
QUOTA_AUTH_SECONDS = 24 * 3600


def parse_owner(req: ApiRequest, key: str = "owner") -> PublicKeyHash:
    """A PublicKeyHash query parameter (base58btc CID)."""
    try:
        return PublicKeyHash.parse(req.arg(key))
    except (DecodeError, ValueError) as e:
        raise HttpError(f"invalid {key}: {e}") from None


def parse_cid(text: str) -> Cid:
    """A CID parameter."""
    try:
        return Cid.parse(text)
    except DecodeError as e:
        raise HttpError(f"invalid cid: {e}") from None


def parse_bat(req: ApiRequest) -> BatWithId | None:
    """The optional `bat` parameter (multibase CBOR BatWithId)."""
    text = req.opt("bat")
    if not text:
        return None
    try:
        return BatWithId.decode(text)
    except (DecodeError, ValueError) as e:
        raise HttpError(f"invalid bat: {e}") from None


def parse_requester(req: ApiRequest, default: Cid) -> Cid:
    """The peer a block request comes from: the /http proxy's `Source` header, else this node."""
    source = req.source
    if not source:
        return default
    try:
        from nabu_py.multiformats import multihash

        raw = multibase.b58decode(source) if not source.startswith(("z", "b")) else None
        if raw is not None:
            multihash.decode(raw)
            return Cid.v1(0x72, raw)
        return Cid.parse(source)
    except (DecodeError, ValueError):
        raise HttpError("invalid Source header") from None


def parse_block_write_group(body: bytes) -> tuple[list[bytes], list[bytes]]:
    """Peergos `BlockWriteGroup` CBOR `{b: [blocks], s: [signatures]}`."""
    m = expect_map(dag_cbor.decode(body, max_size=MAX_GROUP_SIZE + 64 * 1024), "BlockWriteGroup")
    blocks = expect_list(field(m, "b", "BlockWriteGroup"), "BlockWriteGroup.b", max_len=MAX_BLOCKS_PER_PUT)
    sigs = expect_list(field(m, "s", "BlockWriteGroup"), "BlockWriteGroup.s", max_len=MAX_BLOCKS_PER_PUT)
    return (
        [as_bytes(b, "BlockWriteGroup.b[]") for b in blocks],
        [as_bytes(s, "BlockWriteGroup.s[]", max_len=200) for s in sigs],
    )


def build_api(storage: HomeStorage, *, public_server: bool = False, threads: int = 16) -> ApiApp:
    """The storage/pointer/space API over a HomeStorage."""
    limiter = trio.CapacityLimiter(threads)
    peer_id_text = _peer_id_text(storage.peer_id)

    async def run(fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=limiter)

    app = ApiApp({}, public_server=public_server, name="peergos-api")

    async def id_(req: ApiRequest) -> Response:
        return json_response({"ID": peer_id_text})

    async def tx_start(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        return json_text_response(await run(lambda: storage.start_transaction(owner)))

    async def tx_close(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        tid = req.arg("arg")
        ok = await run(lambda: storage.close_transaction(owner, tid))
        return json_text_response("1" if ok else "0")

    async def block_put_bulk(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        writer = parse_owner(req, "writer")
        fmt = req.arg("format")
        if fmt not in ("raw", "dag-cbor", "cbor"):
            raise HttpError(f"unsupported block format {fmt!r}")
        tid = req.arg("transaction")
        blocks, sigs = parse_block_write_group(req.body)
        cids = await run(lambda: storage.put_blocks(owner, writer, sigs, blocks, tid, fmt == "raw"))
        return json_text_response("".join(json.dumps({"Hash": str(c)}, separators=(",", ":")) for c in cids))

    def threaded(fn: SyncHandler) -> Handler:
        """The async form of a blocking read handler: all of it in a worker thread."""

        async def handler(req: ApiRequest) -> Response:
            return await run(lambda: fn(req))

        return handler

    # Read paths are blocking functions: the threaded API server runs them in the connection's thread,
    # an ASGI server through `threaded` (see `Endpoint.sync_handler`).
    def block_get(req: ApiRequest) -> Response:
        text = req.arg("arg")
        cid = parse_cid(text)
        bat = parse_bat(req)
        auth = req.opt("auth")
        requester = parse_requester(req, storage.peer_id)
        try:
            data = storage.get_block(cid, bat, auth, requester)
        except AuthError as e:
            raise HttpError(str(e), 403 if public_server else 400) from None
        if data is None:
            return bytes_response(b"")
        # base58btc text is the canonical form (str(cid)): reuse it rather than encode the CID again
        etag = text if text[:1] == ("z" if cid.version == 1 else "Q") else str(cid)
        return bytes_response(data, etag=etag)

    def block_stat(req: ApiRequest) -> Response:
        cid = parse_cid(req.arg("arg"))
        size = storage.block_size(cid)
        return json_response({"Size": size or 0})

    def champ_get(req: ApiRequest) -> Response:
        args = req.args("arg")
        if len(args) != 2:
            raise HttpError("champ/get needs arg=root&arg=hex(mapKey)")
        root = parse_cid(args[0])
        try:
            key = bytes.fromhex(args[1])
        except ValueError:
            raise HttpError("map key must be hex") from None
        caps = [ChunkMirrorCap(key, parse_bat(req))]
        blocks = storage.champ_lookup(root, caps)
        return bytes_response(dag_cbor.encode(blocks), etag=str(root))

    def champ_get_bulk(req: ApiRequest) -> Response:
        args = req.args("arg")
        if not args:
            raise HttpError("champ/get/bulk needs arg=root")
        root = parse_cid(args[0])
        caps_text = req.opt("caps")
        if caps_text is not None:
            try:
                raw = multibase.decode(caps_text)
                items = expect_list(dag_cbor.decode(raw), "caps", max_len=MAX_CHAMP_GETS + 1)
                caps = [ChunkMirrorCap.from_cbor(i) for i in items]
            except DecodeError as e:
                raise HttpError(f"invalid caps: {e}") from None
        else:
            if len(args) < 2:
                raise HttpError("champ/get/bulk needs caps or a map key")
            try:
                caps = [ChunkMirrorCap(bytes.fromhex(args[1]), parse_bat(req))]
            except ValueError:
                raise HttpError("map key must be hex") from None
        blocks = storage.champ_lookup(root, caps)
        return bytes_response(dag_cbor.encode(blocks), etag=str(root))

    def get_pointer(req: ApiRequest) -> Response:
        parse_owner(req)
        writer = parse_owner(req, "writer")
        value = storage.get_pointer(writer)
        return bytes_response(value or b"")

    async def set_pointer(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        writer = parse_owner(req, "writer")
        signed = req.body
        return bool_response(await run(lambda: storage.set_pointer(owner, writer, signed)))

    async def set_pointers(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        commit = MultiWriterCommit.deserialize(req.body)
        return bool_response(await run(lambda: storage.set_pointers(owner, commit.updates)))

    async def usage(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        _check_time_auth(req, owner, USAGE_AUTH_SECONDS, storage)
        return bytes_response(dag_cbor.encode(await run(lambda: storage.usage_of(owner))))

    async def quota(req: ApiRequest) -> Response:
        owner = parse_owner(req)
        _check_time_auth(req, owner, QUOTA_AUTH_SECONDS, storage)
        return bytes_response(dag_cbor.encode(await run(lambda: storage.quota_of(owner))))

    app.add("/api/v0/id", id_)
    app.add("/api/v0/transaction/start", tx_start)
    app.add("/api/v0/transaction/close", tx_close)
    app.add("/api/v0/block/put/bulk", block_put_bulk, max_body=MAX_GROUP_SIZE + 64 * 1024)
    app.add("/api/v0/block/get", threaded(block_get), sync_handler=block_get)
    app.add("/api/v0/block/stat", threaded(block_stat), sync_handler=block_stat)
    app.add("/api/v0/champ/get", threaded(champ_get), sync_handler=champ_get)
    app.add("/api/v0/champ/get/bulk", threaded(champ_get_bulk), sync_handler=champ_get_bulk)
    app.add("/peergos/v0/mutable/getPointer", threaded(get_pointer), sync_handler=get_pointer)
    app.add("/peergos/v0/mutable/setPointer", set_pointer, max_body=1024)
    app.add("/peergos/v0/mutable/setPointers", set_pointers, max_body=64 * 1024)
    app.add("/peergos/v0/storage/usage", usage)
    app.add("/peergos/v0/storage/quota", quota)
    return app


def _check_time_auth(req: ApiRequest, owner: PublicKeyHash, window_s: int, storage: HomeStorage) -> None:
    try:
        signed = bytes.fromhex(req.arg("auth"))
    except ValueError:
        raise HttpError("auth must be hex") from None
    verify_signed_time(signed, owner, window_s, storage.now_ms())


def _peer_id_text(peer_id: Cid) -> str:
    return multibase.b58encode(peer_id.multihash)
