"""Upload transaction records (Java `FileUploadTransaction` CBOR) and the 8-ary search for the first
missing chunk (Java `FileChunkBinarySearchTests`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import trio

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.client.uploads import FileUploadTransaction, first_absent_chunk, transaction_name
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.chunks import ChunkLocation, chunk_locations
from peergos_node.cryptree.properties import FileProperties, HashTree, Timestamp
from peergos_node.errors import DecodeError

RNG = DeterministicRng(b"records")


def _record(**over: object) -> FileUploadTransaction:
    writer = SigningKeyPair.random(RNG)
    secret = RNG.random_bytes(32)
    props = FileProperties.file("big.bin", 12 << 20, Timestamp(1_700_000_000, 5), "video/mp4", secret)
    fields: dict[str, object] = dict(
        start_time_ms=1_700_000_000_123,
        path="/alice/dir/big.bin",
        owner=PublicKeyHash.of(SigningKeyPair.random(RNG).public),
        writer=SigningPrivateKeyAndPublicHash.of(writer),
        first=ChunkLocation(RNG.random_bytes(32), Bat.random(RNG)),
        size=12 << 20,
        stream_secret=secret,
        props=props,
        hash=HashTree.build([RNG.random_bytes(32) for _ in range(3)]),
        base_key=SymmetricKey.random(RNG),
        data_key=SymmetricKey.random(RNG),
        write_key=SymmetricKey.random(RNG),
    )
    fields.update(over)
    return FileUploadTransaction(**fields)  # type: ignore[arg-type]


def test_record_round_trips_in_javas_form() -> None:
    rec = _record()
    raw = rec.serialize()
    m = dag_cbor.decode(raw)
    assert list(m) == sorted(m, key=lambda k: (len(k), k))  # canonical (length-first) key order
    assert set(m) == {
        "type", "path", "startTimeEpochMs", "owner", "writer", "baseKey", "dataKey", "writeKey", "props",
        "firstBat", "mapKey", "streamSecret", "size", "hash",
    }  # fmt: skip
    assert m["type"] == "FILE_UPLOAD" and m["size"] == 12 << 20 and m["mapKey"] == rec.first.map_key
    assert FileUploadTransaction.deserialize(raw) == rec
    assert rec.name == str(Cid.for_block(CODEC_RAW, b"/alice/dir/big.bin")) == transaction_name(rec.path)
    assert rec.name.startswith("z") and rec.chunk_count == 3 and not rec.is_legacy
    assert rec.locations() == chunk_locations(rec.stream_secret, rec.first, 3)
    assert rec.write_cap().map_key == rec.first.map_key

    legacy = _record(props=None, base_key=None, data_key=None, write_key=None, hash=None)
    back = FileUploadTransaction.deserialize(legacy.serialize())
    assert back.is_legacy and back == legacy
    with pytest.raises(ValueError):
        legacy.write_cap()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(type="FOLDER"),
        lambda m: m.pop("streamSecret"),
        lambda m: m.update(streamSecret=b"short"),
        lambda m: m.update(mapKey=b"\x00" * 31),
        lambda m: m.update(size=-1),
        lambda m: m.update(extra=1),
        lambda m: m.update(writer="nope"),
        lambda m: m.update(props={"n": "x"}),
    ],
)
def test_malformed_records_are_decode_errors(mutate) -> None:  # type: ignore[no-untyped-def]
    m = dag_cbor.decode(_record().serialize())
    mutate(m)
    with pytest.raises(DecodeError):
        FileUploadTransaction.deserialize(dag_cbor.encode(m))


def _search(n: int, k: int) -> tuple[int, int]:
    secret, first = RNG.random_bytes(32), ChunkLocation(RNG.random_bytes(32), Bat.random(RNG))
    present_keys = {loc.map_key for loc in chunk_locations(secret, first, k)}
    calls = 0

    async def lookup(locs: Sequence[ChunkLocation]) -> list[bool]:
        nonlocal calls
        calls += 1
        assert len(locs) <= 8
        return [loc.map_key in present_keys for loc in locs]

    result = trio.run(first_absent_chunk, secret, first, n, lookup)
    return result, calls


@pytest.mark.parametrize(
    ("n", "k"),
    [(0, 0), (1, 0), (1, 1), *((8, k) for k in range(9)), *((n, n) for n in range(1, 11)), (10_000, 0),
     (10_000, 9_999), (10_000, 10_000), (10_000, 5_000), (4097, 4096)],
)  # fmt: skip
def test_first_absent_chunk_in_log8_round_trips(n: int, k: int) -> None:
    found, calls = _search(n, k)
    assert found == k
    assert calls <= math.ceil(math.log(max(n, 1), 8)) + 2
    if n == 0:
        assert calls == 0


def test_round_trips_grow_logarithmically() -> None:
    previous = 0
    for n in (8, 64, 512, 4096, 32768):
        _, calls = _search(n, n // 2)
        if previous:
            assert calls <= previous + 2
        previous = calls
