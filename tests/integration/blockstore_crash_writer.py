"""Writer process for test_blockstore_crash.py: streams puts into a block store until it is killed.

Usage: python blockstore_crash_writer.py KIND PATH SEED SYNC

Prints `ready` once the store is open, then for every block `begin <cid> <size>` before the put (or batch)
starts and `done <cid>` once it has returned, flushing after each line, so the parent knows which puts
were acknowledged when it sends SIGKILL. Block sizes mix small (RocksDB side of the hybrid) and large
(file side, up to Peergos' 1 MiB + 100 bytes); about one operation in five is a `put_many` batch.
"""

from __future__ import annotations

import random
import sys

from nabu_py.blockstore import open_blockstore
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid


def main(argv: list[str]) -> None:
    kind, path, seed, sync = argv[0], argv[1], int(argv[2]), argv[3] == "1"
    rng = random.Random(seed)
    store = open_blockstore(kind, path, sync=sync)
    out = sys.stdout

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def make() -> tuple[Cid, bytes]:
        if rng.random() < 0.5:
            data = rng.randbytes(rng.randrange(0, 6000))
            codec = CODEC_DAG_CBOR if rng.random() < 0.5 else CODEC_RAW
        else:
            data = rng.randbytes(rng.randrange(64 * 1024, 1024 * 1024 + 101))
            codec = CODEC_RAW
        return Cid.for_block(codec, data), data

    emit("ready")
    while True:
        if rng.random() < 0.2:
            batch = [make() for _ in range(rng.randrange(2, 7))]
            for cid, data in batch:
                emit(f"begin {cid} {len(data)}")
            store.put_many(batch)
            for cid, _ in batch:
                emit(f"done {cid}")
        else:
            cid, data = make()
            emit(f"begin {cid} {len(data)}")
            store.put(cid, data)
            emit(f"done {cid}")


if __name__ == "__main__":
    main(sys.argv[1:])
