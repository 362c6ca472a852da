"""KademliaService over real loopback hosts (one process, several hosts): peer routing and dial by peer id,
server and client modes, providers, IPNS put/get, persistence, stream reuse in both directions."""

from __future__ import annotations

import threading
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from nabu_py.multiformats.cid import Cid
from nabu_py.p2p import HostIdentity, NoAddressesError, P2PStream, ProtocolNegotiationError
from nabu_py.protocols.ipns import create_record, routing_key
from nabu_py.protocols.kademlia.errors import InvalidRecord, ServiceStopped
from nabu_py.protocols.kademlia.messages import PROTOCOL_ID, Message, MessageType, Record
from nabu_py.protocols.kademlia.records import StoredRecord
from nabu_py.protocols.kademlia.service import DhtConfig, KademliaService, is_public_multiaddr
from nabu_py.protocols.kademlia.sqlite_stores import SqliteRecordStore
from tests.helpers.kad_net import FAST, fake_server, raw_host, send_request, start_network, start_node
from tests.helpers.p2p import wait_for


async def test_find_peer_and_dial_by_peer_id_through_the_dht() -> None:
    async with AsyncExitStack() as stack:
        _a, b, c = await start_network(stack, 3)  # b and c bootstrap off a
        # d knows only b; c is reachable only through the DHT.
        d = await start_node(stack, DhtConfig(mode="server", kademlia=FAST, bootstrap_peers=(b.addr,)))
        with trio.fail_after(20):
            await d.dht.bootstrap()
            await d.host.disconnect(c.peer_id)
            await wait_for(lambda: not d.host.is_connected(c.peer_id))
            d.host.address_book.remove(c.peer_id)
            found = await d.dht.find_peer(c.peer_id, use_table=False)
            assert [str(x) for x in found] == [str(x) for x in c.host.listen_addrs]
            # Dial by peer id: the address book no longer knows c, the router (find_peer) does.
            await d.host.disconnect(c.peer_id)
            d.host.address_book.remove(c.peer_id)
            assert await d.host.connect(c.peer_id) == c.peer_id
            assert d.host.is_connected(c.peer_id)
        assert await d.dht.find_peer(HostIdentity.generate().peer_id, use_table=False) == []


async def test_connect_by_peer_id_from_a_node_that_knows_one_peer() -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_network(stack, 5)
        target = nodes[4]
        newcomer = await start_node(stack, DhtConfig(mode="client", kademlia=FAST))
        with trio.fail_after(20):
            await newcomer.host.connect(nodes[1].addr)  # no bootstrap lookups: its table has one peer
            await wait_for(lambda: len(newcomer.dht.engine.table) == 1)
            assert not newcomer.host.is_connected(target.peer_id)
            assert await newcomer.host.connect(target.peer_id) == target.peer_id


async def test_client_mode_never_answers_and_never_enters_tables() -> None:
    async with AsyncExitStack() as stack:
        servers = await start_network(stack, 3)
        client = await start_node(
            stack, DhtConfig(mode="client", kademlia=FAST, bootstrap_peers=tuple(s.addr for s in servers))
        )
        with trio.fail_after(20):
            assert await client.dht.bootstrap() == 3
            assert not client.dht.server and PROTOCOL_ID not in client.host.protocols()
            assert await client.dht.find_peer(servers[2].peer_id, use_table=False)
            await client.dht.find_providers(Cid.for_block(0x55, b"x"))
            for s in servers:
                assert client.peer_id not in await s.dht.routing_table_peers()
                assert s.host.identified(client.peer_id) is not None
                with pytest.raises(ProtocolNegotiationError):
                    await s.host.new_stream(client.peer_id, [PROTOCOL_ID])
        assert all(s.dht.server for s in servers)


async def test_auto_mode_follows_the_advertised_addresses() -> None:
    from multiaddr import Multiaddr

    assert is_public_multiaddr(Multiaddr("/ip4/8.8.8.8/tcp/4001"))
    assert is_public_multiaddr(Multiaddr("/ip6/2001:4860::8888/tcp/4001"))
    for private in (
        "/ip4/127.0.0.1/tcp/1",
        "/ip4/10.1.2.3/tcp/1",
        "/ip4/192.168.1.1/tcp/1",
        "/ip6/::1/tcp/1",
    ):
        assert not is_public_multiaddr(Multiaddr(private))
    async with AsyncExitStack() as stack:
        node = await start_node(stack, DhtConfig(mode="auto", kademlia=FAST))  # loopback only
        assert not node.dht.server and PROTOCOL_ID not in node.host.protocols()


async def test_provide_and_find_providers_deduplicated() -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_network(stack, 5)
        cid = Cid.for_block(0x71, b"some block")
        with trio.fail_after(20):
            for n in (nodes[1], nodes[2], nodes[1]):
                result = await n.dht.provide(cid)
                assert result.succeeded and not result.failed
            found = await nodes[4].dht.find_providers(cid)
            assert sorted(p.peer_id for p in found) == sorted([nodes[1].peer_id, nodes[2].peer_id])
            for p in found:
                node = nodes[1] if p.peer_id == nodes[1].peer_id else nodes[2]
                assert [str(x) for x in p.addrs] == [str(x) for x in node.host.listen_addrs]
            assert await nodes[4].dht.find_providers(cid.multihash, count=1) != []
            assert await nodes[3].dht.find_providers(Cid.for_block(0x55, b"nobody has this")) == []
        with pytest.raises(ValueError):
            await nodes[0].dht.provide(b"not a multihash")


async def test_ipns_publish_resolve_and_ordering() -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_network(stack, 5)
        owner = nodes[1].host.identity
        name = owner.peer_id
        now = time.time()
        rec1 = create_record(owner, b"/ipfs/one", 1, expires_at=now + 3600)
        rec2 = create_record(owner, b"/ipfs/two", 2, expires_at=now + 3600)
        with trio.fail_after(30):
            put = await nodes[1].dht.put_ipns(name, rec1)
            assert len(put.succeeded) == 4 and not put.failed
            got = await nodes[3].dht.get_ipns(name)
            assert got is not None and got.value == b"/ipfs/one" and got.sequence == 1
            # A newer record from another node (records are signed, anyone may republish them).
            assert (await nodes[2].dht.put_ipns(name, rec2)).succeeded
            got = await nodes[4].dht.get_ipns(name, quorum=3)
            assert got is not None and got.value == b"/ipfs/two"
            # Publishing the older one again: every peer keeps (and replies with) the newer one.
            stale = await nodes[3].dht.put_ipns(name, rec1)
            assert not stale.succeeded and stale.failed
            assert (await nodes[0].dht.get_value(routing_key(name))).value == rec2
            # Invalid records never leave the node.
            forged = create_record(HostIdentity.generate(), b"/ipfs/evil", 9, expires_at=now + 3600)
            with pytest.raises(InvalidRecord):
                await nodes[0].dht.put_ipns(name, forged)
            assert await nodes[0].dht.get_ipns(HostIdentity.generate().peer_id) is None
            with pytest.raises(ValueError):
                await nodes[0].dht.get_value(b"/unknown/key")


async def test_stores_persist_in_data_dir(tmp_path: Path) -> None:
    ident = HostIdentity.generate()
    record = create_record(ident, b"/ipfs/kept", 4, expires_at=time.time() + 3600)
    cid = Cid.for_block(0x55, b"provided")
    config = DhtConfig(mode="server", kademlia=FAST, data_dir=tmp_path / "dht")
    async with AsyncExitStack() as stack:
        node = await start_node(stack, config)
        with trio.fail_after(10):
            await node.dht.put_ipns(ident.peer_id, record)  # no peers: stored locally only
            await node.dht.provide(cid)
        first = node.peer_id
    assert (tmp_path / "dht" / "dht-records.sqlite").exists()
    async with AsyncExitStack() as stack:
        node = await start_node(stack, config)
        with trio.fail_after(10):
            got = await node.dht.get_ipns(ident.peer_id)
            assert got is not None and got.sequence == 4 and got.value == b"/ipfs/kept"
            providers = await node.dht.find_providers(cid)
            assert [p.peer_id for p in providers] == [first]  # the record survived the restart


async def test_outbound_streams_carry_several_requests() -> None:
    async def answer(stream: P2PStream, msg: Message) -> bool:
        await stream.write_message(Message(MessageType.FIND_NODE, key=msg.key).encode())
        return True

    async with AsyncExitStack() as stack:
        fake = await fake_server(stack, answer)
        node = await start_node(stack)
        with trio.fail_after(20):
            await node.host.connect(str(fake.host.addrs_with_peer_id()[0]))
            await wait_for(lambda: len(node.dht.engine.table) == 1)
            for _ in range(4):
                closest = await node.dht.find_closest_peers(HostIdentity.generate().peer_id.to_bytes())
                assert [p.id for p in closest] == [fake.host.peer_id.to_bytes()]
        assert fake.requests == 4 and fake.streams == 1
        assert fake.closed_by_peer == 0


async def test_idle_pooled_streams_are_closed() -> None:
    async def answer(stream: P2PStream, msg: Message) -> bool:
        await stream.write_message(Message(MessageType.FIND_NODE, key=msg.key).encode())
        return True

    async with AsyncExitStack() as stack:
        fake = await fake_server(stack, answer)
        node = await start_node(stack, DhtConfig(mode="server", kademlia=FAST, idle_stream_timeout=0.3))
        with trio.fail_after(20):
            await node.host.connect(str(fake.host.addrs_with_peer_id()[0]))
            await wait_for(lambda: len(node.dht.engine.table) == 1)
            await node.dht.find_closest_peers(HostIdentity.generate().peer_id.to_bytes())
            assert fake.streams == 1 and fake.closed_by_peer == 0
            await wait_for(lambda: fake.closed_by_peer == 1, within=5)


async def test_peers_closing_after_one_reply_still_work() -> None:
    async def answer_once(stream: P2PStream, msg: Message) -> bool:  # Nabu's way: one request a stream
        await stream.write_message(Message(MessageType.FIND_NODE, key=msg.key).encode())
        return False

    async with AsyncExitStack() as stack:
        fake = await fake_server(stack, answer_once)
        node = await start_node(stack)
        with trio.fail_after(20):
            await node.host.connect(str(fake.host.addrs_with_peer_id()[0]))
            await wait_for(lambda: len(node.dht.engine.table) == 1)
            for _ in range(4):
                closest = await node.dht.find_closest_peers(HostIdentity.generate().peer_id.to_bytes())
                assert [p.id for p in closest] == [fake.host.peer_id.to_bytes()]
        assert fake.requests == 4
        assert fake.streams <= 5  # one retried request at most, then one stream per request
        assert node.dht.penalties_total == 0


async def test_inbound_streams_accept_several_requests() -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_network(stack, 3)
        client = await raw_host(stack)
        with trio.fail_after(20):
            stream = await client.new_stream(nodes[0].addr, [PROTOCOL_ID])
            for target in nodes[1:]:
                reply = await send_request(
                    stream, Message(MessageType.FIND_NODE, key=target.peer_id.to_bytes())
                )
                assert reply is not None and reply.type == MessageType.FIND_NODE
                assert target.peer_id.to_bytes() in [p.id for p in reply.closer_peers]
            ping = await send_request(stream, Message(MessageType.PING))
            assert ping == Message(MessageType.PING)
            # Our own id: the node answers with itself only (go peers' liveness check).
            me = await send_request(stream, Message(MessageType.FIND_NODE, key=nodes[0].peer_id.to_bytes()))
            assert me is not None and [p.id for p in me.closer_peers] == [nodes[0].peer_id.to_bytes()]
            await stream.close()
        # The raw host does not serve kad: it never entered the table by asking.
        assert client.peer_id not in await nodes[0].dht.routing_table_peers()


async def test_unanswerable_request_closes_the_stream_at_once() -> None:
    async with AsyncExitStack() as stack:
        node = await start_node(stack)
        client = await raw_host(stack)
        with trio.fail_after(5):
            stream = await client.new_stream(node.addr, [PROTOCOL_ID])
            key = b"/unknown/ns"
            put = Message(MessageType.PUT_VALUE, key=key, record=Record(key, b"v"))
            assert await send_request(stream, put) is None  # EOF, not a timeout
        assert node.dht.penalties_total == 0


async def test_bootstrap_tolerates_unreachable_and_non_kad_peers() -> None:
    async with AsyncExitStack() as stack:
        plain = await raw_host(stack)
        dead = f"/ip4/127.0.0.1/tcp/1/p2p/{HostIdentity.generate().peer_id}"
        cfg = DhtConfig(
            mode="server",
            kademlia=FAST,
            bootstrap_peers=(dead, str(plain.addrs_with_peer_id()[0])),
            bootstrap_timeout=5.0,
        )
        node = await start_node(stack, cfg)
        with trio.fail_after(20):
            assert await node.dht.bootstrap() == 0  # no table entry for peers that cannot answer


async def test_an_idle_service_sleeps() -> None:
    # Regression: the timer task once woke itself after each of its own engine calls (a busy loop).
    async with AsyncExitStack() as stack:
        await start_network(stack, 2)
        t0 = time.process_time()
        await trio.sleep(0.6)
        assert time.process_time() - t0 < 0.2


async def test_a_stopped_service_refuses_work_and_unhooks_the_host() -> None:
    async with AsyncExitStack() as stack:
        (a,) = await start_network(stack, 1)
        host = await raw_host(stack)
        async with KademliaService.start(host, DhtConfig(mode="server", kademlia=FAST)) as dht:
            assert PROTOCOL_ID in host.protocols()
        with pytest.raises(ServiceStopped):
            await dht.find_peer(a.peer_id)
        assert PROTOCOL_ID not in host.protocols()
        with trio.fail_after(5), pytest.raises(NoAddressesError):  # no peer router any more
            await host.connect(a.peer_id)


class _ThreadRecordingRecords(SqliteRecordStore):
    """A real SQLite record store that notes which threads touch it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: set[str] = set()

    def get(self, key: bytes, now: float) -> StoredRecord | None:
        self.threads.add(threading.current_thread().name)
        return super().get(key, now)

    def put(self, record: StoredRecord) -> None:
        self.threads.add(threading.current_thread().name)
        super().put(record)


async def test_sqlite_stores_are_used_off_the_event_loop(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        stores = [_ThreadRecordingRecords(tmp_path / f"r{i}.sqlite") for i in range(3)]
        nodes = []
        for i, store in enumerate(stores):
            boot = () if i == 0 else (nodes[0].addr,)
            cfg = DhtConfig(
                mode="server", kademlia=FAST, records=store, data_dir=tmp_path / f"n{i}", bootstrap_peers=boot
            )
            nodes.append(await start_node(stack, cfg))
        owner = nodes[1].host.identity
        cid = Cid.for_block(0x55, b"sqlite")
        with trio.fail_after(20):
            for n in nodes[1:]:
                await n.dht.bootstrap()
            record = create_record(owner, b"/ipfs/sql", 3, expires_at=time.time() + 3600)
            assert (await nodes[1].dht.put_ipns(owner.peer_id, record)).succeeded
            got = await nodes[2].dht.get_ipns(owner.peer_id, quorum=3)
            assert got is not None and got.sequence == 3
            await nodes[2].dht.provide(cid)
            assert [p.peer_id for p in await nodes[0].dht.find_providers(cid)] == [nodes[2].peer_id]
        main = threading.main_thread().name
        for store in stores:
            assert store.threads and main not in store.threads
        assert (tmp_path / "n0" / "dht-providers.sqlite").exists()
    for store in stores:
        store.close()


async def test_provided_keys_are_reprovided_until_stopped() -> None:
    adds: list[bytes] = []

    async def server(stream: P2PStream, msg: Message) -> bool:
        if msg.type == MessageType.ADD_PROVIDER:
            adds.append(msg.key)
        else:
            await stream.write_message(Message(msg.type, key=msg.key).encode())
        return True

    async with AsyncExitStack() as stack:
        fake = await fake_server(stack, server)
        node = await start_node(stack, DhtConfig(mode="server", kademlia=FAST, reprovide_interval=0.3))
        cid = Cid.for_block(0x55, b"reprovided")
        with trio.fail_after(20):
            await node.host.connect(str(fake.host.addrs_with_peer_id()[0]))
            await wait_for(lambda: len(node.dht.engine.table) == 1)
            await node.dht.provide(cid)
            await wait_for(lambda: len(adds) >= 3, within=10)  # the first announce and two reprovides
            assert set(adds) == {cid.multihash}
            node.dht.stop_providing(cid)
            await trio.sleep(0.4)  # a round in flight may still land
            seen = len(adds)
            await trio.sleep(0.8)
            assert len(adds) == seen


async def test_errors_inside_the_service_block_come_out_unwrapped() -> None:
    async with AsyncExitStack() as stack:
        host = await raw_host(stack)
        with pytest.raises(InvalidRecord):
            async with KademliaService.start(host, DhtConfig(mode="client", kademlia=FAST)) as dht:
                await dht.put_ipns(host.peer_id, b"not a record")
