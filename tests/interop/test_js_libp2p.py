"""Interop with js-libp2p (tests/interop/js, current js-libp2p 3.x on Node 20): identify and ping in both
directions over `/tls/1.0.0` and over `/noise`, each with yamux, plus a 1 MB echo each way.

The js node is a separate OS process (jspeer.py). py -> js: our host dials it, pings, runs identify
(checking its key matches its peer id) and echoes through its /interop/echo/1.0.0 handler. js -> py: the
js node dials our host, pings, identifies us (our answer must carry our protocols and listen address) and
echoes through our handler. The js side reports which security protocol and muxer it negotiated.
"""

from __future__ import annotations

import os

import pytest
import trio

from nabu_py.p2p import HostConfig, HostIdentity, P2PHost, P2PStream, PeerId
from tests.interop.jspeer import js_peer

ECHO = "/interop/echo/1.0.0"
SECURITY_IDS = {"tls": "/tls/1.0.0", "noise": "/noise"}


async def _echo(stream: P2PStream) -> None:
    while data := await stream.read(1 << 20):
        await stream.write(data)


def _config(security: str) -> HostConfig:
    return HostConfig(identity=HostIdentity.generate(), security=(security,))


@pytest.mark.parametrize("security", ["tls", "noise"])
async def test_py_dials_js(security: str) -> None:
    async with js_peer(security) as js, P2PHost.open(_config(security)) as host:
        js_id = PeerId.parse(js.peer_id)
        with trio.fail_after(30):
            assert await host.connect(js.addrs[0]) == js_id

            info = await host.identify(js_id)
            assert info.peer_id == js_id
            assert info.agent_version.startswith("js-libp2p/")
            assert "/ipfs/ping/1.0.0" in info.protocols and ECHO in info.protocols
            assert [str(a) for a in info.listen_addrs] == [js.addrs[0].rsplit("/p2p/", 1)[0]]
            assert info.observed_addr is not None

            rtts = await host.ping(js_id, count=3)
            assert len(rtts) == 3 and all(0 < r < 5 for r in rtts)

            payload = os.urandom(1_000_000)
            stream = await host.new_stream(js_id, ["/not/supported/1.0.0", ECHO])
            assert stream.protocol == ECHO

            async def send() -> None:
                await stream.write(payload)
                await stream.close_write()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                echoed = await stream.read_to_eof(2_000_000)
            await stream.close()
            assert echoed == payload

            conns = await js.command("connections", peer=str(host.peer_id))
            assert conns["count"] == 1
            assert conns["encryption"] == [SECURITY_IDS[security]]
            assert conns["multiplexer"] == ["/yamux/1.0.0"]


@pytest.mark.parametrize("security", ["tls", "noise"])
async def test_js_dials_py(security: str) -> None:
    async with js_peer(security) as js, P2PHost.open(_config(security)) as host:
        host.set_stream_handler(ECHO, _echo)
        ours = str(host.addrs_with_peer_id()[0])
        with trio.fail_after(30):
            dialed = await js.command("dial", addr=ours)
            assert dialed["remotePeer"] == str(host.peer_id)
            assert dialed["encryption"] == SECURITY_IDS[security]
            assert dialed["multiplexer"] == "/yamux/1.0.0"

            ident = await js.command("identify", addr=ours)
            assert ident["peerId"] == str(host.peer_id)
            assert ident["agentVersion"] == host.config.agent_version
            assert ident["protocolVersion"] == "ipfs/0.1.0"
            assert set(ident["protocols"]) >= {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", ECHO}
            assert ident["listenAddrs"] == [ours.rsplit("/p2p/", 1)[0]]
            assert ident["observedAddr"].startswith("/ip4/127.0.0.1/tcp/")

            pinged = await js.command("ping", addr=ours)
            assert 0 <= pinged["rtt"] < 5000

            echoed = await js.command("echo", addr=ours, size=1_000_000)
            assert echoed["bytes"] == 1_000_000

            # our side identified the js peer on the inbound connection by itself
            info = await host.wait_identified(PeerId.parse(js.peer_id))
            assert info.agent_version.startswith("js-libp2p/")
            assert host.connection_count() == 1
