"""The embeddable nabu_py node: a p2p host with the `/http` proxy, an optional block store, and the ASGI
apps that expose them (spec/nabu.md §1.2, §1.3, §4, §6; design.md §2-§3).

    async with NabuNode.open(NodeConfig(identity, listen_addrs=(...), proxy_target=("127.0.0.1", 8003)),
                             blockstore=store) as node:
        resp = await node.http.request(peer, "POST", "/api/v0/id")   # call a peer's proxy target
        async with serving(node.api_app(), "127.0.0.1", 5001) as url: ...  # /api/v0 + /p2p/ over HTTP

What `open` does, in order: start the `P2PHost` (listen on every address or fail; bootstrap in the
background; the address book given in the config, else a persistent SQLite one at
`address_book_path`, else an in-memory one), create the `HttpProxy` and, when `proxy_target` is set,
serve inbound `/http` streams towards it. On exit the host closes (listeners, connections, tasks) and an
address book the node opened is closed. The block store is the caller's: it is used, never closed
(`nabu daemon` opens and closes its own).

Like Nabu's `EmbeddedPeer`, a node without a block store is a host plus the `/http` proxy, which is what
a Peergos server embeds (it keeps blocks in its own store and answers `/http` requests on its own p2p
API listener, the proxy target). The DHT service plugs its peer lookup into `node.host.set_peer_router`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nabu_py.api import NabuApi
from nabu_py.blockstore import Blockstore
from nabu_py.p2p import AddressBook, HostConfig, HostIdentity, P2PHost, PeerId, SqliteAddressBook, YamuxConfig
from nabu_py.protocols.http_proxy import HttpProxy, HttpProxyConfig, P2PGateway

__all__ = ["NabuNode", "NodeConfig"]


@dataclass(frozen=True)
class NodeConfig:
    """What a node needs; only `identity` is required."""

    identity: HostIdentity
    listen_addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    """Swarm multiaddrs (`Addresses.Swarm`), e.g. `/ip4/0.0.0.0/tcp/4001` and `/ip6/::/tcp/4001`."""
    bootstrap: tuple[str, ...] = ()
    """`/ip4/.../tcp/.../p2p/<id>` peers to connect to at start."""
    proxy_target: tuple[str, int] | None = None
    """Where inbound `/http` requests go, (host, port) of a local HTTP server (None: not served)."""
    http_proxy: HttpProxyConfig = field(default_factory=HttpProxyConfig)
    """Limits and timeouts of the `/http` protocol, both sides."""
    address_book: AddressBook | None = None
    """An address book to use (the caller closes it); takes precedence over `address_book_path`."""
    address_book_path: Path | None = None
    """A persistent SQLite address book file the node opens and closes (None: in memory)."""
    security: tuple[str, ...] = ("tls", "noise")
    """Security protocols in preference order."""
    max_connections: int = 512
    dial_timeout: float = 10.0
    yamux: YamuxConfig = field(default_factory=YamuxConfig)


class NabuNode:
    """A running node; create it with `async with NabuNode.open(config) as node:`."""

    def __init__(self, config: NodeConfig, host: P2PHost, blockstore: Blockstore | None) -> None:
        """Internal: use `NabuNode.open`."""
        self.config = config
        self.host = host
        """The libp2p host (connect, streams, identify, ping, peer router hook)."""
        self.blockstore = blockstore
        """The block store served by the API's block endpoints (None: no block endpoints)."""
        self.http = HttpProxy(host, config.http_proxy)
        """`/http`: `http.request(peer, ...)` calls a peer; inbound streams go to `config.proxy_target`."""
        self.gateway = P2PGateway(self.http)
        """ASGI app for `/p2p/<peer>/http/...` alone (what Peergos serves on its gateway address)."""

    @property
    def peer_id(self) -> PeerId:
        """Our peer id."""
        return self.host.peer_id

    def api_app(self) -> NabuApi:
        """ASGI app for the node's API address: `/api/v0/...` (Nabu's API) and `/p2p/...` (the gateway)."""
        return NabuApi(self)

    @classmethod
    @asynccontextmanager
    async def open(cls, config: NodeConfig, blockstore: Blockstore | None = None) -> AsyncIterator[NabuNode]:
        """Start the host and the `/http` service; stop them on exit (see the module docstring)."""
        book: AddressBook | None = config.address_book
        own_book = False
        if book is None and config.address_book_path is not None:
            book = SqliteAddressBook(config.address_book_path)
            own_book = True
        try:
            host_config = HostConfig(
                identity=config.identity,
                listen_addrs=config.listen_addrs,
                security=config.security,
                bootstrap=config.bootstrap,
                address_book=book,
                max_connections=config.max_connections,
                dial_timeout=config.dial_timeout,
                yamux=config.yamux,
            )
            async with P2PHost.open(host_config) as host:
                node = cls(config, host, blockstore)
                if config.proxy_target is not None:
                    node.http.serve(config.proxy_target)
                yield node
        finally:
            if own_book and book is not None:
                book.close()
