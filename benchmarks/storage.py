"""Home-server storage throughput through the HTTP API vs raw block-store calls (issue: storage).

    python benchmarks/storage.py [--mib 1024] [--concurrency 4] [--kind hybrid]

A server process (HomeStorage + the API on hypercorn, SQLite + the block store in a temp dir) is started
on loopback; this process pre-generates N random 1 MiB raw blocks and their writer signatures, then:

1. **API put**: signed bulk puts (`block/put/bulk`, one 1 MiB block per request, as Peergos groups them)
   with `--concurrency` requests in flight, all in one transaction;
2. **API get**: every block back through `block/get`;
3. **raw put / raw get**: the same blocks into a fresh block store of the same kind and settings in this
   process (reads unverified on both sides: the server leaves re-hashing to its trust-free clients).

It prints MB/s for each and the ratios API/raw (goals: put >= 0.6x, get >= 0.6x). Ratios are what
matter on a shared machine; each figure is the median of `--repeat` runs (fresh stores each time).
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

from nabu_py.blockstore import open_blockstore
from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair

BLOCK = 1024 * 1024

SERVER = r"""
import sys, trio
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from nabu_py.blockstore import open_blockstore
from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.server.api import build_api
from peergos_node.server.db import Database
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage
from peergos_node.server.stores.metadata import SqlBlockMetadataStore
from peergos_node.server.stores.pointers import SqlPointerStore
from peergos_node.server.stores.transactions import SqlTransactionStore
from peergos_node.server.stores.usage import SqlUsageStore
from hypercorn.config import Config
from hypercorn.trio import serve
from functools import partial

root, kind, identity = Path(sys.argv[1]), sys.argv[2], PublicKeyHash.parse(sys.argv[3])
db = Database.sqlite(root / "db.sqlite")
blocks = open_blockstore(kind, root / "blocks", max_block_size=MAX_BLOCK_SIZE, verify=False)
peer = Cid.v1(0x72, bytes.fromhex("002408011220") + bytes(32))
storage = HomeStorage(peer, blocks, SqlBlockMetadataStore(db), SqlTransactionStore(db), SqlPointerStore(db),
                      SqlUsageStore(db), atomic=db.transaction)
storage.register_user("bench", identity, 1 << 50)

async def main():
    cfg = Config(); cfg.bind = ["127.0.0.1:0"]; cfg.accesslog = None; cfg.errorlog = None
    async with trio.open_nursery() as n:
        binds = await n.start(partial(serve, build_api(storage), cfg))
        print(binds[0], flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # run until the parent closes stdin
        n.cancel_scope.cancel()

trio.run(main)
"""


def median_rate(nbytes: int, seconds: list[float]) -> float:
    return nbytes / statistics.median(seconds) / 1e6


async def api_round(
    url: str, owner: PublicKeyHash, blocks: list[bytes], sigs: list[bytes], conc: int
) -> tuple[float, float]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=conc * 2)) as client:
        owner_s = str(owner)
        r = await client.post(f"{url}/api/v0/transaction/start?owner={owner_s}")
        tid = r.text
        put_url = f"{url}/api/v0/block/put/bulk?format=raw&owner={owner_s}&transaction={tid}&writer={owner_s}"
        cids: list[str] = [""] * len(blocks)
        it = iter(range(len(blocks)))

        async def putter() -> None:
            for i in it:
                body = dag_cbor.encode({"b": [blocks[i]], "s": [sigs[i]]})
                resp = await client.post(put_url, content=body)
                if resp.status_code != 200:
                    raise RuntimeError(f"put failed: {resp.status_code} {resp.headers.get('trailer')}")
                cids[i] = json.loads(resp.text)["Hash"]

        t0 = time.perf_counter()
        async with trio.open_nursery() as n:
            for _ in range(conc):
                n.start_soon(putter)
        t_put = time.perf_counter() - t0
        it2 = iter(range(len(blocks)))

        async def getter() -> None:
            for i in it2:
                resp = await client.post(f"{url}/api/v0/block/get?arg={cids[i]}&owner={owner_s}")
                if resp.status_code != 200 or len(resp.content) != len(blocks[i]):
                    raise RuntimeError("get failed")

        t0 = time.perf_counter()
        async with trio.open_nursery() as n:
            for _ in range(conc):
                n.start_soon(getter)
        t_get = time.perf_counter() - t0
        await client.post(f"{url}/api/v0/transaction/close?arg={tid}&owner={owner_s}")
    return t_put, t_get


def raw_round(kind: str, blocks: list[bytes]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        store = open_blockstore(kind, Path(d) / "blocks", max_block_size=2 * BLOCK, verify=False)
        cids = [Cid.for_block(CODEC_RAW, b) for b in blocks]
        t0 = time.perf_counter()
        for c, b in zip(cids, blocks, strict=True):
            store.put(c, b)
        t_put = time.perf_counter() - t0
        t0 = time.perf_counter()
        for c in cids:
            store.get(c)
        t_get = time.perf_counter() - t0
        store.close()
    return t_put, t_get


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="data per run in MiB (one block per MiB)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kind", default="hybrid")
    args = ap.parse_args()
    rng = DeterministicRng(b"storage-bench")
    writer = SigningKeyPair.random(rng)
    owner = PublicKeyHash.of(writer.public)
    print(f"generating {args.mib} x 1 MiB blocks and signatures ...", flush=True)
    blocks = [os.urandom(BLOCK) for _ in range(args.mib)]
    sigs = [writer.sign(hashlib.sha256(b).digest()) for b in blocks]
    nbytes = len(blocks) * BLOCK
    api_put: list[float] = []
    api_get: list[float] = []
    raw_put: list[float] = []
    raw_get: list[float] = []
    for r in range(args.repeat):
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
            proc = subprocess.Popen(
                server_cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stdout is not None
                url = proc.stdout.readline().strip()
                while url and not url.startswith("http"):  # skip a profiler's banner lines
                    url = proc.stdout.readline().strip()
                if not url.startswith("http"):
                    raise RuntimeError("server failed to start")
                tp, tg = trio.run(api_round, url, owner, blocks, sigs, args.concurrency)
            finally:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(30)
        rp, rg = raw_round(args.kind, blocks)
        api_put.append(tp)
        api_get.append(tg)
        raw_put.append(rp)
        raw_get.append(rg)
        print(
            f"run {r + 1}: API put {nbytes / tp / 1e6:.0f} MB/s, get {nbytes / tg / 1e6:.0f} MB/s; "
            f"raw put {nbytes / rp / 1e6:.0f} MB/s, get {nbytes / rg / 1e6:.0f} MB/s",
            flush=True,
        )
    put_ratio = statistics.median(rp / tp for rp, tp in zip(raw_put, api_put, strict=True))
    get_ratio = statistics.median(rg / tg for rg, tg in zip(raw_get, api_get, strict=True))
    for name, api, raw in (("put", api_put, raw_put), ("get", api_get, raw_get)):
        print(
            f"median API {name} {median_rate(nbytes, api):.0f} MB/s, raw {median_rate(nbytes, raw):.0f} MB/s"
        )
    print(f"ratio put API/raw = {put_ratio:.2f}x (goal >= 0.6)")
    print(f"ratio get API/raw = {get_ratio:.2f}x (goal >= 0.6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
