"""Real DHT nodes on loopback for tests: hosts with a `KademliaService` each, fake kad peers that
misbehave on purpose, and raw kad request helpers (varint-framed protobuf over a real stream)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

import trio

from nabu_py.p2p import HostConfig, HostIdentity, P2PHost, P2PStream, PeerId
from nabu_py.protocols.kademlia.engine import KademliaConfig
from nabu_py.protocols.kademlia.messages import MAX_MESSAGE_SIZE, PROTOCOL_ID, Message
from nabu_py.protocols.kademlia.service import DhtConfig, KademliaService

FAST = KademliaConfig(request_timeout=2.0, query_timeout=10.0, refresh_interval=None)
"""Engine settings for tests: short timeouts, no periodic refresh."""


@dataclass
class Node:
    """One host with its DHT service."""

    host: P2PHost
    dht: KademliaService

    @property
    def peer_id(self) -> PeerId:
        return self.host.peer_id

    @property
    def addr(self) -> str:
        return str(self.host.addrs_with_peer_id()[0])


async def start_node(stack: AsyncExitStack, config: DhtConfig | None = None, **host_kw: Any) -> Node:
    """A host plus DHT service (server mode, FAST engine settings unless `config` says otherwise)."""
    host = await stack.enter_async_context(
        P2PHost.open(HostConfig(identity=HostIdentity.generate(), **host_kw))
    )
    cfg = config or DhtConfig(mode="server", kademlia=FAST)
    dht = await stack.enter_async_context(KademliaService.start(host, cfg))
    return Node(host, dht)


async def start_network(
    stack: AsyncExitStack, n: int, config: DhtConfig | None = None, *, bootstrap: bool = True
) -> list[Node]:
    """`n` server nodes; every node after the first bootstraps off the first one."""
    nodes: list[Node] = []
    base = config or DhtConfig(mode="server", kademlia=FAST)
    for i in range(n):
        cfg = replace(base, bootstrap_peers=() if i == 0 else (nodes[0].addr,))
        nodes.append(await start_node(stack, cfg))
    if bootstrap:
        with trio.fail_after(30):
            for node in nodes[1:]:
                await node.dht.bootstrap()
    return nodes


async def raw_host(stack: AsyncExitStack) -> P2PHost:
    """A bare host (no DHT) to speak kad by hand."""
    return await stack.enter_async_context(P2PHost.open(HostConfig(identity=HostIdentity.generate())))


async def send_request(stream: P2PStream, msg: Message | bytes) -> Message | None:
    """Write one framed request and read one framed reply (None at EOF)."""
    payload = msg.encode() if isinstance(msg, Message) else msg
    await stream.write_message(payload)
    reply = await stream.read_message(MAX_MESSAGE_SIZE)
    return None if reply is None else Message.decode(reply)


async def stream_was_reset(stream: P2PStream, within: float = 5.0) -> bool:
    """True when the remote reset `stream` (reads fail) rather than answering or closing cleanly."""
    from nabu_py.p2p import StreamError

    with trio.fail_after(within):
        try:
            while await stream.read(65536):
                pass
        except StreamError:
            return True
    return False


FakeBehaviour = Callable[[P2PStream, Message], Awaitable[bool]]
"""Handles one request on a fake kad server's stream; returns False to end the stream."""


class FakeKadServer:
    """A host that announces /ipfs/kad/1.0.0 and answers with `behaviour` (counts streams, requests)."""

    def __init__(self, host: P2PHost, behaviour: FakeBehaviour) -> None:
        self.host = host
        self.behaviour = behaviour
        self.streams = 0
        self.requests = 0
        self.closed_by_peer = 0
        """Streams the remote ended cleanly (EOF) before we did."""
        host.set_stream_handler(PROTOCOL_ID, self._serve)

    async def _serve(self, stream: P2PStream) -> None:
        self.streams += 1
        while True:
            payload = await stream.read_message(MAX_MESSAGE_SIZE)
            if payload is None:
                self.closed_by_peer += 1
                return
            self.requests += 1
            if not await self.behaviour(stream, Message.decode(payload)):
                return


async def fake_server(stack: AsyncExitStack, behaviour: FakeBehaviour) -> FakeKadServer:
    """Start a `FakeKadServer` on a new host."""
    return FakeKadServer(await raw_host(stack), behaviour)
