"""Misbehaving peers against a KademliaService (real loopback hosts): malformed and oversized messages,
forged records, peers answering garbage or never answering, an ADD_PROVIDER flood, too many streams.
Each case checks that the offender's stream is reset and penalised and that the node keeps serving."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import trio

from nabu_py.multiformats import varint
from nabu_py.multiformats.cid import Cid
from nabu_py.p2p import HostIdentity, P2PHost, P2PStream, StreamError
from nabu_py.protocols.ipns import create_record, routing_key
from nabu_py.protocols.ipns.record import SIGNATURE_PREFIX, IpnsEntry
from nabu_py.protocols.kademlia.engine import KademliaConfig
from nabu_py.protocols.kademlia.messages import PROTOCOL_ID, Message, MessageType, Peer, Record
from nabu_py.protocols.kademlia.service import DhtConfig
from tests.helpers.kad_net import (
    FAST,
    Node,
    fake_server,
    raw_host,
    send_request,
    start_network,
    start_node,
    stream_was_reset,
)
from tests.helpers.p2p import wait_for


async def _still_serves(node: Node, asker: P2PHost) -> None:
    """`asker` (a well-behaved peer) gets a FIND_NODE answer from `node` promptly."""
    with trio.fail_after(5):
        stream = await asker.new_stream(node.addr, [PROTOCOL_ID])
        reply = await send_request(
            stream, Message(MessageType.FIND_NODE, key=HostIdentity.generate().peer_id.to_bytes())
        )
        assert reply is not None and reply.type == MessageType.FIND_NODE
        await stream.close()


async def test_malformed_and_oversized_requests_reset_the_stream() -> None:
    async with AsyncExitStack() as stack:
        node = await start_node(stack)
        bad = await raw_host(stack)
        good = await raw_host(stack)
        with trio.fail_after(10):
            # Not protobuf.
            s = await bad.new_stream(node.addr, [PROTOCOL_ID])
            await s.write_message(b"\xff\xff\xff\xff")
            assert await stream_was_reset(s)
            # A declared length over 1 MiB: refused from the prefix, nothing buffered.
            s = await bad.new_stream(node.addr, [PROTOCOL_ID])
            await s.write(varint.encode((1 << 20) + 1) + b"\x00" * 1000)
            assert await stream_was_reset(s)
            # A frame cut short by EOF.
            s = await bad.new_stream(node.addr, [PROTOCOL_ID])
            await s.write(varint.encode(100) + b"\x08\x04")
            await s.close_write()
            assert await stream_was_reset(s)
            # Well-formed protobuf, but an unknown type and a FIND_NODE without a key.
            for msg in (Message(42, key=b"k"), Message(MessageType.FIND_NODE)):
                s = await bad.new_stream(node.addr, [PROTOCOL_ID])
                await s.write_message(msg.encode())
                assert await stream_was_reset(s)
        assert node.dht.penalties_total == 5
        await _still_serves(node, good)


async def test_repeat_offenders_are_banned_and_others_still_served() -> None:
    async with AsyncExitStack() as stack:
        cfg = DhtConfig(mode="server", kademlia=FAST, ban_threshold=3, ban_duration=60.0)
        node = await start_node(stack, cfg)
        bad = await raw_host(stack)
        good = await raw_host(stack)
        with trio.fail_after(10):
            for _ in range(3):
                s = await bad.new_stream(node.addr, [PROTOCOL_ID])
                await s.write_message(b"\x0a\xff")  # truncated field
                assert await stream_was_reset(s)
            assert node.dht.is_banned(bad.peer_id)
            # Banned: even a valid request is refused with a reset.
            s = await bad.new_stream(node.addr, [PROTOCOL_ID])
            await s.write_message(Message(MessageType.PING).encode())
            assert await stream_was_reset(s)
            await _still_serves(node, good)
        assert not node.dht.is_banned(good.peer_id)


async def test_forged_records_are_refused_penalised_and_not_stored() -> None:
    async with AsyncExitStack() as stack:
        node = await start_node(stack)
        bad = await raw_host(stack)
        victim = HostIdentity.generate()
        key = routing_key(victim.peer_id)
        genuine = IpnsEntry.decode(create_record(victim, b"/ipfs/real", 1, expires_at=time.time() + 3600))
        assert genuine.data is not None
        tampered = genuine.data.replace(b"/ipfs/real", b"/ipfs/evil")
        forgeries = [
            # Signed by the attacker, published under the victim's name.
            create_record(bad.identity, b"/ipfs/evil", 9, expires_at=time.time() + 3600),
            # The victim's signature over other data.
            IpnsEntry(value=None, signature_v2=genuine.signature_v2, data=tampered).encode(),
            # The attacker's signature over the victim-looking data.
            IpnsEntry(signature_v2=bad.identity.sign(SIGNATURE_PREFIX + tampered), data=tampered).encode(),
            # Expired.
            create_record(victim, b"/ipfs/old", 5, expires_at=time.time() - 1),
            b"garbage",
        ]
        with trio.fail_after(10):
            for value in forgeries:
                s = await bad.new_stream(node.addr, [PROTOCOL_ID])
                await s.write_message(
                    Message(MessageType.PUT_VALUE, key=key, record=Record(key, value)).encode()
                )
                assert await stream_was_reset(s)
            s = await bad.new_stream(node.addr, [PROTOCOL_ID])
            reply = await send_request(s, Message(MessageType.GET_VALUE, key=key))
            assert reply is not None and reply.record is None
            await s.close()
        assert node.dht.penalties_total == len(forgeries)
        assert node.dht.engine.local_record(key, time.time()) is None


async def test_add_provider_flood_is_dropped_and_penalised() -> None:
    async with AsyncExitStack() as stack:
        cfg = DhtConfig(
            mode="server",
            kademlia=KademliaConfig(
                request_timeout=2.0, refresh_interval=None, add_provider_burst=50, add_provider_rate=1.0
            ),
            ban_threshold=3,
        )
        node = await start_node(stack, cfg)
        flooder = await raw_host(stack)
        good = await raw_host(stack)
        me = Peer(flooder.peer_id.to_bytes(), tuple(a.to_bytes() for a in flooder.listen_addrs))
        sent = 0
        resets = 0
        with trio.fail_after(20):
            for _ in range(4):
                s = await flooder.new_stream(node.addr, [PROTOCOL_ID])
                try:
                    for i in range(500):
                        mh = Cid.for_block(0x55, b"flood %d" % sent).multihash
                        await s.write_message(
                            Message(MessageType.ADD_PROVIDER, key=mh, provider_peers=(me,)).encode()
                        )
                        sent += 1
                        if i % 50 == 0:
                            await trio.lowlevel.checkpoint()
                    reset = await stream_was_reset(s)
                except StreamError:
                    reset = True
                resets += reset
            await _still_serves(node, good)
        assert resets == 4
        assert len(node.dht.engine.providers) <= 50 + 5  # the burst (plus what refilled meanwhile)
        assert node.dht.is_banned(flooder.peer_id)
        # An honest provider still gets its record stored.
        honest = await raw_host(stack)
        mh = Cid.for_block(0x55, b"honest").multihash
        with trio.fail_after(5):
            s = await honest.new_stream(node.addr, [PROTOCOL_ID])
            entry = Peer(honest.peer_id.to_bytes(), tuple(a.to_bytes() for a in honest.listen_addrs))
            await s.write_message(Message(MessageType.ADD_PROVIDER, key=mh, provider_peers=(entry,)).encode())
            reply = await send_request(s, Message(MessageType.GET_PROVIDERS, key=mh))
            assert reply is not None and [p.id for p in reply.provider_peers] == [honest.peer_id.to_bytes()]
            await s.close()


async def test_too_many_streams_from_one_peer_are_reset() -> None:
    async with AsyncExitStack() as stack:
        node = await start_node(
            stack, DhtConfig(mode="server", kademlia=FAST, max_inbound_streams_per_peer=4)
        )
        greedy = await raw_host(stack)
        with trio.fail_after(10):
            held = [await greedy.new_stream(node.addr, [PROTOCOL_ID]) for _ in range(4)]
            for s in held:  # each handler is now waiting for a request
                await s.write_message(Message(MessageType.PING).encode())
                assert await s.read_message(1 << 20) is not None
            extra = await greedy.new_stream(node.addr, [PROTOCOL_ID])
            await extra.write_message(Message(MessageType.PING).encode())
            assert await stream_was_reset(extra)
            for s in held:
                await s.close()
            await wait_for(lambda: not node.dht._inbound)
            again = await greedy.new_stream(node.addr, [PROTOCOL_ID])
            assert await send_request(again, Message(MessageType.PING)) is not None
        assert node.dht.penalties_total == 0  # a limit, not misbehaviour


async def test_idle_inbound_streams_are_closed_after_the_request_timeout() -> None:
    async with AsyncExitStack() as stack:
        node = await start_node(stack, DhtConfig(mode="server", kademlia=FAST, request_timeout=0.5))
        idle = await raw_host(stack)
        with trio.fail_after(5):
            s = await idle.new_stream(node.addr, [PROTOCOL_ID])
            t0 = trio.current_time()
            assert await s.read(10) == b""  # closed by the node, cleanly
            assert trio.current_time() - t0 < 3


async def _garbage(stream: P2PStream, msg: Message) -> bool:
    await stream.write_message(b"\x0a\x05abc")  # truncated length-delimited field
    return True


async def _wrong_type(stream: P2PStream, msg: Message) -> bool:
    await stream.write_message(Message(MessageType.PING).encode())
    return True


async def _silent(stream: P2PStream, msg: Message) -> bool:
    await trio.sleep_forever()
    return False


async def _oversized(stream: P2PStream, msg: Message) -> bool:
    await stream.write(varint.encode(5 << 20))
    await trio.sleep_forever()
    return False


async def test_lookups_terminate_with_garbage_and_silent_peers() -> None:
    async with AsyncExitStack() as stack:
        honest = await start_network(stack, 3)
        fakes = [await fake_server(stack, b) for b in (_garbage, _wrong_type, _silent, _oversized)]
        cfg = DhtConfig(
            mode="server",
            kademlia=KademliaConfig(request_timeout=1.0, query_timeout=8.0, refresh_interval=None),
        )
        node = await start_node(stack, cfg)
        with trio.fail_after(20):
            for peer in [*honest, *fakes]:
                addr = str(peer.host.addrs_with_peer_id()[0]) if not isinstance(peer, Node) else peer.addr
                await node.host.connect(addr)
            await wait_for(lambda: len(node.dht.engine.table) == 7)
            t0 = trio.current_time()
            closest = await node.dht.find_closest_peers(HostIdentity.generate().peer_id.to_bytes())
            elapsed = trio.current_time() - t0
        assert elapsed < 1.0 + 3.0  # one request timeout (plus slack), never the 8 s query deadline
        assert {p.id for p in closest} == {n.peer_id.to_bytes() for n in honest}
        assert node.dht.penalties_total >= 3  # garbage, wrong type, oversized frame
        for f in fakes[:2]:
            assert f.requests >= 1
        # The node is still fine: honest lookups keep working.
        with trio.fail_after(10):
            assert await node.dht.find_peer(honest[2].peer_id, use_table=False)


async def test_get_value_survives_peers_serving_invalid_records() -> None:
    victim = HostIdentity.generate()
    key = routing_key(victim.peer_id)
    forged = create_record(HostIdentity.generate(), b"/ipfs/evil", 99, expires_at=time.time() + 3600)

    async def serve_forgery(stream: P2PStream, msg: Message) -> bool:
        await stream.write_message(
            Message(MessageType.GET_VALUE, key=key, record=Record(key, forged)).encode()
        )
        return True

    async with AsyncExitStack() as stack:
        nodes = await start_network(stack, 3)
        liar = await fake_server(stack, serve_forgery)
        real = create_record(victim, b"/ipfs/real", 1, expires_at=time.time() + 3600)
        with trio.fail_after(20):
            await nodes[1].dht.put_ipns(victim.peer_id, real)
            await nodes[2].host.connect(str(liar.host.addrs_with_peer_id()[0]))
            await wait_for(lambda: liar.host.peer_id.to_bytes() in nodes[2].dht.engine.table)
            got = await nodes[2].dht.get_ipns(victim.peer_id, quorum=4)  # waits for the liar too
        assert got is not None and got.value == b"/ipfs/real"
        assert nodes[2].dht.penalties_total >= 1
