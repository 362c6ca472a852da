"""Merkle-CHAMP throughput: 100k random 32-byte keys, identity hasher (the filesystem tree, spec §5.2).

    python benchmarks/champ.py [--n 100000] [--seed 1]

Measured in one run, so ratios stay meaningful on a noisy shared machine:

* **put, one key at a time** (what a client commit does): each put writes the new nodes on the key's path.
  Baseline: generic dag-cbor encoding + sha256 of the same blocks (a sample of them, scaled), i.e. the
  unavoidable cost of producing those blocks; ratio = CHAMP time / baseline.
* **bulk insert** (`Champ.build`, also what `put_all`/`apply`/merges use): every node written once.
  Baseline: generic encode + sha256 of the final tree's blocks.
* **get** of every key with a warm node cache; baseline: walking the same lookup paths through a plain dict
  of blocks (dictionary lookups only, no decoding or bit logic). Also shown: get with no cache (every node
  decoded on every lookup).

The put store drops unreachable blocks every 10,000 puts (outside the timings), as a server's GC would,
so memory stays bounded.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.champ import Champ, MemoryBlockStore, NodeCache, identity_hasher

SAMPLE_EVERY = 16


class SamplingStore(MemoryBlockStore):
    """A memory store that also keeps every SAMPLE_EVERY-th block written, for the baseline."""

    def __init__(self) -> None:
        super().__init__()
        self.sample: list[bytes] = []
        self.bytes_written = 0

    def put(self, data: bytes) -> Cid:
        self.bytes_written += len(data)
        if self.puts % SAMPLE_EVERY == 0:
            self.sample.append(data)
        return super().put(data)

    def collect(self, champ: Champ, root: Cid) -> None:
        """Forget blocks unreachable from `root`."""
        live = set(champ.node_cids(root))
        self.blocks = {c: b for c, b in self.blocks.items() if c in live}


def encode_and_hash_seconds(blocks: list[bytes]) -> float:
    """Time to dag-cbor encode (generic encoder) and sha256 the given blocks."""
    values = [dag_cbor.decode(b) for b in blocks]
    t = time.perf_counter()
    for value in values:
        hashlib.sha256(dag_cbor.encode(value)).digest()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="number of keys (default 100000)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n = args.n
    rng = random.Random(args.seed)
    keys = [rng.randbytes(32) for _ in range(n)]
    values = [Cid.for_block(CODEC_DAG_CBOR, i.to_bytes(8, "big")) for i in range(n)]
    print(f"CHAMP benchmark: {n} random 32-byte keys, identity hasher, Python {sys.version.split()[0]}")
    gc.collect()
    gc.freeze()  # the benchmark's own inputs are not the CHAMP's garbage to traverse

    # ---- one put per key --------------------------------------------------------------------------
    store = SamplingStore()
    champ = Champ(store, identity_hasher, cache=NodeCache(1 << 16))
    root = champ.create_empty()
    elapsed = 0.0
    gc.collect()
    for start in range(0, n, 10_000):
        t = time.perf_counter()
        for i in range(start, min(n, start + 10_000)):
            root = champ.put(root, keys[i], None, values[i])
        elapsed += time.perf_counter() - t
        store.collect(champ, root)
    written = store.puts - 1
    base = encode_and_hash_seconds(store.sample) * (written / max(1, len(store.sample)))
    nodes = len(champ.node_cids(root))
    print(
        f"put (one at a time): {elapsed / n * 1e6:8.1f} us/put   {written / n:.2f} blocks/put, "
        f"{store.bytes_written / n:.0f} B/put; final tree {nodes} nodes"
    )
    print(
        f"  baseline dag-cbor encode+sha256 of the blocks written: {base / n * 1e6:8.1f} us/put"
        f"   ratio {elapsed / base:.2f}x"
    )

    # ---- bulk insert ------------------------------------------------------------------------------
    bulk_store = MemoryBlockStore()
    bulk = Champ(bulk_store, identity_hasher, cache=NodeCache(1 << 16))
    gc.collect()
    t = time.perf_counter()
    bulk_root = bulk.build(dict(zip(keys, values, strict=True)))
    bulk_elapsed = time.perf_counter() - t
    assert bulk_root == root, "bulk and one-at-a-time inserts must give the same root"
    final_blocks = list(bulk_store.blocks.values())
    bulk_base = encode_and_hash_seconds(final_blocks)
    print(
        f"bulk insert (build): {bulk_elapsed / n * 1e6:8.1f} us/key   {bulk_store.puts} blocks written "
        f"(each node once), {bulk_elapsed:.2f} s total"
    )
    print(
        f"  baseline dag-cbor encode+sha256 of the final blocks:   {bulk_base / n * 1e6:8.1f} us/key"
        f"   ratio {bulk_elapsed / bulk_base:.2f}x"
    )

    # ---- lookups ----------------------------------------------------------------------------------
    order = list(range(n))
    rng.shuffle(order)
    reader = Champ(bulk_store, identity_hasher, cache=NodeCache(1 << 16))
    for i in order[:1000]:  # warm the cache a little; most nodes get loaded during the timed run anyway
        reader.get(bulk_root, keys[i])
    gc.collect()
    t = time.perf_counter()
    for i in order:
        if reader.get(bulk_root, keys[i]) != values[i]:
            raise AssertionError("lookup returned the wrong value")
    get_elapsed = time.perf_counter() - t
    paths = [reader.get_path(bulk_root, keys[i]).cids for i in order]
    blocks = bulk_store.blocks
    t = time.perf_counter()
    for path in paths:
        for cid in path:
            blocks[cid]
    walk = time.perf_counter() - t
    depth = sum(len(p) for p in paths) / n
    cold = Champ(bulk_store, identity_hasher, cache_size=0)
    sample = order[: max(1, n // 20)]
    t = time.perf_counter()
    for i in sample:
        cold.get(bulk_root, keys[i])
    cold_elapsed = (time.perf_counter() - t) / len(sample) * n
    cache = reader.cache
    print(
        f"get (node cache):    {get_elapsed / n * 1e6:8.1f} us/get   {depth:.2f} nodes/lookup, "
        f"{cache.decodes} nodes decoded in {n} lookups"
    )
    print(
        f"  baseline dict-of-blocks walk of the same paths:       {walk / n * 1e6:8.1f} us/get"
        f"   ratio {get_elapsed / walk:.2f}x"
    )
    print(f"get (no cache, decode every node): {cold_elapsed / n * 1e6:8.1f} us/get")


if __name__ == "__main__":
    main()
