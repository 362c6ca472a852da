"""Kademlia DHT simulation: thousands of `KademliaEngine`s over an in-memory network
(design.md §4 practice 1: the simulator drives the very same sans-IO cores a live node runs).

    python -m simulations.dht --nodes N --lookups L --churn C --seed S [--plot DIR]

Model (simulations/README.md has the full definitions):
- Time is simulated: a heap of events (request delivered, reply delivered, timer due, lookup
  started) ordered by time; `now` is the event's time. Nothing sleeps; wall time is pure CPU.
- Latency: each node has an access delay drawn once, uniform in [5, 50] ms; a message from a to b
  takes access(a) + access(b) + an exponential jitter of mean 5 ms. All randomness comes from one
  `random.Random(seed)`, so a run is reproducible.
- Every node is a DHT server; peers are sha256 of nothing in particular: Ed25519-style identity peer
  ids built from the RNG. Requests are delivered as `Message` objects (or, with `--wire`, encoded and
  decoded through the real codec on every hop).
- Bootstrap `seeded` (default): the table of every node is first offered, through
  `RoutingTable.add` (so the k-bucket and replacement-cache logic decide), up to k+2 peers drawn at
  random from each of its buckets' key ranges, as if the node had been up for a while; then every
  node joins the way a real one does, with a FIND_NODE lookup of its own id through its engine,
  spread over the first 60 simulated seconds, and the peers it reaches insert it as a server.
  Bootstrap `join`: nodes start one by one with a single bootstrap peer in their table and run the
  engine's full `bootstrap()` (self lookup + one random lookup per bucket); slow beyond ~2,000 nodes.
- Churn: after bootstrap a fraction `C` of nodes dies silently: they stay in other nodes' tables but
  never answer; requests to them cost the per-request timeout (10 s) and lookups route around them.
- Workload: `L` find-peer lookups, each from a random live node for the id of another random live
  node, started 0.1 simulated s apart (so a few overlap).

The last line printed is a JSON object with the results (see README for each field).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from nabu_py.protocols.kademlia.engine import (
    Action,
    KademliaConfig,
    KademliaEngine,
    Penalise,
    QueryFinished,
    Reply,
    SendRequest,
)
from nabu_py.protocols.kademlia.keys import kad_key
from nabu_py.protocols.kademlia.messages import Peer

_REQUEST = 0
_RESPONSE = 1
_TIMER = 2
_START = 3
_JOIN = 4

JOIN_WINDOW = 60.0
"""Simulated seconds over which the nodes of a `seeded` bootstrap run their self lookups."""
LOOKUP_SPACING = 0.1
"""Simulated seconds between the starts of two workload lookups."""
SEED_EXTRA = 2
"""Peers offered per bucket beyond k during seeded population (they land in replacement caches)."""


@dataclass(frozen=True)
class SimParams:
    """One simulation run's parameters."""

    nodes: int
    lookups: int
    churn: float = 0.0
    seed: int = 1
    k: int = 20
    alpha: int = 3
    request_timeout: float = 10.0
    bootstrap: str = "seeded"
    wire: bool = False


def _peer_id(rng: random.Random) -> bytes:
    # identity multihash of a protobuf Ed25519 public key, like a 12D3KooW... peer id
    return b"\x00\x24\x08\x01\x12\x20" + rng.randbytes(32)


def _addr(i: int) -> bytes:
    # binary /ip4/198.18.x.y/tcp/4001 (198.18.0.0/15 is the benchmarking range; never dialled)
    return b"\x04" + bytes((198, 18 + (i >> 16) % 2, (i >> 8) & 0xFF, i & 0xFF)) + b"\x06\x0f\xa1"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    idx = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return float(s[idx])


class Simulation:
    """The network: engines, liveness, latency model and the event queue."""

    def __init__(self, params: SimParams) -> None:
        self.p = params
        self.rng = random.Random(params.seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, int, int, int, int, Any]] = []
        self._seq = 0
        n = params.nodes
        self.ids = [_peer_id(self.rng) for _ in range(n)]
        self.addrs = [(_addr(i),) for i in range(n)]
        self.peers = [Peer(self.ids[i], self.addrs[i]) for i in range(n)]
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.keys = [kad_key(pid) for pid in self.ids]
        self.access = [self.rng.uniform(0.005, 0.050) for _ in range(n)]
        self.alive = [True] * n
        self.timer_at: list[float | None] = [None] * n
        config = KademliaConfig(
            k=params.k,
            alpha=params.alpha,
            request_timeout=params.request_timeout,
            query_timeout=600.0,
            max_queries=1024,
            refresh_interval=None,
            purge_interval=None,
        )
        self.engines = [
            KademliaEngine(self.ids[i], self.addrs[i], config=config, rng=random.Random(self.rng.random()))
            for i in range(n)
        ]
        self.messages = 0
        self.penalties = 0
        self.finished: dict[tuple[int, int], tuple[QueryFinished, float]] = {}
        self.started_at: dict[tuple[int, int], float] = {}
        self._watch: set[tuple[int, int]] = set()

    # -- event machinery -----------------------------------------------------------------------

    def _push(self, t: float, kind: int, dst: int, src: int, qid: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, dst, src, qid, payload))

    def _delay(self, a: int, b: int) -> float:
        return self.access[a] + self.access[b] + self.rng.expovariate(200.0)

    def _schedule_timer(self, i: int) -> None:
        d = self.engines[i].next_deadline()
        if d is None:
            return
        cur = self.timer_at[i]
        if cur is None or d < cur:
            self.timer_at[i] = d
            self._push(d, _TIMER, i, i, 0, None)

    def _do(self, i: int, actions: list[Action]) -> None:
        for act in actions:
            if type(act) is SendRequest:
                self.messages += 1
                j = self.index.get(act.peer.id)
                if j is None or not self.alive[j]:
                    continue  # silently dead: the requester's deadline will fire
                payload: Any = act.message.encode() if self.p.wire else act.message
                qid = act.query_id if act.expect_reply else -1
                self._push(self.now + self._delay(i, j), _REQUEST, j, i, qid, payload)
            elif type(act) is QueryFinished:
                key = (i, act.query_id)
                if key in self._watch:
                    self.finished[key] = (act, self.now)
            elif type(act) is Penalise:
                self.penalties += 1
        self._schedule_timer(i)

    def run_until_idle(self, until: float = float("inf")) -> None:
        """Process events in time order until the queue is empty (or `until` is reached)."""
        q = self._queue
        engines = self.engines
        ids = self.ids
        wire = self.p.wire
        while q and q[0][0] <= until:
            t, _, kind, dst, src, qid, payload = heapq.heappop(q)
            self.now = t
            if kind == _REQUEST:
                if not self.alive[dst]:
                    continue
                actions = engines[dst].handle_request(
                    ids[src], payload, t, sender_addrs=self.addrs[src], sender_is_server=True
                )
                rest: list[Action] = []
                for act in actions:
                    if type(act) is Reply:
                        if qid >= 0 and self.alive[src]:
                            reply: Any = act.message.encode() if wire else act.message
                            self._push(t + self._delay(dst, src), _RESPONSE, src, dst, qid, reply)
                    else:
                        rest.append(act)
                self._do(dst, rest)
            elif kind == _RESPONSE:
                if self.alive[dst]:
                    self._do(dst, engines[dst].on_response(qid, ids[src], payload, t))
            elif kind == _TIMER:
                if self.timer_at[dst] == t:
                    self.timer_at[dst] = None
                if self.alive[dst]:
                    self._do(dst, engines[dst].on_timer(t))
            elif kind == _START:
                qid, actions = engines[dst].find_peer(ids[src], t)
                self._watch.add((dst, qid))
                self.started_at[(dst, qid)] = t
                self._do(dst, actions)
                payload.append((dst, qid))
            elif kind == _JOIN:
                self._do(dst, engines[dst].bootstrap(t, refresh_buckets=payload))

    # -- bootstrap -----------------------------------------------------------------------------

    def seed_tables(self) -> int:
        """Offer every node up to k+SEED_EXTRA random peers per bucket range via `RoutingTable.add`."""
        order = sorted(range(self.p.nodes), key=lambda i: self.keys[i])
        sorted_keys = [self.keys[i] for i in order]
        offered = 0
        rng = self.rng
        m = self.p.k + SEED_EXTRA
        for i in range(self.p.nodes):
            table = self.engines[i].table
            x = self.keys[i]
            for cpl in range(256):
                shift = 255 - cpl
                own = x >> shift
                # keys sharing cpl+1 bits with x: only x itself left -> deeper buckets are empty
                lo_own = bisect_left(sorted_keys, own << shift)
                hi_own = bisect_left(sorted_keys, (own + 1) << shift)
                other = own ^ 1
                lo = bisect_left(sorted_keys, other << shift)
                hi = bisect_left(sorted_keys, (other + 1) << shift)
                if hi > lo:
                    picks = range(lo, hi) if hi - lo <= m else rng.sample(range(lo, hi), m)
                    for pos in picks:
                        table.add(self.peers[order[pos]], 0.0, server=True)
                    offered += len(picks)
                if hi_own - lo_own <= 1:
                    break
        return offered

    def join_seeded(self) -> None:
        """Every node runs a self lookup (its engine's bootstrap without bucket refresh)."""
        for i in range(self.p.nodes):
            self._push(self.rng.uniform(0.0, JOIN_WINDOW), _JOIN, i, i, 0, False)
        self.run_until_idle()

    def join_sequential(self) -> None:
        """Nodes start one at a time knowing one earlier node, and run a full engine bootstrap."""
        spacing = 1.0
        for i in range(1, self.p.nodes):
            j = self.rng.randrange(i)
            self.engines[i].add_peer(self.ids[j], self.addrs[j], i * spacing, server=True)
            self._push(i * spacing, _JOIN, i, i, 0, True)
        self.run_until_idle()

    # -- workload ------------------------------------------------------------------------------

    def kill(self, fraction: float) -> None:
        """Make `fraction` of the nodes silently dead."""
        n = self.p.nodes
        for i in self.rng.sample(range(n), round(fraction * n)):
            self.alive[i] = False

    @staticmethod
    def true_closest(target: int, live_sorted: list[int], count: int, exclude: int) -> set[int]:
        """Keys of the `count` live nodes closest to `target`, `exclude` (the origin) left out.

        Keys sharing a p-bit prefix with the target form one range of the sorted keys, and each is
        closer than any key outside it: find the longest prefix with enough keys, then sort by XOR.
        """
        for plen in range(256, -1, -1):
            shift = 256 - plen
            pre = target >> shift
            lo = bisect_left(live_sorted, pre << shift)
            hi = bisect_left(live_sorted, (pre + 1) << shift)
            if hi - lo > count or plen == 0:
                cand = sorted((x for x in live_sorted[lo:hi] if x != exclude), key=lambda x: x ^ target)
                return set(cand[:count])
        return set()

    def run_lookups(self) -> dict[str, Any]:
        """Run the find-peer workload; return the statistics."""
        live = [i for i in range(self.p.nodes) if self.alive[i]]
        started: list[tuple[int, int]] = []
        targets: dict[tuple[int, int], int] = {}
        t0 = self.now + 1.0
        pending: list[tuple[int, int, float]] = []
        for n in range(self.p.lookups):
            a, b = self.rng.sample(live, 2)
            pending.append((a, b, t0 + n * LOOKUP_SPACING))
        for a, b, t in pending:
            self._push(t, _START, a, b, 0, started)
        self.run_until_idle()
        for (_, b, _), key in zip(pending, started, strict=True):
            targets[key] = b
        live_sorted = sorted(self.keys[i] for i in live)
        hops: list[float] = []
        msgs: list[float] = []
        recalls: list[float] = []
        lat: list[float] = []
        ok = 0
        for key, b in targets.items():
            a = key[0]
            done = self.finished.get(key)
            if done is None:
                continue
            fin, t_end = done
            lat.append(t_end - self.started_at[key])
            it = fin.lookup.iter
            msgs.append(it.requests)
            result = fin.result
            assert isinstance(result, list)
            found = {p.id for p in result}
            if self.ids[b] in found:
                ok += 1
                depth = it.depth(self.ids[b])
                assert depth is not None
                hops.append(float(depth + 1))
            truth = self.true_closest(self.keys[b], live_sorted, self.p.k, self.keys[a])
            got = {kad_key(pid) for pid in found}
            recalls.append(len(truth & got) / len(truth))
        n = max(1, len(targets))
        return {
            "success_rate": ok / n,
            "mean_hops": sum(hops) / len(hops) if hops else 0.0,
            "p95_hops": _percentile(hops, 0.95),
            "max_hops": max(hops) if hops else 0.0,
            "mean_messages": sum(msgs) / len(msgs) if msgs else 0.0,
            "p95_messages": _percentile(msgs, 0.95),
            "mean_recall": sum(recalls) / len(recalls) if recalls else 0.0,
            "mean_latency_s": sum(lat) / len(lat) if lat else 0.0,
            "p95_latency_s": _percentile(lat, 0.95),
            "finished": len(self.finished),
        }


def run(params: SimParams) -> dict[str, Any]:
    """Build the network, bootstrap it, apply churn, run the lookups; return the JSON-able results."""
    w0 = time.perf_counter()
    sim = Simulation(params)
    offered = 0
    if params.bootstrap == "seeded":
        offered = sim.seed_tables()
        sim.join_seeded()
    elif params.bootstrap == "join":
        sim.join_sequential()
    else:
        raise ValueError(f"unknown bootstrap mode {params.bootstrap!r}")
    setup_msgs = sim.messages
    sim.kill(params.churn)
    w1 = time.perf_counter()
    sim.messages = 0
    stats = sim.run_lookups()
    w2 = time.perf_counter()
    table_sizes = [len(e.table) for i, e in enumerate(sim.engines) if sim.alive[i]]
    out: dict[str, Any] = {
        "nodes": params.nodes,
        "lookups": params.lookups,
        "churn": params.churn,
        "seed": params.seed,
        "k": params.k,
        "alpha": params.alpha,
        "bootstrap": params.bootstrap,
        "wire": params.wire,
        **stats,
        "mean_table_size": sum(table_sizes) / max(1, len(table_sizes)),
        "seed_offers": offered,
        "setup_messages": setup_msgs,
        "lookup_phase_messages": sim.messages,
        "penalties": sim.penalties,
        "sim_time_s": round(sim.now, 3),
        "setup_wall_s": round(w1 - w0, 3),
        "lookup_wall_s": round(w2 - w1, 3),
        "wall_s": round(w2 - w0, 3),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one JSON line per run, the requested run last."""
    ap = argparse.ArgumentParser(prog="python -m simulations.dht", description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--churn", type=float, default=0.0, help="fraction of nodes silently dead (0..0.9)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--alpha", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, simulated seconds")
    ap.add_argument("--bootstrap", choices=("seeded", "join"), default="seeded")
    ap.add_argument("--wire", action="store_true", help="encode/decode every message with the real codec")
    ap.add_argument("--plot", metavar="DIR", help="also run sweeps over N and churn and write PNG plots")
    args = ap.parse_args(argv)
    if args.nodes < 2:
        ap.error("--nodes must be >= 2")
    if not 0.0 <= args.churn <= 0.9:
        ap.error("--churn must be in [0, 0.9]")
    params = SimParams(
        nodes=args.nodes,
        lookups=args.lookups,
        churn=args.churn,
        seed=args.seed,
        k=args.k,
        alpha=args.alpha,
        request_timeout=args.timeout,
        bootstrap=args.bootstrap,
        wire=args.wire,
    )
    if args.plot:
        from simulations.plots import sweep_and_plot

        sweep_and_plot(params, args.plot, run)
    print(json.dumps(run(params)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
