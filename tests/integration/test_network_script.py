"""docker-compose.yml's node script, run outside containers on loopback: a PKI node and a home server
find each other through the shared directory and the home server mirrors the PKI over libp2p.
(No Docker engine runs on these machines, so the container layer itself is not exercised here.)"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx

from peergos_node.client.account import Network, login, signup
from peergos_node.client.http import HttpAccount, HttpCoreNode, HttpMutablePointers, HttpStorage, PeergosHttp
from tests.helpers.polling import eventually
from tests.helpers.procs import ROOT, running

SCRIPT = ROOT / "docker" / "node.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env(role: str, data: Path, shared: Path) -> dict[str, str]:
    return {
        "ROLE": role,
        "DATA": str(data),
        "SHARED": str(shared),
        "LISTEN_HOST": "127.0.0.1",
        "SWARM_IP": "127.0.0.1",
        "API_PORT": str(free_port()),
        "P2P_API_PORT": str(free_port()),
        "SWARM_PORT": str(free_port()),
        "PEERGOS": f"{sys.executable} -m peergos_node.cli.main",
        "EXTRA_ARGS": "-enable-dht false -mirror.period.seconds 1 -max-daily-signups 1000000000",
    }


async def test_compose_node_script_builds_a_network(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    pki_env, home_env = env("pki", tmp_path / "pki", shared), env("home", tmp_path / "home", shared)
    with running(["sh", str(SCRIPT)], env=pki_env) as pki:
        pki.wait_for("Peergos daemon started")
        with running(["sh", str(SCRIPT)], env=home_env) as home:
            token = home.wait_for(r"signup=true&token=([0-9a-f]{64})").group(1)
            home.wait_for("PKI mirror of")
            url = f"http://127.0.0.1:{home_env['API_PORT']}"
            async with httpx.AsyncClient() as client:
                http = PeergosHttp(url, client)
                net = Network(
                    HttpStorage(http), HttpMutablePointers(http), HttpCoreNode(http), HttpAccount(http)
                )
                await eventually(lambda: net.core.get_usernames(""), lambda names: "peergos" in names)
                await signup(net, "nina", "nina-password", token)
                assert (await login(net, "nina", "nina-password")).username == "nina"
