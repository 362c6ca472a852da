"""Home-server storage throughput through the HTTP API vs raw block-store calls (issue: storage).

    python benchmarks/storage.py [--mib 1024] [--concurrency 4] [--kind hybrid]

A server process (HomeStorage + the API on the daemon's HTTP server, SQLite + the block
store in a temp dir) runs on loopback; this process pre-generates N random 1 MiB raw blocks and their
writer signatures. Each round then goes through the blocks in slices of 32, and for each slice times:

1. **API put**: signed bulk puts (`block/put/bulk`, one 1 MiB block per request, as Peergos groups them)
   with `--concurrency` requests in flight; the server verifies signatures and hashes and writes durably;
2. **raw put**: the same blocks into a fresh block store of the same kind in this process (`put` also
   verifies the hash and writes durably);
3. **API get**: every block back through `block/get` with the filesystem client's own code path
   (`HttpStorage.get_blocks`, as for a chunk's fragments: `--concurrency` runs of blocks in flight, one
   `block/get` per block, each hash-verified against its CID, as a trust-free client always does; the
   server does not hash on reads);
4. **raw get**: hash-verified reads from the raw store.

Interleaving the slices makes disk and load changes hit both sides alike. It prints MB/s per round and
the median ratios API/raw over `--repeat` rounds (goals: put >= 0.6x, get >= 0.6x).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nabu_py.blockstore import Blockstore, open_blockstore
from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from nabu_py.tuning import tune_allocator
from peergos_node.client.http import HttpStorage, PeergosHttp
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair

BLOCK = 1024 * 1024
SLICE = 32

SERVER = r"""
import sys, trio
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from nabu_py.blockstore import Blockstore, open_blockstore
from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.server.api import build_api
from peergos_node.server.db import Database
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage
from peergos_node.server.stores.metadata import SqlBlockMetadataStore
from peergos_node.server.stores.pointers import SqlPointerStore
from peergos_node.server.stores.transactions import SqlTransactionStore
from peergos_node.server.stores.usage import SqlUsageStore
from nabu_py.tuning import tune_allocator
from peergos_node.server.http_server import ApiServer
tune_allocator()

root, kind, identity = Path(sys.argv[1]), sys.argv[2], PublicKeyHash.parse(sys.argv[3])
db = Database.sqlite(root / "db.sqlite")
blocks = open_blockstore(kind, root / "blocks", max_block_size=MAX_BLOCK_SIZE, verify=False)
peer = Cid.v1(0x72, bytes.fromhex("002408011220") + bytes(32))
storage = HomeStorage(peer, blocks, SqlBlockMetadataStore(db), SqlTransactionStore(db), SqlPointerStore(db),
                      SqlUsageStore(db), atomic=db.transaction)
storage.register_user("bench", identity, 1 << 50)

async def main():
    async with trio.open_nursery() as n:
        url = await n.start(ApiServer(build_api(storage), "127.0.0.1", 0).serve)  # the daemon's server
        print(url, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # run until the parent closes stdin
        n.cancel_scope.cancel()

trio.run(main)
"""


class Api:
    """A client of the benchmark server: signed bulk puts and verified gets, `conc` requests in flight."""

    def __init__(self, client: httpx.AsyncClient, url: str, owner: PublicKeyHash, conc: int) -> None:
        self.client, self.url, self.owner, self.conc = client, url, str(owner), conc
        self.storage = HttpStorage(PeergosHttp(url, client))  # what the filesystem client downloads with
        self.owner_key = owner
        self.tid = ""

    async def start(self) -> None:
        self.tid = (await self.client.post(f"{self.url}/api/v0/transaction/start?owner={self.owner}")).text

    async def put(self, blocks: list[bytes], sigs: list[bytes]) -> tuple[float, list[str]]:
        url = (
            f"{self.url}/api/v0/block/put/bulk?format=raw&owner={self.owner}&transaction={self.tid}"
            f"&writer={self.owner}"
        )
        bodies = [dag_cbor.encode({"b": [b], "s": [s]}) for b, s in zip(blocks, sigs, strict=True)]
        cids = [""] * len(blocks)
        it = iter(range(len(blocks)))

        async def worker() -> None:
            for i in it:
                resp = await self.client.post(url, content=bodies[i])
                if resp.status_code != 200:
                    raise RuntimeError(f"put failed: {resp.status_code} {resp.headers.get('trailer')}")
                cids[i] = json.loads(resp.text)["Hash"]

        t0 = time.perf_counter()
        async with trio.open_nursery() as n:
            for _ in range(self.conc):
                n.start_soon(worker)
        return time.perf_counter() - t0, cids

    async def get(self, cids: list[str]) -> float:
        """Fetch and verify (sha256 against the CID) with `HttpStorage.get_blocks`, as the filesystem
        client fetches the fragments of its chunks: `conc` requests in flight."""
        wanted = [(Cid.parse(c), None) for c in cids]
        t0 = time.perf_counter()
        # raises on a bad hash
        got = await self.storage.get_blocks(self.owner_key, wanted, parallel=self.conc)
        if any(b is None for b in got):
            raise RuntimeError("the server lacks some blocks")
        return time.perf_counter() - t0


def raw_put(store: Blockstore, blocks: list[bytes]) -> tuple[float, list[Cid]]:
    cids = [Cid.for_block(CODEC_RAW, b) for b in blocks]
    t0 = time.perf_counter()
    for c, b in zip(cids, blocks, strict=True):
        store.put(c, b)  # verifies the hash, writes durably
    return time.perf_counter() - t0, cids


def raw_get(store: Blockstore, cids: list[Cid]) -> float:
    t0 = time.perf_counter()
    for c in cids:
        store.get(c)  # hash-verified read (verify=True)
    return time.perf_counter() - t0


async def run_all(
    url: str, owner: PublicKeyHash, blocks: list[bytes], sigs: list[bytes], args: argparse.Namespace
) -> list[tuple[float, float, float, float]]:
    rounds: list[tuple[float, float, float, float]] = []
    async with httpx.AsyncClient(
        timeout=120, limits=httpx.Limits(max_connections=args.concurrency * 2)
    ) as client:
        api = Api(client, url, owner, args.concurrency)
        path = "DirectPool (worker threads)" if api.storage.http.pool is not None else "httpx"
        print(f"API get goes through HttpStorage.get_blocks over {path}", flush=True)
        await api.start()
        for r in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
                store = open_blockstore(args.kind, Path(d) / "blocks", max_block_size=2 * BLOCK, verify=True)
                totals = [0.0, 0.0, 0.0, 0.0]
                for lo in range(0, len(blocks), SLICE):  # interleave so disk and load changes hit both alike
                    bs, ss = blocks[lo : lo + SLICE], sigs[lo : lo + SLICE]
                    tp, api_cids = await api.put(bs, ss)
                    rp, raw_cids = await trio.to_thread.run_sync(raw_put, store, bs)
                    tg = await api.get(api_cids)
                    rg = await trio.to_thread.run_sync(raw_get, store, raw_cids)
                    for i, v in enumerate((tp, rp, tg, rg)):
                        totals[i] += v
                store.close()
            n = len(blocks) * BLOCK / 1e6
            tp, rp, tg, rg = totals
            print(
                f"round {r + 1}: API put {n / tp:.0f} MB/s, raw put {n / rp:.0f} MB/s ({rp / tp:.2f}x); "
                f"API get+verify {n / tg:.0f} MB/s, raw verified get {n / rg:.0f} MB/s ({rg / tg:.2f}x)",
                flush=True,
            )
            rounds.append((tp, rp, tg, rg))
    return rounds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="data per round in MiB (one block per MiB)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kind", default="hybrid")
    args = ap.parse_args()
    tune_allocator()
    rng = DeterministicRng(b"storage-bench")
    writer = SigningKeyPair.random(rng)
    owner = PublicKeyHash.of(writer.public)
    print(f"generating {args.mib} x 1 MiB blocks and signatures ...", flush=True)
    blocks = [os.urandom(BLOCK) for _ in range(args.mib)]
    sigs = [writer.sign(hashlib.sha256(b).digest()) for b in blocks]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        server_cmd = [
            sys.executable,
            "-c",
            SERVER,
            d,
            args.kind,
            str(owner),
            str(Path(__file__).resolve().parents[1]),
        ]
        if os.environ.get("BENCH_PROFILE"):
            server_cmd = [
                "py-spy",
                "record",
                "-o",
                os.environ["BENCH_PROFILE"],
                "-f",
                "raw",
                "--",
                *server_cmd,
            ]
        proc = subprocess.Popen(server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            while url and not url.startswith("http"):  # skip a profiler's banner lines
                url = proc.stdout.readline().strip()
            if not url.startswith("http"):
                raise RuntimeError("server failed to start")
            rounds = trio.run(run_all, url, owner, blocks, sigs, args)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)
    put_ratio = statistics.median(rp / tp for tp, rp, _tg, _rg in rounds)
    get_ratio = statistics.median(rg / tg for _tp, _rp, tg, rg in rounds)
    print(f"median ratio put API/raw = {put_ratio:.2f}x (goal >= 0.6)")
    print(f"median ratio get API/raw = {get_ratio:.2f}x (goal >= 0.6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
