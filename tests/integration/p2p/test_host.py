"""P2PHost behaviour over real loopback sockets: dialing (address book, peer router, wrong ids), streams,
handlers that fail, misbehaving peers, limits, identify, ping, bootstrap, persistence, lifecycle."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from nabu_py.errors import DecodeError
from nabu_py.p2p import (
    DialError,
    HostClosedError,
    HostConfig,
    HostIdentity,
    NoAddressesError,
    P2PHost,
    P2PStream,
    PeerId,
    ProtocolNegotiationError,
    SqliteAddressBook,
    StreamResetError,
    YamuxConfig,
    load_or_create_identity,
)
from nabu_py.p2p import (
    host as host_module,
)
from nabu_py.p2p.identity import KeyType, encode_key
from nabu_py.p2p.multistream import PROTOCOL_ID, encode_message
from tests.helpers.p2p import wait_for

ECHO = "/test/echo/1.0.0"


def cfg(security: tuple[str, ...] = ("tls", "noise"), **kw: object) -> HostConfig:
    return HostConfig(identity=HostIdentity.generate(), security=security, **kw)  # type: ignore[arg-type]


async def echo(stream: P2PStream) -> None:
    while data := await stream.read():
        await stream.write(data)


async def roundtrip(host: P2PHost, peer: PeerId | str, payload: bytes = b"hello") -> bytes:
    stream = await host.new_stream(peer, [ECHO])
    async with stream:
        await stream.write(payload)
        await stream.close_write()
        return await stream.read_to_eof(1 << 20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---- dialing ---------------------------------------------------------------------------------------
async def test_dial_by_multiaddr_then_by_peer_id_through_the_address_book() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.set_stream_handler(ECHO, echo)
        assert await a.connect(b.addrs_with_peer_id()[0]) == b.peer_id
        assert a.address_book.get(b.peer_id) == b.listen_addrs
        await a.disconnect(b.peer_id)
        await wait_for(lambda: not a.is_connected(b.peer_id))
        assert await roundtrip(a, b.peer_id) == b"hello"  # redialed from the address book
        assert a.connected_peers() == [b.peer_id]


async def test_unknown_peer_and_the_peer_router_hook() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        with pytest.raises(NoAddressesError):
            await a.connect(b.peer_id)
        asked: list[PeerId] = []

        async def router(peer: PeerId) -> list[Multiaddr]:
            asked.append(peer)
            return list(b.listen_addrs)

        a.set_peer_router(router)
        assert await a.connect(b.peer_id) == b.peer_id
        assert asked == [b.peer_id]

        async def broken(peer: PeerId) -> list[Multiaddr]:
            raise RuntimeError("dht down")

        a.set_peer_router(broken)
        c = HostIdentity.generate().peer_id
        with pytest.raises(NoAddressesError, match="dht down"):
            await a.connect(c)


async def test_dead_addresses_fail_fast_and_good_ones_are_tried_next() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        dead = f"/ip4/127.0.0.1/tcp/{_free_port()}"
        with trio.fail_after(10), pytest.raises(DialError, match="could not connect"):
            await a.connect(b.peer_id, addrs=[dead])
        assert await a.connect(b.peer_id, addrs=[dead, str(b.listen_addrs[0])]) == b.peer_id


@pytest.mark.parametrize("security", ["tls", "noise"])
async def test_wrong_peer_id_at_an_address_is_refused(security: str) -> None:
    async with P2PHost.open(cfg((security,))) as a, P2PHost.open(cfg((security,))) as b:
        impostor = HostIdentity.generate().peer_id
        with trio.fail_after(10), pytest.raises(DialError):
            await a.connect(f"{b.listen_addrs[0]}/p2p/{impostor}")
        assert not a.is_connected(impostor) and a.connection_count() == 0


async def test_security_preference_and_fallback() -> None:
    async with P2PHost.open(cfg(("noise",))) as noise_only, P2PHost.open(cfg()) as both:
        await both.connect(noise_only.addrs_with_peer_id()[0])
        (conn,) = both._swarm.get_connections(ID(noise_only.peer_id.to_bytes()))
        assert conn.get_negotiated_security_protocol() == "/noise"
        async with P2PHost.open(cfg()) as other:
            await both.connect(other.addrs_with_peer_id()[0])
            (conn,) = both._swarm.get_connections(ID(other.peer_id.to_bytes()))
            assert conn.get_negotiated_security_protocol() == "/tls/1.0.0"
            assert conn.get_negotiated_muxer_protocol() == "/yamux/1.0.0"
        async with P2PHost.open(cfg(("tls",))) as tls_only:
            with pytest.raises(DialError):
                await noise_only.connect(tls_only.addrs_with_peer_id()[0])


async def test_rsa_identity_talks_to_ed25519_over_tls_and_noise() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    rsa_identity = HostIdentity.from_private_key_proto(encode_key(KeyType.RSA, der))
    for security in (("tls",), ("noise",)):
        async with (
            P2PHost.open(HostConfig(identity=rsa_identity, security=security)) as r,
            P2PHost.open(cfg(security)) as e,
        ):
            assert str(r.peer_id).startswith("Qm")
            info = await e.identify(r.addrs_with_peer_id()[0])
            assert info.peer_id == r.peer_id
            assert len(await r.ping(e.addrs_with_peer_id()[0])) == 1


# ---- streams and handlers -------------------------------------------------------------------------
async def test_unsupported_protocols_and_connection_reuse() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.set_stream_handler(ECHO, echo)
        with pytest.raises(ProtocolNegotiationError, match="none of"):
            await a.new_stream(b.addrs_with_peer_id()[0], ["/nope/1", "/nope/2"])
        assert await roundtrip(a, b.peer_id) == b"hello"
        b.remove_stream_handler(ECHO)
        with pytest.raises(ProtocolNegotiationError):
            await a.new_stream(b.peer_id, [ECHO])
        assert a.connection_count() == 1


async def test_a_failing_handler_resets_only_its_stream() -> None:
    calls = 0

    async def flaky(stream: P2PStream) -> None:
        nonlocal calls
        calls += 1
        await stream.read(10)
        if calls == 1:
            raise ValueError("handler bug")
        await stream.write(b"fine")

    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.set_stream_handler("/flaky", flaky)
        first = await a.new_stream(b.addrs_with_peer_id()[0], ["/flaky"])
        await first.write(b"x")
        with pytest.raises(StreamResetError):
            await first.read_exactly(4)
        second = await a.new_stream(b.peer_id, ["/flaky"])
        await second.write(b"x")
        assert await second.read_exactly(4) == b"fine"


async def test_garbage_instead_of_multistream_resets_the_stream() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.set_stream_handler(ECHO, echo)
        await a.connect(b.addrs_with_peer_id()[0])
        for garbage in (b"\xff\xff\xff\xff", encode_message(PROTOCOL_ID) + b"\x7f" + b"x" * 127):
            raw = await a._swarm.new_stream(ID(b.peer_id.to_bytes()))
            stream = P2PStream(raw, b.peer_id, "", a)
            await stream.write(garbage)
            with trio.fail_after(5), pytest.raises(StreamResetError):
                while await stream.read():
                    pass
        assert await roundtrip(a, b.peer_id) == b"hello"  # the node and the connection are fine


async def test_message_size_limits_are_enforced() -> None:
    seen: list[BaseException] = []

    async def strict(stream: P2PStream) -> None:
        try:
            await stream.read_message(max_size=16)
        except DecodeError as e:
            seen.append(e)
            raise

    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.set_stream_handler("/strict", strict)
        stream = await a.new_stream(b.addrs_with_peer_id()[0], ["/strict"])
        await stream.write_message(b"x" * 100)
        with trio.fail_after(5), pytest.raises(StreamResetError):
            await stream.read_exactly(1)
        assert len(seen) == 1 and "exceeds" in str(seen[0])


async def test_stream_limit_per_connection() -> None:
    release = trio.Event()

    async def hold(stream: P2PStream) -> None:
        await release.wait()

    limited = cfg(yamux=YamuxConfig(max_streams=4))
    async with P2PHost.open(cfg()) as a, P2PHost.open(limited) as b:
        b.set_stream_handler("/hold", hold)
        await a.connect(b.addrs_with_peer_id()[0])
        opened, refused = 0, 0
        streams = []
        for _ in range(8):
            try:
                with trio.fail_after(5):
                    streams.append(await a.new_stream(b.peer_id, ["/hold"]))
                    opened += 1
            except ProtocolNegotiationError:
                refused += 1
        assert opened <= 4 and refused >= 4
        release.set()
        for s in streams:
            await s.close()


async def test_closed_stream_is_reset_when_the_peer_never_finishes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_module, "CLOSE_GRACE", 0.3)
    outcome: list[str] = []

    async def chatty(stream: P2PStream) -> None:
        try:
            for _ in range(1000):
                await stream.write(b"x" * 1024)
                await trio.sleep(0.01)
        except StreamResetError:
            outcome.append("reset")

    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.set_stream_handler("/chatty", chatty)
        stream = await a.new_stream(b.addrs_with_peer_id()[0], ["/chatty"])
        await stream.read(10)
        await stream.close()  # we are done; the peer keeps talking
        await wait_for(lambda: outcome == ["reset"])
        (conn,) = a._swarm.get_connections(ID(b.peer_id.to_bytes()))
        await wait_for(lambda: conn.muxed_conn.stream_count == 0)


# ---- identify, ping, bootstrap -------------------------------------------------------------------
async def test_automatic_identify_fills_address_book_and_protocols() -> None:
    async with P2PHost.open(cfg(listen_addrs=("/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"))) as b:
        b.set_stream_handler(ECHO, echo)
        async with P2PHost.open(cfg()) as a:
            await a.connect(b.addrs_with_peer_id()[1])
            with trio.fail_after(10):
                info = await a.wait_identified(b.peer_id)
            assert set(info.listen_addrs) == set(b.listen_addrs)
            assert set(a.address_book.get(b.peer_id)) == set(b.listen_addrs)
            assert ECHO in info.protocols and "/ipfs/ping/1.0.0" in info.protocols
            assert ECHO in a.libp2p_host.get_peerstore().get_protocols(ID(b.peer_id.to_bytes()))
            assert info.agent_version == b.config.agent_version
            # b identified a on the inbound connection too
            with trio.fail_after(10):
                back = await b.wait_identified(a.peer_id)
            assert back.listen_addrs == tuple(a.listen_addrs)


async def test_identify_push_updates_the_address_book() -> None:
    from libp2p.identity.identify.pb.identify_pb2 import Identify

    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        await a.connect(b.addrs_with_peer_id()[0])
        stream = await a.new_stream(b.peer_id, ["/ipfs/id/push/1.0.0"])
        new_addr = Multiaddr("/ip4/192.0.2.7/tcp/4001")
        await stream.write_message(Identify(listen_addrs=[new_addr.to_bytes()]).SerializeToString())
        await stream.close()
        await wait_for(lambda: new_addr in b.address_book.get(a.peer_id))


async def test_ping_counts_and_identify_on_request() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        rtts = await a.ping(b.addrs_with_peer_id()[0], count=5)
        assert len(rtts) == 5 and all(0 < r < 5 for r in rtts)
        info = await a.identify(b.peer_id)
        assert info.public_key == b.identity.public_key_proto()
        with pytest.raises(ValueError):
            await a.ping(b.peer_id, count=0)


async def test_bootstrap_connects_in_the_background() -> None:
    async with P2PHost.open(cfg()) as boot:
        dead = f"/ip4/127.0.0.1/tcp/{_free_port()}/p2p/{HostIdentity.generate().peer_id}"
        legacy = str(boot.addrs_with_peer_id()[0]).replace("/p2p/", "/ipfs/")
        async with P2PHost.open(cfg(bootstrap=(legacy, dead))) as node:
            await wait_for(lambda: node.is_connected(boot.peer_id), within=10)
            assert await node.bootstrap() == 1


# ---- persistence and lifecycle -----------------------------------------------------------------
async def test_identity_and_address_book_survive_restarts(tmp_path: Path) -> None:
    async with P2PHost.open(cfg()) as b:
        b.set_stream_handler(ECHO, echo)
        identity = load_or_create_identity(tmp_path / "identity.json")
        book = SqliteAddressBook(tmp_path / "book.sqlite")
        async with P2PHost.open(HostConfig(identity=identity, address_book=book)) as a:
            first_id = a.peer_id
            await a.connect(b.addrs_with_peer_id()[0])
        book.close()
        book = SqliteAddressBook(tmp_path / "book.sqlite")
        identity = load_or_create_identity(tmp_path / "identity.json")
        async with P2PHost.open(HostConfig(identity=identity, address_book=book)) as a:
            assert a.peer_id == first_id
            assert await roundtrip(a, b.peer_id) == b"hello"  # only the persisted address book knows b
        book.close()


async def test_close_inside_the_block_and_closed_host_errors() -> None:
    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        await a.connect(b.addrs_with_peer_id()[0])
        await a.close()
        await a.close()
        assert a.closed
        with pytest.raises(HostClosedError):
            await a.connect(b.peer_id)
        with pytest.raises(HostClosedError):
            await a.new_stream(b.peer_id, [ECHO])
        await wait_for(lambda: not b.is_connected(a.peer_id))
        reached = True  # code after close() in the block still runs
    assert reached


async def test_escape_hatch_py_libp2p_style_handlers_and_streams() -> None:
    async def libp2p_style(net_stream: object) -> None:
        data = await net_stream.read(5)  # type: ignore[attr-defined]
        await net_stream.write(data.upper())  # type: ignore[attr-defined]

    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        b.libp2p_host.set_stream_handler("/hatch", libp2p_style)  # type: ignore[arg-type]
        await a.connect(b.addrs_with_peer_id()[0])
        net = await a.libp2p_host.new_stream(ID(b.peer_id.to_bytes()), ["/hatch"])  # type: ignore[list-item]
        assert net.get_protocol() == "/hatch"
        await net.write(b"hello")
        assert await net.read(5) == b"HELLO"
        await net.close()


async def test_peer_event_listeners() -> None:
    identified: list[PeerId] = []
    gone: list[PeerId] = []

    def broken(_info: object) -> None:
        raise RuntimeError("listener bug")

    async with P2PHost.open(cfg()) as a, P2PHost.open(cfg()) as b:
        a.on_peer_identified(broken)  # a failing listener must not disturb the host or other listeners
        stop = a.on_peer_identified(lambda info: identified.append(info.peer_id))
        a.on_peer_disconnected(gone.append)
        await a.connect(b.addrs_with_peer_id()[0])
        await wait_for(lambda: identified == [b.peer_id])
        await b.close()
        await wait_for(lambda: gone == [b.peer_id])
        stop()
        stop()  # unsubscribing twice is harmless
        async with P2PHost.open(cfg()) as c:
            await a.connect(c.addrs_with_peer_id()[0])
            with trio.fail_after(10):
                await a.wait_identified(c.peer_id)
        assert identified == [b.peer_id]
