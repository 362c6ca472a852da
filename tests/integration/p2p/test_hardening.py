"""Regression tests for the py-libp2p 0.8.1 defects fixed in nabu_py/p2p (libp2p_fixes.py D1-D9, yamux.py).

Each scenario runs twice: `test_stock_*` shows the defect on a stock 0.8.1 host (so it fails there by
construction: the assertion states the defective behaviour), `test_*` shows our host does the right
thing. Hosts listen on 127.0.0.1/::1 only; every wait is bounded; the churn client is a separate process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.io.trio import TrioTCPStream
from libp2p.network.stream.exceptions import StreamReset
from libp2p.peer.id import ID
from libp2p.rcmgr import Direction

from nabu_py.p2p import (
    DialError,
    HostConfig,
    HostIdentity,
    ListenError,
    P2PHost,
    P2PStream,
    PeerId,
    StreamResetError,
)
from tests.helpers.p2p import count_trio_tasks, open_fds, wait_for
from tests.integration.p2p import stock

ECHO = "/churn/echo/1.0.0"
CHURN_CLIENT = Path(__file__).with_name("churn_client.py")
REPO = Path(__file__).resolve().parents[3]


def _config(security: str = "tls", **kw: object) -> HostConfig:
    return HostConfig(identity=HostIdentity.generate(), security=(security,), **kw)  # type: ignore[arg-type]


async def _echo_1k(stream: P2PStream) -> None:
    await stream.write(await stream.read_exactly(1024))


async def _run_churn(addr: str, cycles: int, security: str, mode: str, limit: float) -> dict[str, object]:
    with trio.fail_after(limit):
        done = await trio.run_process(
            [sys.executable, str(CHURN_CLIENT), addr, str(cycles), security, mode],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# ---- D1, D11: inbound connections leak their limiter slot; peers are remembered forever ----------
async def test_stock_refuses_inbound_connections_after_250_in_its_lifetime() -> None:
    """Stock 0.8.1: connection 251 and every later one is refused (inbound limiter never released)."""

    async def stock_echo(stream: object) -> None:
        data = await stream.read(1024)  # type: ignore[attr-defined]
        await stream.write(data)  # type: ignore[attr-defined]
        await stream.close()  # type: ignore[attr-defined]

    host = stock.stock_host()
    async with host.run([stock.listen_addr()]):
        host.set_stream_handler(TProtocol(ECHO), stock_echo)
        result = await _run_churn(str(stock.full_addr(host)), 270, "noise", "fresh", limit=240)
        remembered = len(host.get_peerstore().peer_ids())
        await host.close()
    assert result["first_failure"] == 250, result  # the 251st inbound connection is refused...
    assert result["failures"] == 20, result  # ...and so is every later one
    assert remembered > 100  # D11: the peer store keeps (most of) the peers it ever saw


async def test_1000_inbound_cycles_all_accepted_with_flat_fds_and_tasks() -> None:
    async with P2PHost.open(_config()) as server:
        server.set_stream_handler(ECHO, _echo_1k)
        addr = str(server.addrs_with_peer_id()[0])
        warm = await _run_churn(addr, 20, "tls", "fresh", limit=60)  # allocate what lives for the whole run
        assert warm["failures"] == 0, warm
        await wait_for(lambda: server.connection_count() == 0)
        fds, tasks = open_fds(), count_trio_tasks()

        result = await _run_churn(addr, 1000, "tls", "fresh", limit=240)

        assert result == {"cycles": 1000, "failures": 0, "first_failure": None, "first_errors": []}
        await wait_for(lambda: server.connection_count() == 0)
        await trio.sleep(0.2)
        assert open_fds() - fds <= 1
        assert count_trio_tasks() - tasks <= 2
        assert len(server.libp2p_host.get_peerstore().peer_ids()) == 1  # D11: only our own entry


# ---- D2: leaving the host leaves the port open ------------------------------------------------------
async def _multistream_answer(port: int) -> bytes:
    with trio.fail_after(5):
        sock = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await sock.send_all(b"\x13/multistream/1.0.0\n")
            return bytes(await sock.receive_some(100))
        finally:
            await sock.aclose()


async def test_stock_port_still_answers_after_run_exits() -> None:
    host = stock.stock_host()
    async with host.run([stock.listen_addr()]):
        port = stock.tcp_port(host)
    try:
        assert (await _multistream_answer(port)).startswith(b"\x13/multistream/1.0.0\n")
    finally:
        await host.close()


async def test_leaving_open_closes_the_listener_and_every_connection() -> None:
    async with P2PHost.open(_config()) as client, P2PHost.open(_config()) as other:
        async with P2PHost.open(_config(listen_addrs=("/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"))) as server:
            ports = [int(a.value_for_protocol("tcp")) for a in server.listen_addrs]
            await client.connect(server.addrs_with_peer_id()[0])
            await other.connect(server.addrs_with_peer_id()[1])
            assert server.connection_count() == 2
        await wait_for(
            lambda: not client.is_connected(server.peer_id) and not other.is_connected(server.peer_id)
        )
        for port, family, ip in ((ports[0], socket.AF_INET, "127.0.0.1"), (ports[1], socket.AF_INET6, "::1")):
            with socket.socket(family) as s, pytest.raises(ConnectionRefusedError):
                s.settimeout(5)
                s.connect((ip, port))
        with pytest.raises(DialError):
            await client.connect(server.peer_id)


async def test_host_closes_even_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with P2PHost.open(_config()) as host:
            port = int(host.listen_addrs[0].value_for_protocol("tcp"))
            raise RuntimeError("boom")
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.settimeout(5)
        s.connect(("127.0.0.1", port))


# ---- D3: binding a port already in use ---------------------------------------------------------------
async def test_stock_second_host_silently_shares_a_port() -> None:
    first, second = stock.stock_host(), stock.stock_host()
    async with first.run([stock.listen_addr()]):
        port = stock.tcp_port(first)
        async with second.run([stock.listen_addr(port)]):
            assert stock.tcp_port(second) == port  # SO_REUSEPORT: both "listen" on one port
        await second.close()
        await first.close()


async def test_binding_a_used_port_is_an_error() -> None:
    async with P2PHost.open(_config()) as first:
        port = int(first.listen_addrs[0].value_for_protocol("tcp"))
        with pytest.raises(ListenError, match="in use"):
            async with P2PHost.open(_config(listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",))):
                pytest.fail("bound a port another host listens on")
    with socket.socket() as plain:  # a non-libp2p listener holds the port
        plain.bind(("127.0.0.1", 0))
        plain.listen(1)
        port = plain.getsockname()[1]
        with pytest.raises(ListenError):
            async with P2PHost.open(_config(listen_addrs=(f"/ip4/127.0.0.1/tcp/{port}",))):
                pytest.fail("bound a port a plain socket listens on")


# ---- D4: plaintext peers claim any identity -----------------------------------------------------------
def _forge_plaintext_identity(monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """An attacker speaking /plaintext/2.0.0 that announces the victim's public key as its own."""
    import libp2p.security.insecure.transport as insecure
    from libp2p import generate_new_ed25519_identity, new_host

    victim, attacker = generate_new_ed25519_identity(), generate_new_ed25519_identity()
    original = insecure.make_exchange_message

    def forged(pubkey: object) -> object:
        return original(victim.public_key if pubkey == attacker.public_key else pubkey)  # type: ignore[arg-type]

    monkeypatch.setattr(insecure, "make_exchange_message", forged)
    host = new_host(
        key_pair=attacker,
        sec_opt={TProtocol(insecure.PLAINTEXT_PROTOCOL_ID): insecure.InsecureTransport(attacker)},
    )
    return host, PeerId.from_bytes(insecure.ID.from_pubkey(victim.public_key).to_bytes())


async def test_stock_default_host_believes_a_plaintext_impersonator(monkeypatch: pytest.MonkeyPatch) -> None:
    from libp2p import new_host

    attacker, victim_id = _forge_plaintext_identity(monkeypatch)
    target = new_host()  # stock defaults: plaintext and secio on offer
    async with target.run([stock.listen_addr()]), attacker.run([stock.listen_addr()]):  # type: ignore[attr-defined]
        with trio.fail_after(10):
            await attacker.connect(stock.info(target))  # type: ignore[attr-defined]
        connected = [PeerId.from_bytes(p.to_bytes()) for p in target.get_connected_peers()]
        assert victim_id in connected
        await attacker.close()  # type: ignore[attr-defined]
        await target.close()


async def test_plaintext_peers_cannot_connect_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    attacker, victim_id = _forge_plaintext_identity(monkeypatch)
    async with P2PHost.open(_config()) as target, attacker.run([stock.listen_addr()]):  # type: ignore[attr-defined]
        from libp2p.peer.peerinfo import info_from_p2p_addr

        with trio.fail_after(10), pytest.raises(Exception, match=r"unable to connect|failed|negotiat"):
            await attacker.connect(info_from_p2p_addr(target.addrs_with_peer_id()[0]))  # type: ignore[attr-defined]
        assert target.connected_peers() == []
        assert not target.is_connected(victim_id)  # type: ignore[arg-type]
        await attacker.close()  # type: ignore[attr-defined]


def test_insecure_protocols_cannot_be_configured() -> None:
    from nabu_py.p2p.libp2p_fixes import ensure_secure_only
    from nabu_py.p2p.upgrader import Upgrader

    with pytest.raises(ValueError, match="insecure"):
        Upgrader({"/plaintext/2.0.0": object()})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="insecure"):
        ensure_secure_only(["/tls/1.0.0", "/secio/1.0.0"])
    with pytest.raises(ValueError, match="unsupported"):
        HostConfig(identity=HostIdentity.generate(), security=("plaintext",)).security_protocol_ids()


# ---- yamux: a paused reader keeps its stream ----------------------------------------------------------
SLOW = "/slow/1.0.0"
DATA = os.urandom(32 << 20)  # more than 0.8.1's 16 MiB auto-tuned window, so its writer must wait


async def _stock_slow_reader_resets() -> None:
    """Stock 0.8.1: the receiver grows an unread stream's window to 16 MiB, then the writer waits at most
    5 s for more credit and resets the stream (here during a 7 s reader pause)."""

    async def slow(stream: object) -> None:
        await trio.sleep(7)
        await stream.close()  # type: ignore[attr-defined]

    a, b = stock.stock_host(), stock.stock_host()
    async with a.run([stock.listen_addr()]), b.run([stock.listen_addr()]):
        b.set_stream_handler(TProtocol(SLOW), slow)
        with trio.fail_after(30):
            await a.connect(stock.info(b))
            stream = await a.new_stream(b.get_id(), [TProtocol(SLOW)])
            with pytest.raises(StreamReset):
                for i in range(0, len(DATA), 256 << 10):
                    await stream.write(DATA[i : i + (256 << 10)])
        await a.close()
        await b.close()


async def _paused_reader_keeps_stream(pause: float, security: str) -> None:
    received = trio.Event()
    got: list[bytes] = []

    async def slow(stream: P2PStream) -> None:
        await trio.sleep(pause)
        got.append(await stream.read_to_eof(len(DATA)))
        received.set()

    async with P2PHost.open(_config(security)) as a, P2PHost.open(_config(security)) as b:
        b.set_stream_handler(SLOW, slow)
        with trio.fail_after(pause + 30):
            stream = await a.new_stream(b.addrs_with_peer_id()[0], [SLOW])
            t0 = trio.current_time()
            await stream.write(DATA)  # blocks while the reader sleeps, then completes
            assert trio.current_time() - t0 >= pause - 1
            await stream.close()
            await received.wait()
    assert got == [DATA]


async def test_stock_and_ours_with_a_paused_reader() -> None:
    """Run concurrently to save wall time: stock resets at 5 s; ours survives a 30 s pause (TLS and
    Noise)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stock_slow_reader_resets)
        nursery.start_soon(_paused_reader_keeps_stream, 30.0, "tls")
        nursery.start_soon(_paused_reader_keeps_stream, 30.0, "noise")


# ---- D5: repeated and simultaneous dials -----------------------------------------------------------
async def test_stock_simultaneous_dials_leave_two_connections() -> None:
    a, b = stock.stock_host(), stock.stock_host()
    async with a.run([stock.listen_addr()]), b.run([stock.listen_addr()]):
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(a.connect, stock.info(b))
                    nursery.start_soon(b.connect, stock.info(a))
        await trio.sleep(0.5)
        assert len(a.get_network().get_connections(b.get_id())) == 2
        await a.close()
        await b.close()


async def test_simultaneous_and_repeated_dials_share_one_connection() -> None:
    async with P2PHost.open(_config()) as a, P2PHost.open(_config()) as b:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(a.connect, b.addrs_with_peer_id()[0])
                    nursery.start_soon(b.connect, a.addrs_with_peer_id()[0])
        await wait_for(lambda: a.connection_count() == 1 and b.connection_count() == 1)
        (conn_a,) = [c for c in a._swarm.get_connections(ID(b.peer_id.to_bytes())) if not c.is_closed]
        (conn_b,) = [c for c in b._swarm.get_connections(ID(a.peer_id.to_bytes())) if not c.is_closed]
        # both ends kept the same TCP connection: one sees it outbound to the other's listen port
        assert {conn_a.direction, conn_b.direction} == {Direction.INBOUND, Direction.OUTBOUND}
        dialer, listener = (conn_a, b) if conn_a.direction == Direction.OUTBOUND else (conn_b, a)
        remote = dialer.muxed_conn.get_remote_address()
        assert remote is not None and remote[1] == int(listener.listen_addrs[0].value_for_protocol("tcp"))
        for _ in range(10):
            await a.connect(b.peer_id)
            await b.connect(a.peer_id)
        assert [c for c in a._swarm.get_connections(ID(b.peer_id.to_bytes())) if not c.is_closed] == [conn_a]
        assert a.connection_count() == 1 and b.connection_count() == 1
        rtts = await a.ping(b.peer_id, count=2)
        assert len(rtts) == 2


# ---- D8: library logging -------------------------------------------------------------------------------
_EMIT = (
    "import logging, libp2p.network.swarm as s\n"
    "{setup}"
    "logging.getLogger('libp2p.network.swarm').error('failed to upgrade security for peer 1.2.3.4: x')\n"
    "logging.getLogger('libp2p.network.swarm').warning('Error closing connection to x: y')\n"
)


def test_stock_libp2p_records_bypass_logging_config() -> None:
    """Stock: records skip the application's handlers and hit stderr via logging.lastResort."""
    out = subprocess.run(
        [sys.executable, "-c", _EMIT.format(setup="logging.basicConfig(level=logging.CRITICAL)\n")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "failed to upgrade security" in out.stderr and "Error closing connection" in out.stderr


def test_configured_libp2p_logging_follows_the_application() -> None:
    setup = (
        "logging.basicConfig(level=logging.INFO)\n"
        "from nabu_py.p2p import configure_logging\n"
        "configure_logging()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", _EMIT.format(setup=setup)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # churn demoted to DEBUG, libp2p WARNINGs below its ERROR level


async def test_forty_nodes_print_no_warnings(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with trio.open_nursery() as nursery:
        hosts: list[P2PHost] = []
        ready = trio.Event()
        stop = trio.Event()

        async def run_host() -> None:
            security = ("tls", "noise") if len(hosts) % 2 else ("noise", "tls")
            async with P2PHost.open(HostConfig(identity=HostIdentity.generate(), security=security)) as h:
                hosts.append(h)
                if len(hosts) == 40:
                    ready.set()
                await stop.wait()

        for _ in range(40):
            nursery.start_soon(run_host)
        with trio.fail_after(60):
            await ready.wait()
            hub = hosts[0]
            async with trio.open_nursery() as dials:
                for i, h in enumerate(hosts[1:], 1):
                    dials.start_soon(h.connect, hub.addrs_with_peer_id()[0])
                    dials.start_soon(h.connect, hosts[(i + 1) % 40].addrs_with_peer_id()[0])
            for h in hosts[1:6]:
                await h.ping(hub.peer_id)
                await h.identify(hub.peer_id)
            for h in hosts[1:20]:
                await h.disconnect(hub.peer_id)
        stop.set()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy[:5]]


# ---- D9: IPv6 connections know their remote address --------------------------------------------------
async def test_stock_ipv6_streams_have_no_remote_address() -> None:
    listeners = await trio.open_tcp_listeners(0, host="::1")
    port = listeners[0].socket.getsockname()[1]

    async def hold(stream: trio.SocketStream) -> None:
        await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, hold, listeners)
        client = await trio.open_tcp_stream("::1", port)
        assert TrioTCPStream(client).get_remote_address() is None
        await client.aclose()
        nursery.cancel_scope.cancel()


async def test_ipv6_connections_report_addresses() -> None:
    v6 = ("/ip6/::1/tcp/0",)
    async with P2PHost.open(_config(listen_addrs=v6)) as a, P2PHost.open(_config(listen_addrs=v6)) as b:
        info = await a.identify(b.addrs_with_peer_id()[0])
        assert info.observed_addr is not None and str(info.observed_addr).startswith("/ip6/::1/tcp/")
        stream = await a.new_stream(b.peer_id, ["/ipfs/ping/1.0.0"])
        assert stream.remote_address == ("::1", int(b.listen_addrs[0].value_for_protocol("tcp")))
        await stream.reset()
        with pytest.raises(StreamResetError):
            await stream.write(b"x")


# ---- D6: unsolicited dialing ----------------------------------------------------------------------------
async def test_stock_auto_connector_dials_peers_it_merely_knows() -> None:
    a, c = stock.stock_host(), stock.stock_host()
    async with a.run([stock.listen_addr()]), c.run([stock.listen_addr()]):
        a.get_peerstore().add_addrs(c.get_id(), c.get_addrs(), 3600)  # heard of c (e.g. from the DHT)
        with trio.fail_after(20):
            await a.get_network().auto_connector.maybe_connect()  # what its 10-30 s timer does
            await wait_for(lambda: bool(a.get_network().get_connections(c.get_id())), within=15)
        await a.close()
        await c.close()


async def test_no_unsolicited_dials() -> None:
    async with P2PHost.open(_config()) as a, P2PHost.open(_config()) as c:
        lid = ID(c.peer_id.to_bytes())
        a.libp2p_host.get_peerstore().add_addrs(lid, c.listen_addrs, 3600)
        a.address_book.add(c.peer_id, c.listen_addrs)
        await a._swarm.auto_connector.maybe_connect()
        await trio.sleep(0.5)
        assert a.connection_count() == 0 and c.connection_count() == 0


# ---- soak (python3 dev.py test --slow) ---------------------------------------------------------------
def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
async def test_soak_5000_inbound_cycles_memory_fds_tasks_flat() -> None:
    async with P2PHost.open(HostConfig(identity=HostIdentity.generate())) as server:  # TLS and Noise
        server.set_stream_handler(ECHO, _echo_1k)
        addr = str(server.addrs_with_peer_id()[0])
        assert (await _run_churn(addr, 500, "tls", "fresh", limit=300))["failures"] == 0
        await wait_for(lambda: server.connection_count() == 0)
        rss, fds, tasks = _rss_mib(), open_fds(), count_trio_tasks()
        for mode, security in (("fresh", "tls"), ("same", "noise"), ("fresh", "noise"), ("same", "tls")):
            result = await _run_churn(addr, 1250, security, mode, limit=600)
            assert result["failures"] == 0, result
        await wait_for(lambda: server.connection_count() == 0)
        await trio.sleep(0.5)
        assert open_fds() - fds <= 1
        assert count_trio_tasks() - tasks <= 2
        assert len(server.libp2p_host.get_peerstore().peer_ids()) == 1
        assert _rss_mib() - rss < 8.0  # a leak of even 2 KiB per connection would show here
