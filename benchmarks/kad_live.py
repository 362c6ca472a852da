"""Live DHT on loopback: 30 real nodes in 3 OS processes bootstrap, then peers look each other up.

    .venv/bin/python benchmarks/kad_live.py [--procs 3] [--nodes 10] [--lookups 20] [--seed 1]

The swarm (tests/helpers/kad_swarm.py) runs `--procs` worker processes of `--nodes` server-mode nodes;
node 0 is the bootstrap node, every other node bootstraps off it (connect, self and random lookups,
bucket refresh). Then, for `--lookups` random (searcher, target) pairs in different processes:

* find_peer: the searcher drops its connection to the target and forgets its addresses, then runs
  `find_peer(target, use_table=False)`: a real FIND_NODE lookup over the network that stops at the
  first reply naming the target (its hops may reuse connections the searcher already has);
* connect by peer id: the same preparation, then `host.connect(target_peer_id)`: the host asks its
  peer router (the DHT: the routing table if it holds the target, else a lookup), then dials the
  addresses found (TCP + TLS + yamux + identify included);
* cold client: a new client-mode node in this process that knows one swarm node connects to a target
  by peer id: its table has one entry, so this is a lookup from scratch plus every dial it needs.

Printed: bootstrap wall time, routing-table sizes, and the median / p90 / max of each measurement
(seconds), plus how many lookups found the target. The goal (issue "Kademlia DHT for nabu_py") is a
median find_peer under 1 s; the test suite checks correctness only (tests/integration/kad).
A shared 2-core VM is noisy: run it twice before reading much into a single figure.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.kad_swarm import cold_connect, swarm  # noqa: E402


def _summary(xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return (
        f"median {statistics.median(xs) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, max {xs[-1] * 1000:.1f} ms"
    )


async def run(procs: int, nodes: int, lookups: int, seed: int) -> None:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    async with swarm(procs, nodes) as s:
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        tables = await s.bootstrap()
        boot = time.perf_counter() - t1
        print(
            f"{len(s.nodes)} nodes in {procs} processes: started in {started:.1f} s, bootstrap {boot:.1f} s"
        )
        print(f"routing tables: min {min(tables)}, median {statistics.median(tables):.0f}, max {max(tables)}")
        finds: list[float] = []
        connects: list[float] = []
        found = 0
        for _ in range(lookups):
            searcher = rng.choice(s.nodes)
            target = rng.choice([n for n in s.nodes if n.proc != searcher.proc])
            addrs, seconds = await s.find(searcher, target)
            finds.append(seconds)
            found += any(target.addr.startswith(a + "/p2p/") for a in addrs)
            connects.append(await s.connect(searcher, target))
        print(f"find_peer (network lookup, target not connected), {lookups} lookups: {_summary(finds)}")
        print(f"  found the target's address: {found}/{lookups}")
        print(f"connect by peer id (peer router + dial), {lookups} dials: {_summary(connects)}")
        colds: list[float] = []
        ok = 0
        for _ in range(max(1, lookups // 2)):
            entry, target = rng.sample(s.nodes, 2)
            seconds, connected = await cold_connect(entry, target)
            colds.append(seconds)
            ok += connected
        print(f"cold client knowing 1 node, connect by peer id, {len(colds)} runs: {_summary(colds)}")
        print(f"  connected: {ok}/{len(colds)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, default=3)
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--lookups", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    trio.run(run, a.procs, a.nodes, a.lookups, a.seed)


if __name__ == "__main__":
    main()
