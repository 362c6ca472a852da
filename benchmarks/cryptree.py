"""Cryptree chunk encryption and decryption against raw libsodium + hashlib in the same run (spec §6.4).

    python benchmarks/cryptree.py [--repeat N] [--mib 5]

(with the project's virtualenv: `python3 dev.py run python benchmarks/cryptree.py`).

What a 5 MiB file chunk costs us beyond the cryptography it cannot avoid:

* **encrypt + fragment**: `FragmentedPaddedCipherText.build_data` — CBOR header, zero padding, secretbox,
  split into 1 MiB pieces, BAT prefixes, sha256 CIDs, BAT ids. Baseline: one `crypto_secretbox_easy` over
  the same padded bytes plus sha256 of five 1 MiB slices of the result (the fragment hashes).
* **file chunk node**: `create_file_chunk`, i.e. the above plus FromBase/FromParent and node CBOR.
* **decrypt**: `CryptreeNode.data` — CID check of every fragment, prefix stripping, joining, secretbox open,
  strict CBOR decode. Baseline: sha256 of the fragment blocks plus `crypto_secretbox_open_easy`.

Ratios are baseline time / our time (1.0 = no overhead at all); medians of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nacl.bindings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.fragments import (
    FRAGMENT_SIZE,
    FragmentedPaddedCipherText,
    cbor_byte_string,
    padded_length,
)
from peergos_node.cryptree.node import create_file_chunk
from peergos_node.cryptree.properties import FileProperties, Timestamp
from peergos_node.cryptree.relative import RelativeCapability

MIB = 1024 * 1024


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of one call over `repeat` runs, after a warm-up call."""
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def report(name: str, size: int, ours: float, baseline: float) -> None:
    mbps = size / ours / 1e6
    print(
        f"  {name:<28} {ours * 1e3:7.2f} ms ({mbps:6.0f} MB/s)  baseline {baseline * 1e3:7.2f} ms  "
        f"ratio {baseline / ours:4.2f}x"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--mib", type=int, default=5, help="chunk size in MiB (Peergos: 5)")
    args = parser.parse_args(argv)
    size = args.mib * MIB
    rng = DeterministicRng("bench")
    key, base = SymmetricKey.random(rng), SymmetricKey.random(rng)
    data = rng.random_bytes(size)
    mirror = BatId.sha256(Bat.random(rng))
    nonce = rng.random_bytes(24)

    plaintext = cbor_byte_string(data)
    padded = plaintext + bytes(padded_length(len(plaintext)) - len(plaintext))

    def raw_encrypt_and_hash() -> None:
        ct = nacl.bindings.crypto_secretbox_easy(padded, nonce, key.key)
        view = memoryview(ct)
        for lo in range(22, len(ct), FRAGMENT_SIZE):
            hashlib.sha256(view[lo : lo + FRAGMENT_SIZE]).digest()

    def ours_encrypt() -> None:
        FragmentedPaddedCipherText.build_data(key, data, mirror_bat_id=mirror, rng=rng)

    props = FileProperties.file(
        "f.bin", size, Timestamp(1_700_000_000), "application/octet-stream", bytes(32)
    )
    next_cap = RelativeCapability(bytes(32), base, Bat(bytes(32)))

    def ours_node() -> object:
        return create_file_chunk(
            base_key=base,
            data_key=key,
            properties=props,
            data=data,
            next_chunk=next_cap,
            parent_link=None,
            inline_bat=Bat(bytes(range(32))),
            mirror_bat_id=mirror,
            rng=rng,
        )

    built = create_file_chunk(
        base_key=base,
        data_key=key,
        properties=props,
        data=data,
        next_chunk=next_cap,
        parent_link=None,
        inline_bat=Bat(bytes(range(32))),
        mirror_bat_id=mirror,
        rng=rng,
    )
    blocks = [f.block for f in built.fragments]
    node = built.node
    assert node.data(key, blocks) == data
    payload = node.payload
    ciphertext = (payload.header or b"") + b"".join(f.payload for f in built.fragments)

    def raw_decrypt_and_hash() -> None:
        for block in blocks:
            hashlib.sha256(block).digest()
        nacl.bindings.crypto_secretbox_open_easy(ciphertext, payload.nonce, key.key)

    def ours_decrypt() -> None:
        node.data(key, blocks)

    print(f"[cryptree: {args.mib} MiB chunk, {len(blocks)} fragments, median of {args.repeat}]")
    enc_base = median_time(raw_encrypt_and_hash, args.repeat)
    report("encrypt + fragment", size, median_time(ours_encrypt, args.repeat), enc_base)
    report("file chunk node", size, median_time(ours_node, args.repeat), enc_base)
    report(
        "decrypt chunk data",
        size,
        median_time(ours_decrypt, args.repeat),
        median_time(raw_decrypt_and_hash, args.repeat),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
