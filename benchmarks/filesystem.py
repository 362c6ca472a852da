"""Filesystem client throughput through a real `peergos daemon` vs the ideal pipeline (issue 6).

    python benchmarks/filesystem.py [--mib 1024] [--repeat 3] [--files 10000] [--file-bytes 1024]
                                    [--skip-files] [--skip-dir] [--floor]
                                    [--profile-upload F] [--profile-download F]

Goals (issue 6): uploading a 1 GiB file runs at >= 0.5x, and downloading it at >= 0.6x, of the *ideal
pipeline* measured in the same run; listing a folder of 10,000 small files takes < 2x the time of
10,000 CHAMP lookups measured in the same run.

Setup: a `peergos daemon` process (its defaults: SQLite, `hybrid` block store with durable writes,
every listener on loopback, DHT and GC off, quota raised) in a temp dir; this process signs up a user
with `UserContext.signup` and writes `--mib` MiB of random data to a local temp file.

**Files.** Each of `--repeat` rounds times, in this order (interleaved, so load changes on this shared
machine hit every side alike):

1. *ideal upload*: for each 5 MiB chunk of the local file: read it, sha256 it (the hash tree), pad and
   secretbox it and cut it into 1 MiB raw fragments with their BAT prefixes and sha256 CIDs (the very
   `FragmentedPaddedCipherText.build_data` the client uses, i.e. `crypto_secretbox_easy`), and `put`
   every fragment into a fresh block store of the daemon's kind (`hybrid`: fragments as fsynced files;
   `put` re-hashes, as the server does). Straightforward sequential code in one thread.
2. *fs upload*: `ctx.upload(path, local_file)` — the whole client: hash tree, upload record,
   encryption, signed bulk puts over HTTP, one CHAMP commit per chunk, the final link.
3. *fs download*: `ctx.open(path)` + `FileReader.stream` into a sink that checks the length and a
   sample of bytes of every chunk against the local file (a full sha256 check runs once, untimed, with
   `--verify-full`).
4. *ideal download*: for each chunk: `get` its fragments from the ideal store, check them against their
   CIDs (sha256), join and `crypto_secretbox_open_easy` (`decrypt_data`, as the client does).

The client overlaps encryption, hashing and I/O in worker threads (up to ~3 busy threads at once on 2
cores); the ideal pipeline is single-threaded. Ratios are fs MB/s / ideal MB/s; medians over rounds.

**Directory.** `ctx.upload_files` puts `--files` files of `--file-bytes` random bytes into one folder
(the creation time is reported). Then, alternately over `--repeat` rounds: `ls` of the folder from a
**fresh login** (cold caches: the headline), `ls` again in the same session (warm caches), and the
baseline: 10,000 `Champ.get` of existing keys in a CHAMP of 10,000 entries (random 32-byte keys →
CIDs, like the filesystem tree) built in a fresh `hybrid` block store, read through a fresh `Champ`
(cold node cache, as a fresh client has), in this process, no HTTP. Ratio = ls time / lookups time.

**Floor** (`--floor`): what a cold listing cannot avoid, against the same baseline (medians of 5 rounds):
re-walking the 10,000 lookups over their CHAMP blocks held in memory (a trust-free client re-walks the
server's proofs), and the bare per-child work on the real node blocks of the folder (sha256, `cbor2.loads`
of the node, secretbox open of its properties part, `cbor2.loads` of them: no validation, no objects).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cbor2
import trio
from nacl.bindings import crypto_secretbox_open_easy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nabu_py.blockstore import Blockstore, open_blockstore
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from nabu_py.tuning import tune_allocator
from peergos_node.champ import Champ, identity_hasher
from peergos_node.client import nodes as client_nodes
from peergos_node.client.user_context import UserContext
from peergos_node.crypto.hashes import sha256
from peergos_node.crypto.rng import SYSTEM_RNG
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability
from peergos_node.cryptree.fragments import FragmentedPaddedCipherText
from peergos_node.cryptree.properties import CHUNK_SIZE
from peergos_node.server.home_storage import MAX_BLOCK_SIZE

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
USER, PASSWORD = "bench", "a benchmark password"
START = "Peergos daemon started: peer id "
SAMPLE = 64
TMP = os.environ.get("BENCH_TMP")


# ---- the daemon -------------------------------------------------------------------------------------
@contextmanager
def daemon(path: Path, kind: str) -> Iterator[tuple[str, str]]:
    """A `peergos daemon` process; yields (API URL, signup token)."""
    argv = [
        sys.executable, "-m", "peergos_node.cli.main", "daemon", "-PEERGOS_PATH", str(path),
        "-port", "0", "-proxy-target", "/ip4/127.0.0.1/tcp/0", "-ipfs-swarm-addrs", "/ip4/127.0.0.1/tcp/0",
        "-enable-dht", "false", "-enable-gc", "false", "-default-quota", "1000g", "-blockstore", kind,
        "-generate-token", "true",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    if os.environ.get("BENCH_DAEMON_PROFILE"):  # py-spy record of the daemon
        argv = ["py-spy", "record", "-o", os.environ["BENCH_DAEMON_PROFILE"], "-f", "raw", "--", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = token = ""
        for line in proc.stdout:
            if line.startswith(START):
                url = line.split(", API ", 1)[1].split(",", 1)[0]
            if "token=" in line:
                token = line.split("token=", 1)[1].split()[0]
                break
        if not url or not token:
            raise RuntimeError("the daemon did not start")
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the ideal pipeline -----------------------------------------------------------------------------
def ideal_upload(
    store: Blockstore, local: Path, key: SymmetricKey
) -> tuple[float, list[FragmentedPaddedCipherText]]:
    """sha256 + pad/secretbox/fragment + block-store put of every chunk; returns (seconds, payloads)."""
    payloads = []
    t0 = time.perf_counter()
    with open(local, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK_SIZE):
            sha256(chunk)  # the chunk's hash-tree leaf
            payload, fragments = FragmentedPaddedCipherText.build_data(key, chunk, rng=SYSTEM_RNG)
            for frag in fragments:
                store.put(frag.cid, frag.block)  # re-hashes the block, durable write
            payloads.append(payload)
    return time.perf_counter() - t0, payloads


def ideal_download(store: Blockstore, payloads: list[FragmentedPaddedCipherText], key: SymmetricKey) -> float:
    """block-store get + sha256 (CID check) + secretbox open of every chunk."""
    t0 = time.perf_counter()
    total = 0
    for payload in payloads:
        blocks = []
        for cid in payload.fragments:
            data = store.get(cid)
            assert data is not None
            blocks.append(data)
        total += len(payload.decrypt_data(key, blocks))  # verifies each block against its CID
    assert total > 0
    return time.perf_counter() - t0


# ---- the filesystem client --------------------------------------------------------------------------
async def fs_upload(ctx: UserContext, remote: str, local: Path) -> float:
    t0 = time.perf_counter()
    await ctx.upload(remote, local)
    return time.perf_counter() - t0


async def fs_download(ctx: UserContext, remote: str, local: Path, size: int) -> float:
    src = open(local, "rb")  # noqa: SIM115, ASYNC230 - closed below; spot-check reads are tiny
    pos = 0

    async def sink(data: bytes) -> None:
        nonlocal pos
        for off in (0, len(data) - SAMPLE):  # a cheap spot check of every chunk
            src.seek(pos + off)
            if src.read(SAMPLE) != data[off : off + SAMPLE]:
                raise AssertionError(f"downloaded bytes differ near offset {pos + off}")
        pos += len(data)

    try:
        t0 = time.perf_counter()
        reader = await ctx.open(remote)
        await reader.stream(sink)
        elapsed = time.perf_counter() - t0
    finally:
        src.close()
    if pos != size:
        raise AssertionError(f"downloaded {pos} bytes, expected {size}")
    return elapsed


async def verify_full(ctx: UserContext, remote: str, digest: bytes) -> None:
    h = hashlib.sha256()

    async def sink(data: bytes) -> None:
        h.update(data)

    await (await ctx.open(remote)).stream(sink)
    if h.digest() != digest:
        raise AssertionError("the downloaded file's sha256 differs from the uploaded one")


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(path)


async def bench_files(url: str, ctx: UserContext, args: argparse.Namespace, work: Path) -> dict[str, float]:
    size = args.mib * MIB
    local = work / "data.bin"
    print(f"writing {args.mib} MiB of random data to a temp file ...", flush=True)
    digest = hashlib.sha256()
    with open(local, "wb") as f:  # noqa: ASYNC230 - setup, untimed
        rnd = random.Random(7)
        for _ in range(args.mib):
            block = rnd.randbytes(MIB)
            digest.update(block)
            f.write(block)
    key = SymmetricKey.random()
    mb = size / 1e6
    ratios_up: list[float] = []
    ratios_down: list[float] = []
    for r in range(args.repeat):
        remote = f"/{USER}/big-{r}.bin"
        with tempfile.TemporaryDirectory(dir=TMP) as d:
            store = open_blockstore(
                args.kind, Path(d) / "blocks", max_block_size=MAX_BLOCK_SIZE, verify=False
            )
            try:
                iu, payloads = await trio.to_thread.run_sync(ideal_upload, store, local, key)
                with profiled(args.profile_upload if r == 0 else None):
                    fu = await fs_upload(ctx, remote, local)
                with profiled(args.profile_download if r == 0 else None):
                    fd = await fs_download(ctx, remote, local, size)
                idl = await trio.to_thread.run_sync(ideal_download, store, payloads, key)
            finally:
                store.close()
        if r == 0 and args.verify_full:
            await verify_full(ctx, remote, digest.digest())
        await ctx.delete(remote)
        ratios_up.append(iu / fu)
        ratios_down.append(idl / fd)
        print(
            f"round {r + 1}: upload fs {mb / fu:.0f} MB/s vs ideal {mb / iu:.0f} MB/s ({iu / fu:.2f}x); "
            f"download fs {mb / fd:.0f} MB/s vs ideal {mb / idl:.0f} MB/s ({idl / fd:.2f}x)  "
            f"[load {os.getloadavg()[0]:.2f}]",
            flush=True,
        )
    up, down = statistics.median(ratios_up), statistics.median(ratios_down)
    print(f"median upload ratio fs/ideal   = {up:.2f}x (goal >= 0.5)")
    print(f"median download ratio fs/ideal = {down:.2f}x (goal >= 0.6)")
    return {"upload": up, "download": down}


# ---- the directory ----------------------------------------------------------------------------------
class StoreAdapter:
    """A nabu block store as the CHAMP's block store (dag-cbor blocks under their CIDs)."""

    def __init__(self, store: Blockstore) -> None:
        self.store = store

    def get(self, cid: Cid) -> bytes | None:
        return self.store.get(cid)

    def put(self, data: bytes) -> Cid:
        cid = Cid.for_block(CODEC_DAG_CBOR, data)
        self.store.put(cid, data)
        return cid


def build_champ(path: Path, kind: str, n: int) -> tuple[Blockstore, Cid, list[bytes]]:
    store = open_blockstore(kind, path, max_block_size=MAX_BLOCK_SIZE, verify=False)
    rnd = random.Random(11)
    keys = [rnd.randbytes(32) for _ in range(n)]
    champ = Champ(StoreAdapter(store), identity_hasher)
    entries = {k: Cid.for_block(CODEC_DAG_CBOR, i.to_bytes(8, "big")) for i, k in enumerate(keys)}
    root = champ.build(entries)
    rnd.shuffle(keys)
    return store, root, keys


def champ_lookups(store: Blockstore, root: Cid, keys: list[bytes]) -> float:
    champ = Champ(StoreAdapter(store), identity_hasher)  # a fresh (cold) node cache
    t0 = time.perf_counter()
    for k in keys:
        if champ.get(root, k) is None:
            raise AssertionError("a key is missing")
    return time.perf_counter() - t0


class _MemoryStore:
    """CHAMP blocks already fetched and hash-checked, as a client holds a server's proof."""

    def __init__(self, blocks: dict[Cid, bytes]) -> None:
        self.blocks = blocks

    def get(self, cid: Cid) -> bytes | None:
        return self.blocks.get(cid)

    def put(self, data: bytes) -> Cid:
        raise AssertionError("read only")


def proof_blocks(store: Blockstore, root: Cid, keys: list[bytes]) -> dict[Cid, bytes]:
    """Every CHAMP block the lookups of `keys` touch."""
    seen: dict[Cid, bytes] = {}

    class Recording(StoreAdapter):
        def get(self, cid: Cid) -> bytes | None:
            data = self.store.get(cid)
            if data is not None:
                seen[cid] = data
            return data

    champ = Champ(Recording(store), identity_hasher)
    for k in keys:
        champ.get(root, k)
    return seen


def verify_lookups(blocks: dict[Cid, bytes], root: Cid, keys: list[bytes]) -> float:
    """Floor part 1: re-walking the lookups over blocks in memory, as a trust-free client must do with the
    server's answers (no I/O, no hashing)."""
    champ = Champ(_MemoryStore(blocks), identity_hasher)
    t0 = time.perf_counter()
    for k in keys:
        champ.get(root, k)
    return time.perf_counter() - t0


def bare_child_work(children: list[tuple[bytes, bytes, bytes]]) -> float:
    """Floor part 2: the least work per listed child: sha256 of its node block, `cbor2.loads` of the node,
    secretbox open of its FromParent part and `cbor2.loads` of the properties, with no validation and no
    objects built. `children` holds (block, digest, key) of each file node."""
    t0 = time.perf_counter()
    for block, digest, key in children:
        if hashlib.sha256(block).digest() != digest:
            raise AssertionError("a node block does not match its hash")
        nonce, box = cbor2.loads(block)["p"]
        cbor2.loads(crypto_secretbox_open_easy(box, nonce, key))
    return time.perf_counter() - t0


async def listed_children(ctx: UserContext, folder: str) -> list[tuple[bytes, bytes, bytes]]:
    """(block, sha256 digest, base key) of every file node a cold `ls` of `folder` decodes."""
    got: list[tuple[bytes, bytes, bytes]] = []
    original = client_nodes._decode_block

    def spy(cap: AbsoluteCapability, cid: Cid, block: bytes) -> Any:
        decoded = original(cap, cid, block)
        if not decoded[1].is_directory:
            got.append((block, cid.multihash[2:], cap.rbase_key.key))
        return decoded

    client_nodes._decode_block = spy
    try:
        await ctx.ls(folder)
    finally:
        client_nodes._decode_block = original
    return got


async def bench_floor(url: str, folder: str, store: Blockstore, root: Cid, keys: list[bytes]) -> None:
    """How far below the baseline a cold listing could get: the per-child work any trust-free client
    must do, measured in this process against the same baseline (medians of 5 interleaved rounds)."""
    fresh = await UserContext.login(url, USER, PASSWORD)
    async with fresh:
        children = await listed_children(fresh, folder)
    blocks = await trio.to_thread.run_sync(proof_blocks, store, root, keys)
    base: list[float] = []
    verify: list[float] = []
    bare: list[float] = []
    for _ in range(5):
        base.append(await trio.to_thread.run_sync(champ_lookups, store, root, keys))
        verify.append(await trio.to_thread.run_sync(verify_lookups, blocks, root, keys))
        bare.append(await trio.to_thread.run_sync(bare_child_work, children))
    b = statistics.median(base)
    v = statistics.median(verify)
    w = statistics.median(bare)
    print(
        f"floor: {len(keys)} CHAMP lookups {b * 1000:.0f} ms; re-walking them over blocks in memory "
        f"{v * 1000:.0f} ms ({v / b:.2f}x); bare per-child work for {len(children)} files "
        f"{w * 1000:.0f} ms ({w / b:.2f}x); together {(v + w) / b:.2f}x before any network, server, "
        "validation or result objects"
    )


async def bench_dir(url: str, ctx: UserContext, args: argparse.Namespace, work: Path) -> float:
    n = args.files
    folder = f"/{USER}/many"
    await ctx.mkdir(folder)
    rnd = random.Random(5)
    files = [(f"file-{i:05d}.txt", rnd.randbytes(args.file_bytes)) for i in range(n)]
    t0 = time.perf_counter()
    with profiled(args.profile_create):
        await ctx.upload_files(folder, files)
    created = time.perf_counter() - t0
    print(f"created {n} files of {args.file_bytes} bytes with upload_files in {created:.1f} s", flush=True)
    store, root, keys = await trio.to_thread.run_sync(build_champ, work / "champ", args.kind, n)
    cold: list[float] = []
    warm: list[float] = []
    base: list[float] = []
    try:
        for r in range(args.repeat):
            fresh = await UserContext.login(url, USER, PASSWORD)  # untimed: scrypt
            async with fresh:
                t0 = time.perf_counter()
                with profiled(args.profile_ls if r == 0 else None):
                    listed = await fresh.ls(folder)
                tc = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = await fresh.ls(folder)
                tw = time.perf_counter() - t0
            if len(listed) != n or len(again) != n or listed[0].size != args.file_bytes:
                raise AssertionError(f"ls listed {len(listed)} entries, expected {n}")
            tb = await trio.to_thread.run_sync(champ_lookups, store, root, keys)
            cold.append(tc)
            warm.append(tw)
            base.append(tb)
            print(
                f"round {r + 1}: ls cold {tc * 1000:.0f} ms, ls warm {tw * 1000:.0f} ms, "
                f"{n} CHAMP lookups {tb * 1000:.0f} ms (cold {tc / tb:.2f}x, warm {tw / tb:.2f}x)  "
                f"[load {os.getloadavg()[0]:.2f}]",
                flush=True,
            )
        if args.floor:
            await bench_floor(url, folder, store, root, keys)
    finally:
        store.close()
    ratio = statistics.median(c / b for c, b in zip(cold, base, strict=True))
    warm_ratio = statistics.median(w / b for w, b in zip(warm, base, strict=True))
    print(f"median ls (fresh login, cold) / {n} CHAMP lookups = {ratio:.2f}x (goal < 2)")
    print(f"median ls (same session, warm) / {n} CHAMP lookups = {warm_ratio:.2f}x")
    return ratio


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=TMP) as d:
        work = Path(d)
        with daemon(work / "server", args.kind) as (url, token):
            ctx = await UserContext.signup(url, USER, PASSWORD, token)
            async with ctx:
                if not args.skip_files:
                    await bench_files(url, ctx, args, work)
                if not args.skip_dir:
                    await bench_dir(url, ctx, args, work)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="size of the big file in MiB")
    ap.add_argument("--repeat", type=int, default=3, help="rounds")
    ap.add_argument("--files", type=int, default=10_000, help="files in the listed folder")
    ap.add_argument("--file-bytes", type=int, default=1024, help="size of each small file")
    ap.add_argument("--kind", default="hybrid", help="block store kind (daemon and ideal pipeline)")
    ap.add_argument("--skip-files", action="store_true", help="skip the big-file part")
    ap.add_argument("--skip-dir", action="store_true", help="skip the directory part")
    ap.add_argument("--verify-full", action="store_true", help="sha256-check one download (untimed)")
    ap.add_argument("--profile-upload", help="cProfile output of the first fs upload")
    ap.add_argument("--profile-download", help="cProfile output of the first fs download")
    ap.add_argument("--profile-create", help="cProfile output of upload_files")
    ap.add_argument("--profile-ls", help="cProfile output of the first cold ls")
    ap.add_argument("--floor", action="store_true", help="also measure the floor of a cold listing")
    args = ap.parse_args()
    tune_allocator()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    trio.run(run, args)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
