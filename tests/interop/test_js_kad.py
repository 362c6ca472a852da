"""Kademlia DHT interop with js-libp2p's @libp2p/kad-dht (tests/interop/js, server mode, loopback
addresses kept, js-ipns validator and selector), in both directions:

| operation      | py asks, js answers                      | js asks, py answers                      |
|----------------|------------------------------------------|------------------------------------------|
| find_peer      | py finds a py peer only a js node knows  | js finds a js and a py peer only py knows |
| providers      | py finds a provider js stored for js     | js finds a provider py stored for py     |
| IPNS put/get   | js publishes (V1+V2 and V2-only), py     | py publishes, js validates, stores and   |
|                | validates, stores and resolves           | resolves it                              |

Every js node is a separate OS process (jspeer.py); every py node a P2PHost with a KademliaService.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import trio

from nabu_py.multiformats.cid import Cid
from nabu_py.p2p import PeerId
from nabu_py.protocols.ipns import create_record, routing_key
from tests.helpers.kad_net import Node, start_node
from tests.helpers.p2p import wait_for
from tests.interop.jspeer import JsPeer, js_peer

SECURITY = "tls"


async def _js_knows(js: JsPeer, *peers: PeerId) -> None:
    """Wait until the js node's routing table holds `peers` (added after identify)."""
    want = {str(p) for p in peers}
    with trio.fail_after(15):
        while True:
            table = set((await js.command("dht-table"))["peers"])
            if want <= table:
                return
            await trio.sleep(0.1)


async def _py_knows(node: Node, peer: str) -> None:
    await wait_for(lambda: PeerId.parse(peer).to_bytes() in node.dht.engine.table, within=15)


async def test_find_peer_py_through_js_and_js_through_py() -> None:
    async with AsyncExitStack() as stack:
        j1 = await stack.enter_async_context(js_peer(SECURITY, kad=True))
        j2 = await stack.enter_async_context(js_peer(SECURITY, kad=True))
        p1 = await start_node(stack)
        p2 = await start_node(stack)
        p3 = await start_node(stack)
        with trio.fail_after(60):
            # py -> js: p1 and p2 know only j1; p1 looks p2 up and dials it by peer id.
            await p1.host.connect(j1.addrs[0])
            await p2.host.connect(j1.addrs[0])
            await _js_knows(j1, p1.peer_id, p2.peer_id)
            await _py_knows(p1, j1.peer_id)
            assert not p1.host.is_connected(p2.peer_id) and p1.host.address_book.get(p2.peer_id) == []
            found = await p1.dht.find_peer(p2.peer_id)
            assert [str(a) for a in found] == [str(a) for a in p2.host.listen_addrs]
            p1.host.address_book.remove(p2.peer_id)
            assert await p1.host.connect(p2.peer_id) == p2.peer_id  # the peer router asked j1

            # js -> py: p3 knows j2 and p2 (its table), j1 knows only p3 among them.
            await j2.command("dial", addr=p3.addr)
            await p3.host.connect(p2.addr)
            await _py_knows(p3, j2.peer_id)
            await _py_knows(p3, str(p2.peer_id))
            await j1.command("dial", addr=p3.addr)
            await _js_knows(j1, p3.peer_id)
            got = await j1.command("find-peer", peer=j2.peer_id)
            assert j2.addrs[0].rsplit("/p2p/", 1)[0] in got["addrs"]
            got = await j1.command("find-peer", peer=str(p3.peer_id))
            assert str(p3.host.listen_addrs[0]) in got["addrs"]


async def test_providers_js_to_py_and_py_to_js() -> None:
    async with AsyncExitStack() as stack:
        j1 = await stack.enter_async_context(js_peer(SECURITY, kad=True))
        j2 = await stack.enter_async_context(js_peer(SECURITY, kad=True))
        p1 = await start_node(stack)
        p2 = await start_node(stack)
        from_js = Cid.for_block(0x55, b"provided by js")
        from_py = Cid.for_block(0x71, b"provided by py")
        with trio.fail_after(60):
            await p1.host.connect(j1.addrs[0])
            await _js_knows(j1, p1.peer_id)
            await _py_knows(p1, j1.peer_id)

            # js provides: its ADD_PROVIDER lands in p1's store, and p2 (knowing only p1) finds it.
            await j1.command("provide", cid=str(from_js))
            await wait_for(lambda: p1.dht.engine.providers.get(from_js.multihash, time.time(), 20) != [])
            await p2.host.connect(p1.addr)
            await _py_knows(p2, str(p1.peer_id))
            found = await p2.dht.find_providers(from_js)
            assert [str(p.peer_id) for p in found] == [j1.peer_id]
            assert [str(a) for a in found[0].addrs] == [j1.addrs[0].rsplit("/p2p/", 1)[0]]

            # py provides: j1 stores p1's record, and j2 (knowing only j1) finds p1 with its address.
            result = await p1.dht.provide(from_py)
            assert PeerId.parse(j1.peer_id).to_bytes() in result.succeeded
            await j2.command("dial", addr=j1.addrs[0])
            await _js_knows(j2, PeerId.parse(j1.peer_id))
            providers = (await j2.command("find-providers", cid=str(from_py), count=1))["providers"]
            assert [p["id"] for p in providers] == [str(p1.peer_id)]
            assert str(p1.host.listen_addrs[0]) in providers[0]["addrs"]


async def test_ipns_js_to_py_and_py_to_js() -> None:
    async with AsyncExitStack() as stack:
        j1 = await stack.enter_async_context(js_peer(SECURITY, kad=True))
        p1 = await start_node(stack)
        p2 = await start_node(stack)
        js_name = PeerId.parse(j1.peer_id)
        with trio.fail_after(60):
            for p in (p1, p2):
                await p.host.connect(j1.addrs[0])
                await _py_knows(p, j1.peer_id)
            await p1.host.connect(p2.addr)
            await _js_knows(j1, p1.peer_id, p2.peer_id)

            # js publishes a V1+V2 record; our validator accepts js-ipns' format and both py nodes store it.
            pub = await j1.command("ipns-publish", value="/ipfs/bafkqaaa", seq=1, lifetimeMs=3_600_000)
            assert bytes.fromhex(pub["key"]) == routing_key(js_name)
            got = await p2.dht.get_ipns(js_name)
            assert got is not None and (got.value, got.sequence) == (b"/ipfs/bafkqaaa", 1)
            assert got.raw == bytes.fromhex(pub["record"])
            # ... then a V2-only record with a higher sequence number.
            await j1.command("ipns-publish", value="/ipfs/bafkqaaa", seq=2, lifetimeMs=3_600_000, v1=False)
            got = await p1.dht.get_ipns(js_name, quorum=2)
            assert got is not None and got.sequence == 2

            # py publishes: js validates (and stores) our record, then resolves it.
            ours = create_record(
                p1.host.identity,
                b"/ipfs/bafkqaaa",
                7,
                expires_at=time.time() + 3600,
                extensions={"_peergos_rr": {"s": 7}},
            )
            result = await p1.dht.put_ipns(p1.peer_id, ours)
            assert js_name.to_bytes() in result.succeeded and not result.failed
            resolved = await j1.command("ipns-get", name=str(p1.peer_id))
            assert resolved["value"] == "/ipfs/bafkqaaa" and resolved["sequence"] == "7"
