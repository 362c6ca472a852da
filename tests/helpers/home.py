"""An in-process home server (real SQLite, block store and HTTP on loopback) and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from peergos_node.cli.args import Args
from peergos_node.client.account import Network
from peergos_node.client.http import HttpAccount, HttpCoreNode, HttpMutablePointers, HttpStorage, PeergosHttp
from peergos_node.server.node import HomeServer, HomeServerConfig, open_home_server, serving_home_server

LOOPBACK = (
    "-port",
    "0",
    "-proxy-target",
    "/ip4/127.0.0.1/tcp/0",
    "-ipfs-swarm-addrs",
    "/ip4/127.0.0.1/tcp/0",
    "-enable-dht",
    "false",
)
"""Daemon arguments that keep every listener on loopback with free ports (tests never bind 0.0.0.0)."""


@dataclass
class RunningHome:
    server: HomeServer
    url: str
    net: Network

    def token(self) -> str:
        return self.server.tokens.create(self.server.storage.now_ms(), 1)[0]


@asynccontextmanager
async def home_server(path: Path, *args: str) -> AsyncIterator[RunningHome]:
    """A home server on 127.0.0.1 (free port) with its data in `path`."""
    cfg = HomeServerConfig.from_args(
        Args.parse(["-PEERGOS_PATH", str(path), *LOOPBACK, "-enable-gc", "false", *args], env={})
    )
    with open_home_server(cfg) as server:
        async with serving_home_server(server) as serving, httpx.AsyncClient() as client:
            url = serving.url
            http = PeergosHttp(url, client)
            net = Network(HttpStorage(http), HttpMutablePointers(http), HttpCoreNode(http), HttpAccount(http))
            yield RunningHome(server, url, net)
