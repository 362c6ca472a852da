"""The live goal's correctness half: 30 real nodes in 3 OS processes (10 each) on loopback bootstrap
off one node, then nodes find peers they are not connected to, in other processes, by network lookup
and by `host.connect(peer_id)`, and a newcomer knowing one node dials by peer id. Timings are printed
by benchmarks/kad_live.py, not asserted here. The slow variant adds lookups after a third of the
swarm died without a goodbye."""

from __future__ import annotations

import random

import pytest
import trio

from tests.helpers.kad_swarm import Swarm, SwarmNode, cold_connect, swarm


def _has_addr(target: SwarmNode, addrs: list[str]) -> bool:
    return any(target.addr == f"{a}/p2p/{target.peer}" for a in addrs)


async def _lookups(s: Swarm, rng: random.Random, count: int, alive: list[SwarmNode]) -> None:
    for _ in range(count):
        searcher = rng.choice(alive)
        target = rng.choice([n for n in alive if n.proc != searcher.proc])
        addrs, _ = await s.find(searcher, target)
        assert _has_addr(target, addrs), (searcher, target, addrs)
        await s.connect(searcher, target)


async def test_thirty_nodes_in_three_processes_find_each_other() -> None:
    rng = random.Random(7)
    with trio.fail_after(240):
        async with swarm(3, 10) as s:
            assert len(s.nodes) == 30 and len({n.peer for n in s.nodes}) == 30
            tables = await s.bootstrap()
            assert len(tables) == 30
            assert min(tables) >= 10, tables  # bootstrap reached well beyond the bootstrap node
            await _lookups(s, rng, 6, s.nodes)
            for _ in range(2):
                entry, target = rng.sample(s.nodes, 2)
                _, connected = await cold_connect(entry, target)
                assert connected


@pytest.mark.slow
async def test_swarm_lookups_survive_churn() -> None:
    rng = random.Random(11)
    with trio.fail_after(600):
        async with swarm(3, 10) as s:
            await s.bootstrap()
            await _lookups(s, rng, 30, s.nodes)
            await s.kill(2)  # ten nodes gone; the others still have them in their tables
            alive = [n for n in s.nodes if n.proc != 2]
            await _lookups(s, rng, 30, alive)
            for _ in range(5):
                entry, target = rng.sample(alive, 2)
                _, connected = await cold_connect(entry, target)
                assert connected
            assert all(t > 0 for t in await s.tables())
