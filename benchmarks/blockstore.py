"""Block store throughput as ratios against baselines measured in the same run (design.md §5).

    python benchmarks/blockstore.py            # full run (~1 min on 2 shared cores)
    python benchmarks/blockstore.py --quick    # fewer rounds, no size sweep

What is measured, each as the median over interleaved rounds (a fresh directory per round, so puts are
real writes and not skipped duplicates):

- **large**: Peergos-sized raw blocks (1 MiB + 100 bytes, spec/peergos.md §6.4). Our `files`,
  `hybrid`, `rocksdict` and `memory` stores against raw baselines: a plain file write (temp file +
  rename, plus fsyncs of file and directory when `sync`) and read, and raw `rocksdict` put/get with the
  same tuned options. Both `sync=False` and `sync=True`.
- **small**: 1 KiB blocks (CHAMP/cryptree-node sized): single puts, `put_many` batches of 100 and gets,
  against raw `rocksdict` put / `WriteBatch` / get and a raw file write.
- **sweep** (full run only): put/get of our rocksdict store against our file store from 4 KiB to
  256 KiB, which is where the hybrid threshold comes from.
- **gil**: how late a main thread that wants to wake every millisecond (an event loop waiting on
  `trio.to_thread`) wakes while a worker thread puts 1 MiB blocks into our rocksdict store or our
  file store. rocksdict holds the GIL during RocksDB calls; file I/O and hashlib release it.

Our stores verify every put (sha2-256 of the block) and, by default, every get; the `sha256` line
shows what that costs on its own.

`run()` returns `[(metric name, value), ...]` for `benchmarks/primitives.py` to aggregate; names are
`blockstore.<group>.<case>.<unit>` and ratios are `blockstore.<group>.<case>/<baseline>`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rocksdict

from nabu_py.blockstore import (
    DEFAULT_HYBRID_THRESHOLD,
    FileBlockstore,
    HybridBlockstore,
    MemoryBlockstore,
    RocksBlockstore,
)
from nabu_py.blockstore.base import BlockstoreBase
from nabu_py.blockstore.rocks import rocksdb_options
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid

Block = tuple[Cid, bytes]
LARGE = 1024 * 1024 + 100
SMALL = 1024


# ---- targets: something that can be opened in a directory, filled and read back ----------------------
class Target:
    """A store under test or a raw baseline."""

    name = ""

    def open(self, path: Path) -> None:
        raise NotImplementedError

    def put_all(self, blocks: Sequence[Block]) -> None:
        raise NotImplementedError

    def get_all(self, cids: Sequence[Cid]) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RawFiles(Target):
    """Baseline: one file per block, temp + rename (and fsyncs when `sync`), read with open().read()."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.name = "raw files" + (" +fsync" if sync else "")
        self.dir = ""

    def open(self, path: Path) -> None:
        path.mkdir(parents=True)
        self.dir = str(path)

    def put_all(self, blocks: Sequence[Block]) -> None:
        for cid, data in blocks:
            final = f"{self.dir}/{cid.multihash.hex()}"
            tmp = final + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            if self.sync:
                os.fsync(fd)
            os.close(fd)
            os.replace(tmp, final)
            if self.sync:
                _fsync_dir(self.dir)

    def get_all(self, cids: Sequence[Cid]) -> int:
        total = 0
        for cid in cids:
            with open(f"{self.dir}/{cid.multihash.hex()}", "rb") as f:
                total += len(f.read())
        return total

    def close(self) -> None:
        pass


class RawRocks(Target):
    """Baseline: raw rocksdict calls with our tuned options (put, or one WriteBatch per `batch` blocks)."""

    def __init__(self, sync: bool, batch: int = 0) -> None:
        self.sync = sync
        self.batch = batch
        self.name = "raw rocksdict" + (f" batch{batch}" if batch else "") + (" +sync" if sync else "")
        self.db: rocksdict.Rdict | None = None
        self.wo = rocksdict.WriteOptions()
        self.wo.sync = sync

    def open(self, path: Path) -> None:
        self.db = rocksdict.Rdict(str(path), rocksdb_options())

    def put_all(self, blocks: Sequence[Block]) -> None:
        assert self.db is not None
        if not self.batch:
            for cid, data in blocks:
                self.db.put(bytes(cid), data, self.wo)
            return
        for i in range(0, len(blocks), self.batch):
            wb = rocksdict.WriteBatch(raw_mode=True)
            for cid, data in blocks[i : i + self.batch]:
                wb.put(bytes(cid), data)
            self.db.write(wb, self.wo)

    def get_all(self, cids: Sequence[Cid]) -> int:
        assert self.db is not None
        total = 0
        for cid in cids:
            value = self.db[bytes(cid)]
            assert isinstance(value, bytes)
            total += len(value)
        return total

    def close(self) -> None:
        assert self.db is not None
        self.db.close()


class Ours(Target):
    """One of our stores, through the public `Blockstore` API."""

    def __init__(self, kind: str, sync: bool, batch: int = 0, verify: bool = True) -> None:
        self.kind, self.sync, self.batch, self.verify = kind, sync, batch, verify
        self.name = (
            f"{kind} store"
            + (f" put_many{batch}" if batch else "")
            + (" +sync" if sync else "")
            + ("" if verify else " noverify")
        )
        self.store: BlockstoreBase | None = None

    def open(self, path: Path) -> None:
        kw = {"sync": self.sync, "verify": self.verify}
        if self.kind == "memory":
            self.store = MemoryBlockstore()
        elif self.kind == "rocksdict":
            self.store = RocksBlockstore(path, **kw)
        elif self.kind == "files":
            self.store = FileBlockstore(path, **kw)
        else:
            self.store = HybridBlockstore(path, **kw)

    def put_all(self, blocks: Sequence[Block]) -> None:
        assert self.store is not None
        if not self.batch:
            for cid, data in blocks:
                self.store.put(cid, data)
            return
        for i in range(0, len(blocks), self.batch):
            self.store.put_many(blocks[i : i + self.batch])

    def get_all(self, cids: Sequence[Cid]) -> int:
        assert self.store is not None
        return sum(len(self.store.get(cid)) for cid in cids)

    def close(self) -> None:
        assert self.store is not None
        self.store.close()


# ---- measurement ----------------------------------------------------------------------------------------
@dataclass
class Timing:
    put: list[float] = field(default_factory=list)  # seconds per block, one entry per round
    get: list[float] = field(default_factory=list)


def _blocks(n: int, size: int, seed: int, codec: int = CODEC_RAW) -> list[Block]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        data = rng.randbytes(size)
        out.append((Cid.for_block(codec, data), data))
    return out


def _measure(
    targets: Sequence[Target], n: int, size: int, rounds: int, base: Path, get_passes: int = 4
) -> dict[str, Timing]:
    """Interleave the targets round by round (noise hits all alike); fresh data and directory per round.

    Gets read every block `get_passes` times, so that the timed window is not a few milliseconds.
    """
    timings = {t.name: Timing() for t in targets}
    codec = CODEC_RAW if size >= 4096 else CODEC_DAG_CBOR
    for r in range(rounds):
        blocks = _blocks(n, size, seed=r, codec=codec)
        cids = [cid for cid, _ in blocks]
        order = cids[:]
        random.Random(r).shuffle(order)
        for t in targets:
            path = base / f"r{r}-{abs(hash(t.name))}"
            t.open(path)
            try:
                t0 = time.perf_counter()
                t.put_all(blocks)
                t1 = time.perf_counter()
                got = sum(t.get_all(order) for _ in range(get_passes))
                t2 = time.perf_counter()
            finally:
                t.close()
                shutil.rmtree(path, ignore_errors=True)
            assert got == n * size * get_passes, f"{t.name} read back {got} bytes"
            timings[t.name].put.append((t1 - t0) / n)
            timings[t.name].get.append((t2 - t1) / (n * get_passes))
    return timings


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _sha256_seconds(size: int, reps: int) -> float:
    data = os.urandom(size)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        hashlib.sha256(data).digest()
        times.append(time.perf_counter() - t)
    return _median(times)


def _lateness_ms(work: Callable[[int], None] | None, seconds: float) -> tuple[float, float]:
    """(median, p99) lateness in ms of a main thread that wants to wake every 1 ms, like an event loop
    waiting on `trio.to_thread`, while `work` runs over and over in a worker thread."""
    stop = threading.Event()

    def worker() -> None:
        i = 0
        while not stop.is_set():
            assert work is not None
            work(i)
            i += 1

    th = threading.Thread(target=worker) if work is not None else None
    if th is not None:
        th.start()
    late: list[float] = []
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            time.sleep(0.001)
            late.append(time.perf_counter() - t - 0.001)
    finally:
        stop.set()
        if th is not None:
            th.join()
    late.sort()
    return statistics.median(late) * 1e3, late[int(len(late) * 0.99)] * 1e3


def _gil(base: Path, seconds: float) -> dict[str, tuple[float, float]]:
    out = {"idle": _lateness_ms(None, seconds / 2)}
    blocks = _blocks(8, LARGE, seed=99)
    for kind, sync in (("rocksdict", False), ("files", False), ("rocksdict", True), ("files", True)):
        target = Ours(kind, sync=sync)
        path = base / f"gil-{kind}-{sync}"
        target.open(path)
        store = target.store
        assert store is not None

        def put(i: int, store: BlockstoreBase = store) -> None:
            cid, data = blocks[i % len(blocks)]
            if i % len(blocks) == 0:
                for c, _ in blocks:
                    store.rm(c)
            store.put(cid, data)

        try:
            out[target.name + " put"] = _lateness_ms(put, seconds)
        finally:
            target.close()
            shutil.rmtree(path, ignore_errors=True)
    return out


# ---- report ---------------------------------------------------------------------------------------------
Result = list[tuple[str, float]]


def _slug(name: str) -> str:
    return name.replace(" store", "").replace(" +", "+").replace(" ", "_")


def _report(
    title: str,
    group: str,
    timings: dict[str, Timing],
    baselines: dict[str, str],
    size: int,
    results: Result,
) -> None:
    print(f"\n{title}")
    head = f"{'put/op':>10s} {'MB/s':>8s} {'ratio':>6s}"
    print(f"  {'case':34s} {head}   {head.replace('put', 'get')}")
    for name, t in timings.items():
        put, get = _median(t.put), _median(t.get)
        base = baselines.get(name)
        cells = []
        for op, sec in (("put", put), ("get", get)):
            mbps = size / sec / 1e6
            results.append((f"blockstore.{group}.{_slug(name)}.{op}_us", sec * 1e6))
            ratio = float("nan")
            if base is not None:
                bsec = _median(getattr(timings[base], op))
                ratio = bsec / sec
                results.append((f"blockstore.{group}.{_slug(name)}.{op}/{_slug(base)}", ratio))
            cells.append(f"{sec * 1e6:9.1f}us {mbps:8.1f} {ratio:6.2f}")
        print(f"  {name:34s} {cells[0]}   {cells[1]}")
    if baselines:
        pairs = sorted({f"{k} vs {v}" for k, v in baselines.items()})
        print("  ratio = baseline time / case time (>1: faster than the baseline): " + "; ".join(pairs))


def run(quick: bool = False, base_dir: str | None = None) -> Result:
    """Run the benchmark, print the tables and return `[(metric, value), ...]`."""
    rounds = 3 if quick else 5
    results: Result = []
    # On the disk a node would use, not /tmp (which may be tmpfs, where fsync is free).
    base = Path(tempfile.mkdtemp(prefix=".bs-bench-", dir=base_dir or os.getcwd()))
    try:
        sha = _sha256_seconds(LARGE, 20)
        print(f"sha256 of one 1 MiB block: {sha * 1e6:.0f} us ({LARGE / sha / 1e6:.0f} MB/s)")
        results.append(("blockstore.sha256_1MiB_us", sha * 1e6))

        for sync in (False, True):
            suffix = "+sync" if sync else ""
            raw_f, raw_r = RawFiles(sync), RawRocks(sync)
            ours = [Ours(k, sync) for k in ("files", "hybrid", "rocksdict")]
            targets: list[Target] = [raw_f, raw_r, *ours]
            if not sync:
                targets.append(Ours("memory", False))
                targets.append(Ours("hybrid", False, verify=False))
            baselines = {o.name: raw_f.name for o in ours if o.kind != "rocksdict"}
            baselines[ours[2].name] = raw_r.name
            baselines[raw_r.name] = raw_f.name
            if not sync:
                baselines[targets[-1].name] = raw_f.name
            n = 16 if quick else 32
            timings = _measure(targets, n, LARGE, rounds, base)
            _report(
                f"large blocks: {LARGE} bytes, {n} per round, sync={sync}",
                f"large{suffix}",
                timings,
                baselines,
                LARGE,
                results,
            )
            hybrid, rocks = timings[ours[1].name], timings[ours[2].name]
            for op in ("put", "get"):
                ratio = _median(getattr(rocks, op)) / _median(getattr(hybrid, op))
                results.append((f"blockstore.large{suffix}.hybrid/rocksdict.{op}", ratio))
                print(f"  hybrid vs rocksdict store, {op}: {ratio:.2f}x")

        for sync in (False, True):
            suffix = "+sync" if sync else ""
            n = (200 if quick else 1000) if not sync else (50 if quick else 100)
            raw_r, raw_b, raw_f = RawRocks(sync), RawRocks(sync, batch=100), RawFiles(sync)
            small_targets: list[Target] = [
                raw_r,
                raw_b,
                raw_f,
                Ours("rocksdict", sync),
                Ours("rocksdict", sync, batch=100),
                Ours("hybrid", sync),
                Ours("hybrid", sync, batch=100),
                Ours("files", sync),
            ]
            small_base = {
                t.name: (raw_b.name if t.batch else raw_r.name)
                for t in small_targets
                if isinstance(t, Ours) and t.kind != "files"
            }
            small_base[small_targets[-1].name] = raw_f.name
            timings = _measure(small_targets, n, SMALL, rounds, base)
            _report(
                f"small blocks: {SMALL} bytes, {n} per round, sync={sync}",
                f"small{suffix}",
                timings,
                small_base,
                SMALL,
                results,
            )

        if not quick:
            print(f"\nsize sweep, sync=False (hybrid threshold is {DEFAULT_HYBRID_THRESHOLD} bytes)")
            for size in (4096, 16384, 65536, 262144):
                n = max(16, min(400, (16 << 20) // size))
                r_t, f_t = Ours("rocksdict", False), Ours("files", False)
                timings = _measure([r_t, f_t], n, size, 3, base)
                for op in ("put", "get"):
                    ratio = _median(getattr(timings[r_t.name], op)) / _median(getattr(timings[f_t.name], op))
                    results.append((f"blockstore.sweep.{size}.files/rocksdict.{op}", ratio))
                r_put, f_put = _median(timings[r_t.name].put), _median(timings[f_t.name].put)
                r_get, f_get = _median(timings[r_t.name].get), _median(timings[f_t.name].get)
                print(
                    f"  {size:7d} B: put rocksdict {r_put * 1e6:7.1f}us files {f_put * 1e6:7.1f}us "
                    f"(files {r_put / f_put:4.2f}x) | get rocksdict {r_get * 1e6:6.1f}us "
                    f"files {f_get * 1e6:6.1f}us (files {r_get / f_get:4.2f}x)"
                )

        gil = _gil(base, 0.6 if quick else 1.5)
        print("\nGIL: lateness of a 1 ms main-thread timer while a worker thread puts 1 MiB blocks")
        for name, (median, p99) in gil.items():
            print(f"  {name:28s} median {median:6.2f} ms   p99 {p99:6.2f} ms")
            slug = _slug(name)
            results.append((f"blockstore.gil.{slug}.late_median_ms", median))
            results.append((f"blockstore.gil.{slug}.late_p99_ms", p99))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, no size sweep")
    parser.add_argument("--dir", default=None, help="where to create temporary stores (default: cwd)")
    args = parser.parse_args()
    run(quick=args.quick, base_dir=args.dir)


if __name__ == "__main__":
    main()
