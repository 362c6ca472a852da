"""Primitive throughput against baselines measured in the same run (design.md §5, CONTRIBUTING.md).

    python benchmarks/primitives.py [--repeat N] [--only SECTION ...] [--check]

(with the project's virtualenv: `python3 dev.py run python benchmarks/primitives.py`).

Each section is a function returning `Result`s: our code path timed against the raw library call it
wraps, both measured here and now, reported as medians of several repetitions and as a throughput
ratio (baseline time / our time; 1.0 = as fast as the raw library). A `Result` may carry a goal ratio;
`--check` exits 1 if any goal is missed. Add sections (block stores, ...) by writing another
`section_*` function and listing it in `SECTIONS`.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import cbor2
import nacl.bindings
import nacl.secret
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM1024PrivateKey

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.crypto import mlkem
from peergos_node.crypto.hashes import sha256
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.symmetric import CipherText, SymmetricKey

MIB = 1024 * 1024


@dataclass(frozen=True)
class Result:
    """One comparison: our median time against the baseline's, on `size` bytes."""

    name: str
    size: int
    ours: float
    baseline: float
    baseline_name: str
    goal: float | None = None

    @property
    def ratio(self) -> float:
        """Throughput relative to the baseline (higher is better)."""
        return self.baseline / self.ours

    @property
    def met(self) -> bool:
        """Whether the goal (if any) is met."""
        return self.goal is None or self.ratio >= self.goal


def median_time(fn: Callable[[], object], repeat: int, number: int = 1) -> float:
    """Median wall time of `number` calls, over `repeat` runs, after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number)
    return statistics.median(runs)


def compare(
    name: str,
    size: int,
    ours: Callable[[], object],
    baseline: Callable[[], object],
    baseline_name: str,
    repeat: int,
    goal: float | None = None,
    number: int = 1,
) -> Result:
    """Time both interleaved (ours, baseline, ours, ...) so machine noise hits both alike."""
    ours_runs: list[float] = []
    base_runs: list[float] = []
    for _ in range(repeat):
        ours_runs.append(median_time(ours, 1, number))
        base_runs.append(median_time(baseline, 1, number))
    return Result(name, size, statistics.median(ours_runs), statistics.median(base_runs), baseline_name, goal)


# ---- sections ----------------------------------------------------------------------------------------------
def section_secretbox(repeat: int) -> list[Result]:
    """XSalsa20-Poly1305 on a 5 MiB chunk: SymmetricKey vs raw libsodium (and PyNaCl's SecretBox)."""
    data = os.urandom(5 * MIB)
    key = SymmetricKey(os.urandom(32))
    nonce = os.urandom(24)
    sealed = nacl.bindings.crypto_secretbox_easy(data, nonce, key.key)
    box = nacl.secret.SecretBox(key.key)
    raw_encrypt = nacl.bindings.crypto_secretbox_easy
    raw_decrypt = nacl.bindings.crypto_secretbox_open_easy
    return [
        compare(
            "secretbox encrypt 5 MiB",
            len(data),
            lambda: key.encrypt(data, nonce),
            lambda: raw_encrypt(data, nonce, key.key),
            "crypto_secretbox_easy",
            repeat,
            goal=0.9,
        ),
        compare(
            "secretbox decrypt 5 MiB",
            len(data),
            lambda: key.decrypt(sealed, nonce),
            lambda: raw_decrypt(sealed, nonce, key.key),
            "crypto_secretbox_open_easy",
            repeat,
            goal=0.9,
        ),
        compare(
            "CipherText.encrypt 5 MiB (+ nonce draw)",
            len(data),
            lambda: CipherText.encrypt(key, data),
            lambda: raw_encrypt(data, nonce, key.key),
            "crypto_secretbox_easy",
            repeat,
        ),
        compare(
            "PyNaCl SecretBox.encrypt 5 MiB (not used)",
            len(data),
            lambda: box.encrypt(data, nonce),
            lambda: raw_encrypt(data, nonce, key.key),
            "crypto_secretbox_easy",
            repeat,
        ),
    ]


def _sha256_rows(size: int, repeat: int) -> list[Result]:
    data = os.urandom(size)
    cid = Cid.for_block(CODEC_RAW, data)

    def baseline() -> bytes:
        return hashlib.sha256(data).digest()

    label = f"{size // MIB} MiB"
    return [
        compare(
            f"Cid.for_block raw {label}",
            size,
            lambda: Cid.for_block(CODEC_RAW, data),
            baseline,
            "hashlib.sha256",
            repeat,
            goal=0.9,
        ),
        compare(
            f"Cid.verify {label}",
            size,
            lambda: cid.verify(data),
            baseline,
            "hashlib.sha256",
            repeat,
            goal=0.9,
        ),
        compare(
            f"crypto.hashes.sha256 {label}", size, lambda: sha256(data), baseline, "hashlib.sha256", repeat
        ),
    ]


def section_sha256(repeat: int) -> list[Result]:
    """sha256 of blocks: our multihash/CID path and hash helper vs hashlib."""
    small = os.urandom(100)
    return [
        *_sha256_rows(1 * MIB, repeat),
        *_sha256_rows(5 * MIB, repeat),
        compare(
            "Cid.for_block raw 100 B (per call)",
            100,
            lambda: Cid.for_block(CODEC_RAW, small),
            lambda: hashlib.sha256(small).digest(),
            "hashlib.sha256",
            repeat,
            number=1000,
        ),
    ]


def section_mlkem(repeat: int) -> list[Result]:
    """Our pure-Python ML-KEM-1024 (Peergos key format) against OpenSSL's through `cryptography`."""
    seed = os.urandom(64)
    ek, dk = mlkem.keygen(seed[:32], seed[32:])
    reference = MLKEM1024PrivateKey.from_seed_bytes(seed)
    reference_public = reference.public_key()
    _shared, ct = mlkem.encapsulate(ek, os.urandom(32))
    m = os.urandom(32)
    return [
        compare(
            "ML-KEM-1024 keygen",
            0,
            lambda: mlkem.keygen(seed[:32], seed[32:]),
            lambda: MLKEM1024PrivateKey.from_seed_bytes(seed).public_key(),
            "OpenSSL from_seed_bytes",
            repeat,
        ),
        compare(
            "ML-KEM-1024 encapsulate",
            0,
            lambda: mlkem.encapsulate(ek, m),
            reference_public.encapsulate,
            "OpenSSL encapsulate",
            repeat,
        ),
        compare(
            "ML-KEM-1024 decapsulate",
            0,
            lambda: mlkem.decapsulate(dk, ct),
            lambda: reference.decapsulate(ct),
            "OpenSSL decapsulate",
            repeat,
        ),
    ]


def section_pow(repeat: int) -> list[Result]:
    """ProofOfWork.find against the obvious loop (concatenate, hash, test) at difficulty 16."""
    data = os.urandom(250)

    def naive() -> int:
        counter = 0
        while True:
            digest = hashlib.sha256(counter.to_bytes(8, "little") + data).digest()
            if digest[0] == 0 and digest[1] == 0:
                return counter
            counter += 1

    expected = naive()
    if ProofOfWork.find(data, 16).counter != expected:
        raise AssertionError("ProofOfWork.find disagrees with the naive search")
    return [
        compare(
            "ProofOfWork.find difficulty 16",
            0,
            lambda: ProofOfWork.find(data, 16),
            naive,
            "naive loop",
            repeat,
        )
    ]


def section_dag_cbor(repeat: int) -> list[Result]:
    """Strict dag-cbor decoding of small blocks (per call) against cbor2.loads, which checks none of it."""
    rng = random.Random(7)

    def blob(n: int) -> bytes:
        return rng.randbytes(n)

    node = dag_cbor.encode(  # the shape and size of a cryptree node of a small file (~4.8 KB)
        {
            "v": 1,
            "b": [blob(24), blob(400)],
            "p": [blob(24), blob(80)],
            "d": {"f": [blob(4112)], "n": blob(24)},
            "bats": [blob(36)],
        }
    )
    key = [1, blob(32), False]
    from_base = dag_cbor.encode(
        {"k": key, "n": {"a": {"s": blob(32)}, "k": key, "m": blob(32)}, "w": [blob(24)]}
    )
    padded = from_base + bytes(-len(from_base) % 128)  # as decrypted from a PaddedCipherText
    links = dag_cbor.encode(  # CHAMP-like: a bucket of keys and merkle links
        [blob(1), b"", [[blob(32), Cid.for_block(CODEC_DAG_CBOR, blob(8))] for _ in range(8)]]
    )
    rows = [
        (f"dag_cbor.decode node {len(node)} B", node, {}),
        (f"dag_cbor.decode FromBase {len(padded)} B padded", padded, {"allow_zero_padding": True}),
        (f"dag_cbor.decode 8 links {len(links)} B", links, {}),
    ]
    return [
        compare(
            name,
            len(data),
            functools.partial(dag_cbor.decode, data, **kw),
            functools.partial(cbor2.loads, data),
            "cbor2.loads (no checks)",
            repeat,
            number=2000,
        )
        for name, data, kw in rows
    ]


def section_blockstore(repeat: int) -> list[Result]:
    """Our block stores' put/get of 1 MiB and 1 KiB blocks against the raw library / file calls."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import rocksdict

    from nabu_py.blockstore import open_blockstore
    from nabu_py.multiformats.cid import CODEC_RAW, Cid

    base = Path(tempfile.mkdtemp(prefix=".prim-bench-", dir=os.getcwd()))  # a real disk, not tmpfs
    out: list[Result] = []
    try:

        def rows(size: int, n: int) -> list[Result]:
            out: list[Result] = []
            blocks = [os.urandom(size) for _ in range(n)]
            cids = [Cid.for_block(CODEC_RAW, b) for b in blocks]
            counter = [0]

            def fresh(kind: str) -> Path:
                counter[0] += 1
                return base / f"{kind}{counter[0]}"

            def ours_rocks_put() -> None:
                with open_blockstore("rocksdict", fresh("r"), sync=False) as st:
                    st.put_many(zip(cids, blocks, strict=True))

            def raw_rocks_put() -> None:
                db = rocksdict.Rdict(str(fresh("rr")))
                wb = rocksdict.WriteBatch()
                for c, b in zip(cids, blocks, strict=True):
                    wb.put(bytes(c), b)
                db.write(wb)
                db.close()

            label = f"{size // 1024} KiB x{n}"
            out.append(
                compare(
                    f"rocksdict store put {label}",
                    size * n,
                    ours_rocks_put,
                    raw_rocks_put,
                    "raw rocksdict WriteBatch",
                    repeat,
                )
            )
            rstore = open_blockstore("rocksdict", fresh("rg"), sync=False, verify=True)
            rstore.put_many(zip(cids, blocks, strict=True))
            rraw = rocksdict.Rdict(str(fresh("rrg")))
            for c, b in zip(cids, blocks, strict=True):
                rraw[bytes(c)] = b

            def ours_rocks_get() -> None:
                for c in cids:
                    rstore.get(c)

            def raw_rocks_get() -> None:
                for c in cids:
                    rraw[bytes(c)]

            out.append(
                compare(
                    f"rocksdict store get (hash-verified) {label}",
                    size * n,
                    ours_rocks_get,
                    raw_rocks_get,
                    "raw rocksdict get",
                    repeat,
                )
            )
            rstore.close()
            rraw.close()
            if size < (1 << 20):
                return out

            def ours_files_put() -> None:
                with open_blockstore("files", fresh("f"), sync=True) as st:
                    st.put_many(zip(cids, blocks, strict=True))

            def raw_files_put() -> None:
                d = fresh("rf")
                d.mkdir()
                for c, b in zip(cids, blocks, strict=True):
                    tmp = d / (c.to_base32() + ".tmp")
                    with open(tmp, "wb") as f:
                        f.write(b)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, d / c.to_base32())
                    dfd = os.open(d, os.O_RDONLY)
                    try:
                        os.fsync(dfd)
                    finally:
                        os.close(dfd)

            out.append(
                compare(
                    f"file store put (fsync) {label}",
                    size * n,
                    ours_files_put,
                    raw_files_put,
                    "raw write+fsync+rename+dirsync",
                    repeat,
                )
            )
            return out

        for size, n in ((1 << 20, 8), (1024, 200)):
            out.extend(rows(size, n))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


SECTIONS: dict[str, Callable[[int], list[Result]]] = {
    "blockstore": section_blockstore,
    "dag_cbor": section_dag_cbor,
    "secretbox": section_secretbox,
    "sha256": section_sha256,
    "mlkem": section_mlkem,
    "pow": section_pow,
}


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-4 else f"{seconds * 1e6:9.3f} us"


def format_result(r: Result) -> str:
    """One table row."""
    mbps = f"{r.size / r.ours / 1e6:8.1f} MB/s" if r.size else " " * 13
    goal = "" if r.goal is None else f"  goal >= {r.goal:.2f}x: {'met' if r.met else 'MISSED'}"
    return (
        f"  {r.name:<42} {_duration(r.ours)} {mbps}  vs {r.baseline_name:<26} "
        f"{_duration(r.baseline)}  ratio {r.ratio:5.2f}x{goal}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=9, help="repetitions per measurement (median)")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)
    missed = 0
    for name in args.only or list(SECTIONS):
        print(f"[{name}]")
        for result in SECTIONS[name](args.repeat):
            print(format_result(result))
            missed += not result.met
    print(f"{missed} goal(s) missed")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
