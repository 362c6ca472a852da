"""Behaviour specific to each block store: on-disk layout, corruption detection, routing, factory."""

from __future__ import annotations

import glob
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import rocksdict
from hypothesis import given
from hypothesis import strategies as st

from nabu_py.blockstore import (
    DEFAULT_KIND,
    KINDS,
    FileBlockstore,
    HybridBlockstore,
    MemoryBlockstore,
    RocksBlockstore,
    open_blockstore,
)
from nabu_py.blockstore import rocks as rocks_module
from nabu_py.blockstore.files import SHARDING, block_key, block_relpath
from nabu_py.blockstore.rocks import rocksdb_options
from nabu_py.errors import BlockNotFound, BlockstoreError, CorruptBlock
from nabu_py.multiformats import multibase, multihash
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid


def data_of(n: int, seed: int = 0) -> bytes:
    return random.Random(f"{n}/{seed}").randbytes(n)


def flip_byte(path: str | Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


# ---- files ----------------------------------------------------------------------------------------------
def test_nabu_flatfs_layout(tmp_path: Path) -> None:
    # spec/nabu.md §5.3, from Nabu's BlockStoreTest
    cid = Cid.parse("zb2rhYSxw4ZjuzgCnWSt19Q94ERaeFhu9uSqRgjSdx9bsgM6f")
    assert block_relpath(cid) == "SC/AFKREIA22FLID5AJ2KU7URG47MDLROZIH6YF2KALU2PWEFPVI37YLKRSCA.data"
    with FileBlockstore(tmp_path / "blocks") as store:
        cid = store.put_block(CODEC_DAG_CBOR, b"\xa0")
        key = block_key(cid)
        assert key.startswith("AFYREI")
        assert store.path_of(cid) == tmp_path / "blocks" / key[-3:-1] / f"{key}.data"
        assert store.path_of(cid).read_bytes() == b"\xa0"
    assert (tmp_path / "blocks" / "SHARDING").read_text().strip() == SHARDING


@given(st.binary(max_size=80), st.sampled_from([CODEC_RAW, CODEC_DAG_CBOR]))
def test_block_key_is_upper_base32_of_the_cid(digest: bytes, codec: int) -> None:
    cid = Cid.v1(codec, multihash.wrap(multihash.IDENTITY, digest))
    assert block_key(cid) == multibase.b32encode(bytes(cid), upper=True)
    assert multibase.b32decode(block_key(cid)) == bytes(cid)


def test_opens_a_directory_written_by_nabu(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    data = data_of(500)
    cid = Cid.for_block(CODEC_RAW, data)
    target = root / block_relpath(cid)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)  # Nabu writes no SHARDING file
    with FileBlockstore(root, create=False) as store:
        assert list(store.list()) == [cid]
        assert store.get(cid) == data


def test_refuses_a_different_shard_function(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    root.mkdir()
    (root / "SHARDING").write_text("/repo/flatfs/shard/v1/prefix/2\n")
    with pytest.raises(BlockstoreError, match="shard function"):
        FileBlockstore(root)
    # the failed open released its lock: a correct layout opens afterwards
    (root / "SHARDING").write_text(SHARDING + "\n")
    FileBlockstore(root).close()


def test_crash_leftovers_are_removed_and_never_listed(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    with FileBlockstore(root) as store:
        cid = store.put_block(CODEC_RAW, data_of(100))
    leftover = root / ".tmp" / (block_key(cid) + ".data.7")
    leftover.write_bytes(b"partial")
    with FileBlockstore(root) as store:
        assert not leftover.exists()
        assert list(store.list()) == [cid]


def test_foreign_files_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "blocks"
    with FileBlockstore(root) as store:
        cid = store.put_block(CODEC_RAW, data_of(100))
        shard = store.path_of(cid).parent
        (shard / "notes.txt").write_text("hi")
        (shard / "AAAA.data").write_bytes(b"x")  # wrong shard for its name
        (shard / f"{block_key(cid).lower()}.data").write_bytes(b"x")  # not canonical upper case
        (root / "zz").mkdir()  # not a shard name
        with caplog.at_level(logging.WARNING, logger="nabu_py.blockstore.files"):
            assert list(store.list()) == [cid]
        assert len(caplog.records) == 3


@pytest.mark.parametrize("damage", ["flip", "truncate", "grow"])
def test_damaged_file_is_reported_and_repaired_by_put(tmp_path: Path, damage: str) -> None:
    data = data_of(3000)
    with FileBlockstore(tmp_path / "blocks") as store:
        cid = store.put_block(CODEC_RAW, data)
        path = store.path_of(cid)
        if damage == "flip":
            flip_byte(path, 1234)
        elif damage == "truncate":
            os.truncate(path, 1000)
        else:
            with open(path, "ab") as f:
                f.write(b"tail")
        with pytest.raises(CorruptBlock):
            store.get(cid)
        assert store.has(cid)  # presence is not content verification
        store.put(cid, data)
        if damage == "flip":  # same size: put cannot tell, the block stays reported as corrupt
            with pytest.raises(CorruptBlock):
                store.get(cid)
            assert store.rm(cid)
            store.put(cid, data)
        assert store.get(cid) == data


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    data = data_of(2000)
    with FileBlockstore(tmp_path / "blocks") as store:
        cid = store.put_block(CODEC_RAW, data)
    with FileBlockstore(tmp_path / "blocks", max_block_size=1000) as store:
        with pytest.raises(CorruptBlock, match="more than the limit"):
            store.get(cid)
        assert store.size(cid) == 2000


def test_unverified_reads_serve_bytes_as_stored(tmp_path: Path) -> None:
    data = data_of(3000)
    with FileBlockstore(tmp_path / "blocks", verify=False) as store:
        cid = store.put_block(CODEC_RAW, data)
        flip_byte(store.path_of(cid), 10)
        assert store.get(cid) != data


def test_a_second_process_is_locked_out(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    code = (
        "import sys\n"
        "from nabu_py.blockstore import FileBlockstore\n"
        "from nabu_py.errors import BlockstoreError\n"
        "try:\n    FileBlockstore(sys.argv[1])\nexcept BlockstoreError:\n    sys.exit(3)\n"
    )
    with FileBlockstore(root):
        rc = subprocess.run([sys.executable, "-c", code, str(root)], timeout=60).returncode
        assert rc == 3
    rc = subprocess.run([sys.executable, "-c", code, str(root)], timeout=60).returncode
    assert rc == 0


def test_io_errors_become_blockstore_errors(tmp_path: Path) -> None:
    with FileBlockstore(tmp_path / "blocks") as store:
        cid = store.put_block(CODEC_RAW, data_of(100))
        path = store.path_of(cid)
        path.unlink()
        path.mkdir()  # a directory where the block file should be
        with pytest.raises(BlockstoreError):
            store.get(cid)
        with pytest.raises(BlockstoreError):
            store.rm(cid)
        path.rmdir()
        shard = path.parent
        shard.rmdir()
        shard.write_bytes(b"")  # a file where the shard directory should be
        with pytest.raises(BlockstoreError):
            store.put_block(CODEC_RAW, data_of(100))
        with pytest.raises(BlockstoreError):
            store.get(cid)
        with pytest.raises(BlockNotFound):
            store.get(Cid.for_block(CODEC_RAW, b"never stored"))


# ---- rocksdict ------------------------------------------------------------------------------------------
def test_rocks_value_damaged_behind_our_back(tmp_path: Path) -> None:
    data = data_of(500)
    cid = Cid.for_block(CODEC_RAW, data)
    db = rocksdict.Rdict(str(tmp_path / "db"), rocksdb_options())
    db.put(bytes(cid), data[:-1])
    db.put(b"not a cid", b"x")
    db.close()
    with RocksBlockstore(tmp_path / "db") as store:
        with pytest.raises(CorruptBlock):
            store.get(cid)
        assert list(store.list()) == [cid]  # the foreign key is skipped
    with RocksBlockstore(tmp_path / "db", verify=False) as store:
        assert store.get(cid) == data[:-1]


def test_rocks_sst_corruption_is_reported(tmp_path: Path) -> None:
    with RocksBlockstore(tmp_path / "db") as store:
        blocks = [data_of(100_000, i) for i in range(3)]
        cids = [store.put_block(CODEC_RAW, d) for d in blocks]
        store._db.flush()
    ssts = glob.glob(str(tmp_path / "db" / "*.sst"))
    assert len(ssts) == 1
    flip_byte(ssts[0], os.path.getsize(ssts[0]) // 2)
    try:
        store = RocksBlockstore(tmp_path / "db")
    except BlockstoreError:  # RocksDB may refuse to open: also a typed report
        return
    with store:
        failures = 0
        for cid, data in zip(cids, blocks, strict=True):
            try:
                assert store.get(cid) == data
            except CorruptBlock:
                failures += 1
        assert failures == 1
        with pytest.raises(CorruptBlock):
            list(store.list())


def test_rocks_batches_are_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rocks_module, "_BATCH_BYTES", 1000)
    with RocksBlockstore(tmp_path / "db") as store:
        blocks = [(Cid.for_block(CODEC_RAW, d), d) for d in (data_of(300, i) for i in range(20))]
        seq = store._db.latest_sequence_number()
        store.put_many(blocks)
        assert store._db.latest_sequence_number() == seq + 20
        assert sorted(store.list()) == sorted(c for c, _ in blocks)


def test_rocks_existing_blocks_are_not_rewritten(tmp_path: Path) -> None:
    with RocksBlockstore(tmp_path / "db") as store:
        cid = store.put_block(CODEC_RAW, data_of(1000))
        seq = store._db.latest_sequence_number()
        store.put(cid, data_of(1000))
        store.put_many([(cid, data_of(1000))])
        assert store._db.latest_sequence_number() == seq


# ---- hybrid ---------------------------------------------------------------------------------------------
def test_hybrid_routes_by_size(tmp_path: Path) -> None:
    with HybridBlockstore(tmp_path / "h", threshold=1000) as store:
        assert store.threshold == 1000
        small = store.put_block(CODEC_RAW, data_of(999))
        large = store.put_block(CODEC_RAW, data_of(1000))
        assert store._small._has(small) and not store._large._has(small)
        assert store._large._has(large) and not store._small._has(large)
        assert (tmp_path / "h" / "blocks" / block_relpath(large)).is_file()
        assert sorted(store.list()) == sorted([small, large])


def test_hybrid_lowering_the_threshold_never_duplicates(tmp_path: Path) -> None:
    data = data_of(5000)
    with HybridBlockstore(tmp_path / "h", threshold=100_000) as store:
        cid = store.put_block(CODEC_RAW, data)  # goes to RocksDB
    with HybridBlockstore(tmp_path / "h", threshold=100) as store:
        store.put(cid, data)  # would go to files, but is already stored
        store.put_many([(cid, data)])
        assert not store._large._has(cid)
        assert list(store.list()) == [cid]
        assert store.rm(cid)
        assert not store.has(cid)


def test_hybrid_raising_the_threshold_keeps_one_listing(tmp_path: Path) -> None:
    data = data_of(5000)
    with HybridBlockstore(tmp_path / "h", threshold=100) as store:
        cid = store.put_block(CODEC_RAW, data)  # goes to files
    with HybridBlockstore(tmp_path / "h", threshold=100_000) as store:
        assert store.get(cid) == data
        store.put(cid, data)  # now small: a second copy in RocksDB, listed once
        assert list(store.list()) == [cid]
        assert store.size(cid) == 5000
        assert store.rm(cid)
        assert not store.has(cid)
        assert store.rm(cid) is False


def test_hybrid_lists_a_block_in_both_backends_once(tmp_path: Path) -> None:
    data = data_of(5000)
    cid = Cid.for_block(CODEC_RAW, data)
    with HybridBlockstore(tmp_path / "h") as store:
        store._small._put(cid, data)
        store._large._put(cid, data)
        assert list(store.list()) == [cid]
        assert store.rm(cid)
        assert not store.has(cid)


def test_hybrid_open_failure_releases_rocksdb(tmp_path: Path) -> None:
    root = tmp_path / "h"
    (root / "blocks").mkdir(parents=True)
    (root / "blocks" / "SHARDING").write_text("something else\n")
    with pytest.raises(BlockstoreError):
        HybridBlockstore(root)
    RocksBlockstore(root / "rocksdb").close()  # not left locked by the failed open


# ---- memory ---------------------------------------------------------------------------------------------
def test_memory_budget() -> None:
    with MemoryBlockstore(max_total_bytes=1000) as store:
        a = store.put_block(CODEC_RAW, data_of(600))
        store.put_block(CODEC_RAW, data_of(600))  # already there: costs nothing
        with pytest.raises(BlockstoreError, match="full"):
            store.put_block(CODEC_RAW, data_of(600, 1))
        assert store.total_bytes == 600
        store.rm(a)
        assert store.total_bytes == 0
        store.put_block(CODEC_RAW, data_of(600, 1))
    with pytest.raises(ValueError):
        MemoryBlockstore(max_total_bytes=-1)


# ---- factory --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_open_blockstore(kind: str, tmp_path: Path) -> None:
    path = None if kind == "memory" else tmp_path / kind
    store = open_blockstore(kind, path, max_block_size=5000, sync=False)
    with store:
        assert store.max_block_size == 5000
        cid = store.put_block(CODEC_RAW, b"factory")
        assert store.get(cid) == b"factory"
    expected = {
        "memory": MemoryBlockstore,
        "rocksdict": RocksBlockstore,
        "files": FileBlockstore,
        "hybrid": HybridBlockstore,
    }[kind]
    assert type(store) is expected


def test_open_blockstore_arguments(tmp_path: Path) -> None:
    assert DEFAULT_KIND in KINDS
    with pytest.raises(ValueError, match="unknown"):
        open_blockstore("s3", tmp_path)
    with pytest.raises(ValueError, match="needs a path"):
        open_blockstore("files")
    with pytest.raises(ValueError, match="no path"):
        open_blockstore("memory", tmp_path)
    with open_blockstore("hybrid", tmp_path / "h", threshold=10) as store:
        assert isinstance(store, HybridBlockstore) and store.threshold == 10
