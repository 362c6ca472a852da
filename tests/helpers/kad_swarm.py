"""A live DHT swarm on loopback: worker OS processes running several nodes each, driven over stdin/stdout.

    python -m tests.helpers.kad_swarm worker --nodes 10 [--bootstrap ADDR]

A worker starts `--nodes` hosts, each with a server-mode `KademliaService` (node 0 of a worker without
`--bootstrap` is the swarm's bootstrap node; every other node bootstraps off it or off ADDR), prints
`{"event":"ready","nodes":[{"peer","addr"}...]}` and answers one JSON command per line:

    {"cmd":"bootstrap"}                      every node runs dht.bootstrap() -> {"tables":[sizes]}
    {"cmd":"tables"}                         -> {"tables":[sizes]}
    {"cmd":"find","node":i,"target":id}      node i, disconnected from `target` and with no address-book
                                             entry for it, runs find_peer(target, use_table=False)
                                             -> {"addrs":[...],"seconds":t}
    {"cmd":"connect","node":i,"target":id}   same preparation, then host.connect(target) by peer id
                                             (the DHT is the peer router) -> {"seconds":t}

It exits when its stdin closes. `swarm(procs, nodes)` (async context manager) starts the workers, one
after the other so later ones can bootstrap off the first, and kills them all on exit; `Swarm` sends
commands with a timeout on each. Used by tests/integration/kad/test_live_swarm.py (correctness) and
benchmarks/kad_live.py (timings).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from nabu_py.protocols.kademlia.service import KademliaService
from tests.helpers.p2p import wait_for

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0


# ---- worker side ----------------------------------------------------------------------------------------
async def _boot(dht: KademliaService, limiter: trio.CapacityLimiter) -> None:
    async with limiter:
        await dht.bootstrap()


async def _worker(n: int, bootstrap: str | None) -> None:
    from nabu_py.p2p import HostConfig, HostIdentity, P2PHost, PeerId
    from nabu_py.protocols.kademlia.engine import KademliaConfig
    from nabu_py.protocols.kademlia.service import DhtConfig

    engine_cfg = KademliaConfig(request_timeout=5.0, query_timeout=30.0)
    async with AsyncExitStack() as stack:
        nodes: list[tuple[P2PHost, KademliaService]] = []
        for i in range(n):
            host = await stack.enter_async_context(P2PHost.open(HostConfig(identity=HostIdentity.generate())))
            boot = (
                bootstrap
                if bootstrap is not None
                else (None if i == 0 else str(nodes[0][0].addrs_with_peer_id()[0]))
            )
            cfg = DhtConfig(
                mode="server", kademlia=engine_cfg, bootstrap_peers=() if boot is None else (boot,)
            )
            dht = await stack.enter_async_context(KademliaService.start(host, cfg))
            nodes.append((host, dht))

        def out(obj: dict[str, Any]) -> None:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

        out(
            {
                "event": "ready",
                "nodes": [{"peer": str(h.peer_id), "addr": str(h.addrs_with_peer_id()[0])} for h, _ in nodes],
            }
        )

        async def tables() -> list[int]:
            return [await d.routing_table_size() for _, d in nodes]

        async def prepare(host: P2PHost, target: PeerId) -> None:
            if host.is_connected(target):
                await host.disconnect(target)
                await wait_for(lambda: not host.is_connected(target), within=10)
            host.address_book.remove(target)

        stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
        buf = b""
        while True:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                try:
                    reply: dict[str, Any] = {}
                    if msg["cmd"] == "bootstrap":
                        limiter = trio.CapacityLimiter(4)
                        async with trio.open_nursery() as nursery:
                            for _, d in nodes[1 if bootstrap is None else 0 :]:
                                nursery.start_soon(_boot, d, limiter)
                        reply = {"tables": await tables()}
                    elif msg["cmd"] == "tables":
                        reply = {"tables": await tables()}
                    elif msg["cmd"] in ("find", "connect"):
                        host, dht = nodes[msg["node"]]
                        target = PeerId.parse(msg["target"])
                        await prepare(host, target)
                        t0 = time.perf_counter()
                        if msg["cmd"] == "find":
                            addrs = await dht.find_peer(target, use_table=False)
                            reply = {"addrs": [str(a) for a in addrs]}
                        else:
                            await host.connect(target)
                        reply["seconds"] = time.perf_counter() - t0
                    else:
                        raise ValueError(f"unknown command {msg['cmd']}")
                    out({"id": msg["id"], "ok": True, **reply})
                except Exception as e:  # reported to the driver, which fails the test
                    out({"id": msg["id"], "ok": False, "error": f"{type(e).__name__}: {e}"})


def main(argv: list[str]) -> None:
    """Worker entry point (see module docstring)."""
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["worker"])
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--bootstrap")
    args = p.parse_args(argv)
    trio.run(_worker, args.nodes, args.bootstrap)


# ---- driver side ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwarmNode:
    """One node of the swarm: which worker runs it, its index there, its peer id and address."""

    proc: int
    index: int
    peer: str
    addr: str


class _Worker:
    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self._buf = b""
        self._next = 0

    async def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while b"\n" not in self._buf:
            chunk = await self.proc.stdout.receive_some(65536)
            if not chunk:
                raise AssertionError("swarm worker exited unexpectedly")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    async def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        self._next += 1
        assert self.proc.stdin is not None
        with trio.fail_after(COMMAND_TIMEOUT):
            await self.proc.stdin.send_all(
                (json.dumps({"id": self._next, "cmd": cmd, **args}) + "\n").encode()
            )
            while True:
                answer = await self.line()
                if answer.get("id") == self._next:
                    break
        if not answer.get("ok"):
            raise AssertionError(f"swarm worker failed {cmd}: {answer.get('error')}")
        return answer


class Swarm:
    """Handle on the running workers."""

    def __init__(self, workers: list[_Worker], nodes: list[SwarmNode]) -> None:
        self._workers = workers
        self.nodes = nodes
        """Every node, worker by worker; `nodes[0]` is the bootstrap node."""

    async def bootstrap(self) -> list[int]:
        """Bootstrap every node (workers in parallel); return all routing-table sizes."""
        sizes: list[list[int]] = [[] for _ in self._workers]

        async def one(i: int) -> None:
            sizes[i] = (await self._workers[i].command("bootstrap"))["tables"]

        async with trio.open_nursery() as nursery:
            for i in range(len(self._workers)):
                nursery.start_soon(one, i)
        return [s for per in sizes for s in per]

    async def kill(self, proc: int) -> None:
        """Kill worker `proc` outright (its nodes vanish without a goodbye: churn)."""
        w = self._workers[proc]
        w.proc.kill()
        await w.proc.wait()

    async def tables(self) -> list[int]:
        """Routing-table sizes of every node."""
        out: list[int] = []
        for w in self._workers:
            if w.proc.returncode is None:
                out.extend((await w.command("tables"))["tables"])
        return out

    async def find(self, searcher: SwarmNode, target: SwarmNode) -> tuple[list[str], float]:
        """`searcher` looks `target` up by network lookup; (addresses found, seconds)."""
        r = await self._workers[searcher.proc].command("find", node=searcher.index, target=target.peer)
        return r["addrs"], r["seconds"]

    async def connect(self, searcher: SwarmNode, target: SwarmNode) -> float:
        """`searcher` connects to `target` by peer id only; seconds."""
        r = await self._workers[searcher.proc].command("connect", node=searcher.index, target=target.peer)
        seconds: float = r["seconds"]
        return seconds


async def cold_connect(entry: SwarmNode, target: SwarmNode) -> tuple[float, bool]:
    """A new client-mode node in this process that knows only `entry` connects to `target` by peer id
    (its routing table holds one peer, so the peer router runs a real lookup). (seconds, connected)."""
    from nabu_py.p2p import HostConfig, HostIdentity, P2PHost, PeerId
    from nabu_py.protocols.kademlia.engine import KademliaConfig
    from nabu_py.protocols.kademlia.service import DhtConfig

    cfg = DhtConfig(mode="client", kademlia=KademliaConfig(request_timeout=5.0, refresh_interval=None))
    async with (
        P2PHost.open(HostConfig(identity=HostIdentity.generate(), listen_addrs=())) as host,
        KademliaService.start(host, cfg) as dht,
    ):
        with trio.fail_after(COMMAND_TIMEOUT):
            await host.connect(entry.addr)
            await wait_for(lambda: len(dht.engine.table) >= 1, within=COMMAND_TIMEOUT, interval=0.002)
            peer = PeerId.parse(target.peer)
            t0 = time.perf_counter()
            await host.connect(peer)
            return time.perf_counter() - t0, host.is_connected(peer)


@asynccontextmanager
async def swarm(procs: int, nodes_per_proc: int) -> AsyncIterator[Swarm]:
    """Start `procs` workers of `nodes_per_proc` nodes each; kill them all on exit."""
    workers: list[_Worker] = []
    nodes: list[SwarmNode] = []
    try:
        for p in range(procs):
            argv = [sys.executable, "-m", "tests.helpers.kad_swarm", "worker", "--nodes", str(nodes_per_proc)]
            if nodes:
                argv += ["--bootstrap", nodes[0].addr]
            proc = await trio.lowlevel.open_process(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True
            )
            w = _Worker(proc)
            workers.append(w)
            with trio.fail_after(START_TIMEOUT):
                ready = await w.line()
            assert ready.get("event") == "ready", ready
            nodes.extend(SwarmNode(p, i, n["peer"], n["addr"]) for i, n in enumerate(ready["nodes"]))
        yield Swarm(workers, nodes)
    finally:
        with trio.CancelScope(shield=True):
            for w in workers:
                if w.proc.stdin is not None:
                    await w.proc.stdin.aclose()
            for w in workers:
                with trio.move_on_after(15):
                    await w.proc.wait()
                if w.proc.returncode is None:
                    w.proc.kill()
                    await w.proc.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
