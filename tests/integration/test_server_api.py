"""The storage/pointer/space HTTP API over a real loopback socket: Peergos conventions and bad input."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from nabu_py.blockstore import open_blockstore
from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.accounts.time_limited import sign_time
from peergos_node.client.http import (
    HttpMutablePointers,
    HttpSpace,
    HttpStorage,
    PeergosHttp,
    RemoteError,
    RemotePointerCas,
    RemoteQuotaExceeded,
)
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import sign_pointer
from peergos_node.server.api import build_api
from peergos_node.server.db import Database
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage
from peergos_node.server.http_server import ApiServer
from peergos_node.server.stores.metadata import SqlBlockMetadataStore
from peergos_node.server.stores.pointers import SqlPointerStore
from peergos_node.server.stores.transactions import SqlTransactionStore
from peergos_node.server.stores.usage import SqlUsageStore
from tests.helpers.peergos_users import PeergosUser, sign_block


async def raw_post_status(url: str, body_len: int) -> int:
    """POST a zero body of `body_len` bytes over a plain socket and return the status the server answers
    with, even if it stops reading early (httpx leaves its body generator unfinished in that case)."""
    import trio

    parts = urllib.parse.urlsplit(url)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        async with stream:
            head = (
                f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {body_len}\r\n\r\n"
            )
            await stream.send_all(head.encode())
            try:
                await stream.send_all(b"\x00" * min(body_len, 65536))
            except trio.BrokenResourceError:
                pass
            reply = await stream.receive_some(4096)
    return int(reply.split(b" ", 2)[1])


PEER = Cid.v1(0x72, b"\x00\x24\x08\x01\x12\x20" + bytes(range(32)))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[HomeStorage, str]]:
    db = Database.sqlite(tmp_path / "db.sqlite")
    blocks = open_blockstore("hybrid", tmp_path / "blocks", max_block_size=MAX_BLOCK_SIZE)
    storage = HomeStorage(
        PEER,
        blocks,
        SqlBlockMetadataStore(db),
        SqlTransactionStore(db),
        SqlPointerStore(db),
        SqlUsageStore(db),
        atomic=db.transaction,
    )
    async with trio.open_nursery() as nursery:
        url = await nursery.start(ApiServer(build_api(storage), "127.0.0.1", 0).serve)
        yield storage, url
        nursery.cancel_scope.cancel()
    blocks.close()
    db.close()


async def test_round_trip_through_http(server: tuple[HomeStorage, str]) -> None:
    storage, url = server
    user = PeergosUser.create("alice")
    user.signup(storage, quota=200_000)
    async with httpx.AsyncClient() as client:
        http = PeergosHttp(url, client)
        blocks, pointers, space = HttpStorage(http), HttpMutablePointers(http), HttpSpace(http)
        assert await blocks.id() == "12D3KooW" or (await blocks.id()).startswith("1")
        tid = await blocks.start_transaction(user.owner)
        data = b"fragment" * 1000
        [cid] = await blocks.put_blocks(
            user.owner, user.writer.hash, [sign_block(user.writer.pair, data)], [data], tid, raw=True
        )
        assert cid == Cid.for_block(CODEC_RAW, data)
        assert await blocks.get_block(user.owner, cid) == data
        assert await blocks.get_block(user.owner, Cid.for_block(CODEC_RAW, b"absent")) is None
        signed = await pointers.get_pointer(user.owner, user.writer.hash)
        assert signed == storage.get_pointer(user.writer.hash)
        assert await blocks.close_transaction(user.owner, tid)
        assert not await blocks.close_transaction(user.owner, tid)
        now = storage.now_ms()
        assert await space.usage(user.owner, sign_time(user.identity.pair.secret, now)) > len(data)
        assert await space.quota(user.owner, sign_time(user.identity.pair.secret, now)) == 200_000
        with pytest.raises(RemoteError, match="Stale auth time"):
            await space.usage(user.owner, sign_time(user.identity.pair.secret, now - 3_600_000))
        # CAS conflict comes back typed, with the server's current target
        w = user.writer
        stale = Cid.for_block(0x71, b"stale")
        with pytest.raises(RemotePointerCas) as e:
            await pointers.set_pointer(
                user.owner, w.hash, sign_pointer(w.pair, PointerUpdate(stale, None, 99))
            )
        assert e.value.existing == w.target
        big = b"\x00" * 900_000
        tid = await blocks.start_transaction(user.owner)
        with pytest.raises(RemoteQuotaExceeded):
            await blocks.put_blocks(user.owner, w.hash, [sign_block(w.pair, big)], [big], tid, raw=True)


async def test_peergos_http_conventions_and_bad_input(server: tuple[HomeStorage, str]) -> None:
    storage, url = server
    user = PeergosUser.create("bob")
    user.signup(storage)
    owner, writer = str(user.owner), str(user.writer.hash)
    before = (sorted(bytes(c) for c in storage.blocks.list()), storage.pointers.all())
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{url}/api/v0/id")
        assert r.status_code == 405, "GET where POST is required"
        r = await client.post(f"{url}/api/v0/nope")
        assert r.status_code == 404

        def q(params: dict[str, str]) -> str:
            return "&".join(f"{k}={v}" for k, v in params.items())

        tid = (await client.post(f"{url}/api/v0/transaction/start?owner={owner}")).text
        put = f"{url}/api/v0/block/put/bulk?" + q(
            {"format": "raw", "owner": owner, "transaction": tid, "writer": writer}
        )
        # malformed CBOR body
        r = await client.post(put, content=b"\xff\x00garbage")
        assert r.status_code == 400 and r.headers["trailer"]
        # oversize body is refused before it is buffered
        assert await raw_post_status(put, 3 * MAX_BLOCK_SIZE) == 413
        # forged signature
        block = b"data"
        body = dag_cbor.encode({"b": [block], "s": [sign_block(user.identity.pair, block)]})
        r = await client.post(put, content=body)
        assert r.status_code == 400 and "signature" in urllib.parse.unquote_plus(r.headers["trailer"])
        # bogus owner / cid parameters
        r = await client.post(f"{url}/api/v0/block/get?arg=notacid&owner={owner}")
        assert r.status_code == 400
        r = await client.post(f"{url}/api/v0/transaction/start?owner=zzzz")
        assert r.status_code == 400
        # pointer garbage
        r = await client.post(
            f"{url}/peergos/v0/mutable/setPointer?owner={owner}&writer={writer}", content=b"\x01" * 100
        )
        assert r.status_code == 400
        assert (
            await raw_post_status(f"{url}/peergos/v0/mutable/setPointer?owner={owner}&writer={writer}", 5000)
            == 413
        )
        r = await client.post(f"{url}/peergos/v0/mutable/setPointers?owner={owner}", content=b"\xa1")
        assert r.status_code == 400
        # bogus BAT / auth on a read
        r = await client.post(f"{url}/api/v0/block/get?arg={user.writer.target}&owner={owner}&bat=zjunk")
        assert r.status_code == 400
    assert (sorted(bytes(c) for c in storage.blocks.list()), storage.pointers.all()) == before, (
        "nothing stored"
    )


async def test_champ_get_bulk_accepts_any_multibase_caps(server: tuple[HomeStorage, str]) -> None:
    """Java clients send `caps` in base58btc; ours sends base16 (cheaper to make): same answer."""
    import hashlib

    from nabu_py.multiformats import multibase
    from peergos_node.champ import identity_hasher, verify_paths

    storage, url = server
    user = PeergosUser.create("carol")
    user.signup(storage, quota=10_000_000)
    keys = [hashlib.sha256(bytes([i])).digest() for i in range(25)]
    tid = storage.start_transaction(user.owner)
    for k in keys:
        user.add_file(storage, k, k, tid)
    root = user.writer_data().tree
    assert root is not None
    wanted = keys[2:22]
    raw = dag_cbor.encode([{"m": k} for k in wanted])
    answers = []
    async with httpx.AsyncClient() as client:
        for base in ("base58btc", "base16", "base32"):
            query = urllib.parse.urlencode(
                {"arg": str(root), "owner": str(user.owner), "caps": multibase.encode(raw, base)}
            )
            r = await client.post(f"{url}/api/v0/champ/get/bulk?{query}")
            assert r.status_code == 200, r.text
            answers.append(sorted(dag_cbor.decode(r.content)))
        via_client = await HttpStorage(PeergosHttp(url, client)).champ_lookup(
            user.owner, root, [(k, None) for k in wanted]
        )
    assert answers[0] == answers[1] == answers[2] == sorted(via_client)
    values = verify_paths(root, wanted, via_client, identity_hasher)
    assert all(isinstance(v, Cid) for v in values.values())


async def test_champ_bulk_gives_value_blocks_only_with_their_bat(server: tuple[HomeStorage, str]) -> None:
    """`champ/get/bulk` with the metadata cache filled by the uploads, and from a restarted server (cold
    cache: the value blocks' metadata comes from SQLite in one query per request)."""
    import hashlib

    from peergos_node.champ import identity_hasher, verify_paths
    from peergos_node.crypto.bat import Bat, BatWithId
    from peergos_node.crypto.rng import DeterministicRng
    from peergos_node.server.stores.metadata import CachingBlockMetadataStore

    storage, url = server
    user = PeergosUser.create("alice")
    user.signup(storage)
    rng = DeterministicRng(b"bulk bats")
    bat, other = Bat.random(rng), Bat.random(rng)
    good, wrong = BatWithId(bat, bat.calculate_id()), BatWithId(other, other.calculate_id())
    keys = [hashlib.sha256(bytes([i])).digest() for i in range(20)]
    tid = storage.start_transaction(user.owner)
    values = [user.add_file(storage, k, k, tid, bats=[bat.calculate_id()]) for k in keys]
    root = user.writer_data().tree
    assert root is not None
    caps = [(k, good if i % 3 == 0 else wrong if i % 3 == 1 else None) for i, k in enumerate(keys)]
    readable = {user.blocks.get(v) for i, v in enumerate(values) if i % 3 == 0}
    all_values = {user.blocks.get(v) for v in values}
    assert isinstance(storage.metadata, CachingBlockMetadataStore)
    restarted = HomeStorage(
        PEER,
        storage.blocks,
        storage.metadata.inner,
        storage.transactions,
        storage.pointers,
        storage.usage,
    )
    async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
        url2 = await nursery.start(ApiServer(build_api(restarted), "127.0.0.1", 0).serve)
        for base in (url, url2, url2):
            blocks = await HttpStorage(PeergosHttp(base, client)).champ_lookup(user.owner, root, caps)
            assert {b for b in blocks if b in all_values} == readable
            assert len(verify_paths(root, keys, blocks, identity_hasher)) == len(keys)
        nursery.cancel_scope.cancel()
    cache = restarted.metadata
    assert isinstance(cache, CachingBlockMetadataStore)
    assert (cache.misses, cache.hits) == (len(keys), len(keys)), "read from SQLite once, then from memory"
