"""The `Blockstore` contract, checked against every implementation (design.md §4.8).

Each test runs for the in-memory, rocksdict, file and hybrid stores. The hybrid store is opened with a
64-byte threshold so that the small blocks used here exercise both of its backends. A Hypothesis state
machine at the end compares each store with a dict model, including reopening persistent stores.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from nabu_py.blockstore import (
    DEFAULT_MAX_BLOCK_SIZE,
    Blockstore,
    BlockstoreBase,
    FileBlockstore,
    HybridBlockstore,
    MemoryBlockstore,
    RocksBlockstore,
)
from nabu_py.errors import (
    BlockNotFound,
    BlockstoreClosed,
    BlockstoreError,
    BlockTooLarge,
    DecodeError,
    HashMismatch,
)
from nabu_py.multiformats import multihash
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_RAW, Cid

HYBRID_TEST_THRESHOLD = 64


@dataclass(frozen=True)
class Impl:
    kind: str
    persistent: bool

    def open(self, path: Path, **kw: Any) -> BlockstoreBase:
        if self.kind == "memory":  # nothing to sync, verify or create
            return MemoryBlockstore(**{k: v for k, v in kw.items() if k == "max_block_size"})
        if self.kind == "rocksdict":
            return RocksBlockstore(path, **kw)
        if self.kind == "files":
            return FileBlockstore(path, **kw)
        return HybridBlockstore(path, threshold=HYBRID_TEST_THRESHOLD, **kw)


IMPLS = [
    Impl("memory", persistent=False),
    Impl("rocksdict", persistent=True),
    Impl("files", persistent=True),
    Impl("hybrid", persistent=True),
]


@pytest.fixture(params=IMPLS, ids=lambda i: i.kind)
def impl(request: pytest.FixtureRequest) -> Impl:
    value: Impl = request.param
    return value


@pytest.fixture
def opener(impl: Impl, tmp_path: Path) -> Iterator[Callable[..., BlockstoreBase]]:
    """Opens the implementation at one fixed path (so reopening finds the same data); closes at exit."""
    opened: list[BlockstoreBase] = []

    def open_(**kw: Any) -> BlockstoreBase:
        store = impl.open(tmp_path / "store", **kw)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[..., BlockstoreBase]) -> BlockstoreBase:
    return opener()


def data_of(n: int, seed: int = 0) -> bytes:
    return random.Random(f"{n}/{seed}").randbytes(n)


def block(n: int, seed: int = 0, codec: int = CODEC_RAW) -> tuple[Cid, bytes]:
    data = data_of(n, seed)
    return Cid.for_block(codec, data), data


SIZES = [0, 1, 63, 64, 65, 1000, 70_000]


# ---- basic operations --------------------------------------------------------------------------------
def test_satisfies_protocol(store: BlockstoreBase) -> None:
    assert isinstance(store, Blockstore)
    assert store.max_block_size == DEFAULT_MAX_BLOCK_SIZE
    assert not store.closed


@pytest.mark.parametrize("n", SIZES)
def test_put_get_has_size_rm(store: BlockstoreBase, n: int) -> None:
    cid, data = block(n)
    assert not store.has(cid)
    assert store.size(cid) is None
    store.put(cid, data)
    assert store.has(cid)
    assert store.get(cid) == data
    assert store.size(cid) == n
    assert list(store.list()) == [cid]
    assert store.rm(cid) is True
    assert not store.has(cid)
    assert store.size(cid) is None
    assert store.rm(cid) is False
    assert list(store.list()) == []
    with pytest.raises(BlockNotFound):
        store.get(cid)


def test_missing_block_is_a_keyerror_too(store: BlockstoreBase) -> None:
    cid, _ = block(10)
    with pytest.raises(KeyError):
        store.get(cid)


def test_put_block_computes_cidv1_sha256(store: BlockstoreBase) -> None:
    for codec in (CODEC_RAW, CODEC_DAG_CBOR):
        data = data_of(100, codec)
        cid = store.put_block(codec, data)
        assert cid == Cid.for_block(codec, data)
        assert cid.version == 1 and cid.codec == codec and cid.hash_code == multihash.SHA2_256
        assert store.get(cid) == data


def test_same_bytes_under_two_codecs_are_two_blocks(store: BlockstoreBase) -> None:
    data = data_of(80)
    raw = store.put_block(CODEC_RAW, data)
    cbor = store.put_block(CODEC_DAG_CBOR, data)
    assert raw != cbor
    assert sorted(store.list()) == sorted([raw, cbor])
    assert store.rm(raw)
    assert store.get(cbor) == data


def test_cidv0_blocks(store: BlockstoreBase) -> None:
    data = data_of(300)
    cid = Cid(0, CODEC_DAG_PB, multihash.compute(multihash.SHA2_256, data))
    store.put(cid, data)
    assert store.get(cid) == data
    assert list(store.list()) == [cid]
    assert not store.has(Cid.for_block(CODEC_DAG_PB, data))  # keys are whole CIDs, as in Nabu


def test_blake2b_cids_are_verified(store: BlockstoreBase) -> None:
    data = data_of(90)
    cid = Cid.for_block(CODEC_RAW, data, multihash.BLAKE2B_512)
    store.put(cid, data)
    assert store.get(cid) == data
    with pytest.raises(HashMismatch):
        store.put(Cid.for_block(CODEC_RAW, b"other", multihash.BLAKE2B_512), data)


def test_bytes_like_input_is_copied(store: BlockstoreBase) -> None:
    original = data_of(100)
    data = bytearray(original)
    cid = Cid.for_block(CODEC_RAW, original)
    store.put(cid, data)
    data[0] ^= 0xFF  # mutating the caller's buffer afterwards must not change the stored block
    assert store.get(cid) == original
    cid2, data2 = block(70, 1)
    store.put(cid2, memoryview(data2))
    assert store.get(cid2) == data2
    cid3 = store.put_block(CODEC_RAW, memoryview(data2)[:10])
    assert store.get(cid3) == data2[:10]


def test_type_errors_for_misuse(store: BlockstoreBase) -> None:
    cid, _ = block(10)
    with pytest.raises(TypeError):
        store.get(str(cid))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.has(bytes(cid))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.put(cid, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.rm(None)  # type: ignore[arg-type]


# ---- verification ----------------------------------------------------------------------------------
def test_put_rejects_wrong_data(store: BlockstoreBase) -> None:
    cid, data = block(100)
    with pytest.raises(HashMismatch):
        store.put(cid, data + b"x")
    with pytest.raises(DecodeError):  # HashMismatch is a DecodeError: the sender's fault
        store.put(cid, data[:-1])
    assert not store.has(cid)
    assert list(store.list()) == []


def test_put_rejects_unsupported_hash(store: BlockstoreBase) -> None:
    data = data_of(40)
    cid = Cid.v1(CODEC_RAW, multihash.wrap(0x16, hashlib.sha3_256(data).digest()))  # sha3-256
    with pytest.raises(DecodeError):
        store.put(cid, data)
    assert not store.has(cid)


def test_put_many_validates_everything_first(store: BlockstoreBase) -> None:
    good = [block(n, 7) for n in (5, 70, 300)]
    bad_cid, bad_data = block(50, 8)
    with pytest.raises(HashMismatch):
        store.put_many([*good, (bad_cid, bad_data[::-1])])
    assert list(store.list()) == []
    with pytest.raises(BlockTooLarge):
        store.put_many([*good, block(store.max_block_size + 1, 9)])
    assert list(store.list()) == []


# ---- idempotence and batches ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [10, 100])
def test_put_is_idempotent(store: BlockstoreBase, n: int) -> None:
    cid, data = block(n)
    store.put(cid, data)
    store.put(cid, data)
    store.put_many([(cid, data), (cid, data)])
    assert store.put_block(CODEC_RAW, data) == cid
    assert list(store.list()) == [cid]
    assert store.get(cid) == data
    assert store.rm(cid) is True
    assert store.rm(cid) is False


def test_put_many(store: BlockstoreBase) -> None:
    blocks = [block(n, i) for i, n in enumerate([0, 3, 63, 64, 65, 500, 5000, 100_000])]
    ident = Cid.v1(CODEC_RAW, multihash.compute(multihash.IDENTITY, b"inline"))
    store.put_many(iter([*blocks, (ident, b"inline"), blocks[0]]))
    assert sorted(store.list()) == sorted(cid for cid, _ in blocks)
    for cid, data in blocks:
        assert store.get(cid) == data
    store.put_many([])
    assert len(list(store.list())) == len(blocks)


# ---- size limit ------------------------------------------------------------------------------------------
def test_default_limit_is_nabus_2_mib(store: BlockstoreBase) -> None:
    cid, data = block(DEFAULT_MAX_BLOCK_SIZE)
    store.put(cid, data)
    assert store.get(cid) == data
    over = data_of(DEFAULT_MAX_BLOCK_SIZE + 1)
    with pytest.raises(BlockTooLarge):
        store.put_block(CODEC_RAW, over)


def test_configured_limit(opener: Callable[..., BlockstoreBase]) -> None:
    store = opener(max_block_size=1000)
    assert store.max_block_size == 1000
    cid, data = block(1000)
    store.put(cid, data)
    assert store.get(cid) == data
    big_cid, big = block(1001)
    with pytest.raises(BlockTooLarge, match=r"1001 bytes exceeds .* 1000"):
        store.put(big_cid, big)
    with pytest.raises(ValueError):  # BlockTooLarge is also a ValueError
        store.put_block(CODEC_RAW, big)
    with pytest.raises(BlockTooLarge):
        store.put_many([(big_cid, big)])
    assert list(store.list()) == [cid]


def test_invalid_limit(impl: Impl, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        impl.open(tmp_path / "s", max_block_size=0)


# ---- identity CIDs ----------------------------------------------------------------------------------
def test_identity_cids_are_never_stored(store: BlockstoreBase) -> None:
    content = b"an inline key"
    cid = Cid.v1(CODEC_RAW, multihash.compute(multihash.IDENTITY, content))
    assert store.has(cid)
    assert store.get(cid) == content
    assert store.size(cid) == len(content)
    store.put(cid, content)
    assert list(store.list()) == []
    assert store.rm(cid) is False
    assert store.has(cid)
    with pytest.raises(HashMismatch):
        store.put(cid, b"something else")


# ---- listing -----------------------------------------------------------------------------------------
def test_list_streams_many_blocks(opener: Callable[..., BlockstoreBase]) -> None:
    store = opener(sync=False)
    blocks = [block(40 + (i % 50), i) for i in range(2600)]  # more than two internal chunks
    store.put_many(blocks)
    it = store.list()
    assert iter(it) is it  # an iterator, not a materialised list
    seen = list(it)
    assert len(seen) == len(blocks)
    assert set(seen) == {cid for cid, _ in blocks}


def test_list_during_modification(store: BlockstoreBase) -> None:
    stable = [block(60 + (i % 10), i) for i in range(40)]
    doomed = [block(30, 1000 + i) for i in range(40)]
    store.put_many(stable + doomed)
    it = store.list()
    seen = [next(it)]
    for i, (cid, _) in enumerate(doomed):
        store.rm(cid)
        store.put(*block(70, 2000 + i))
    seen.extend(it)
    stable_cids = {cid for cid, _ in stable}
    assert stable_cids <= set(seen)
    assert len(seen) == len(set(seen))  # nothing listed twice


# ---- closing -------------------------------------------------------------------------------------------
def test_closed_store_refuses_everything(store: BlockstoreBase) -> None:
    cid, data = block(100)
    store.put(cid, data)
    store.close()
    assert store.closed
    store.close()  # idempotent
    ident = Cid.v1(CODEC_RAW, multihash.compute(multihash.IDENTITY, b"k"))
    calls: list[Callable[[], object]] = [
        lambda: store.get(cid),
        lambda: store.has(cid),
        lambda: store.size(cid),
        lambda: store.put(cid, data),
        lambda: store.put_block(CODEC_RAW, data),
        lambda: store.put_many([(cid, data)]),
        lambda: store.rm(cid),
        lambda: list(store.list()),
        lambda: store.get(ident),
        lambda: store.put(ident, b"k"),
    ]
    for call in calls:
        with pytest.raises(BlockstoreClosed):
            call()


def test_context_manager_closes(opener: Callable[..., BlockstoreBase]) -> None:
    with opener() as store:
        cid = store.put_block(CODEC_RAW, b"ctx")
        assert store.get(cid) == b"ctx"
    assert store.closed
    with pytest.raises(BlockstoreError):
        store.get(cid)


def test_list_iterator_stops_when_store_closes(opener: Callable[..., BlockstoreBase]) -> None:
    store = opener(sync=False)
    store.put_many([block(40, i) for i in range(3000)])
    it = store.list()
    next(it)
    store.close()  # must not wait for the suspended iterator
    with pytest.raises(BlockstoreClosed):
        for _ in it:
            pass


# ---- threads ---------------------------------------------------------------------------------------------
def test_concurrent_threads(opener: Callable[..., BlockstoreBase]) -> None:
    store = opener(sync=False)
    shared = [block(20 + 10 * i, 500 + i) for i in range(12)]
    errors: list[BaseException] = []
    kept: dict[Cid, bytes] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        try:
            own = [block(30 + 7 * i, t * 100 + i) for i in range(15)]
            for rnd in range(4):
                for cid, data in shared:
                    store.put(cid, data)
                store.put_many(own)
                for cid, data in shared + own:
                    assert store.get(cid) == data
                    assert store.size(cid) == len(data)
                for cid, _ in own[rnd::4]:
                    store.rm(cid)
                    store.has(cid)
                sum(1 for _ in store.list())
            for cid, data in own:
                if store.has(cid):
                    with lock:
                        kept[cid] = data
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert set(store.list()) == {cid for cid, _ in shared} | set(kept)
    for cid, data in shared:
        assert store.get(cid) == data


def test_close_waits_for_operations_in_flight(opener: Callable[..., BlockstoreBase]) -> None:
    store = opener(sync=False)
    blocks = [block(50 + i, 900 + i) for i in range(30)]
    store.put_many(blocks)
    outcomes: list[str] = []
    started = threading.Barrier(5)

    def worker(t: int) -> None:
        started.wait()
        n = 0
        try:
            while True:
                for cid, data in blocks:
                    assert store.get(cid) == data
                    n += 1
                    store.put(*block(80, 10_000_000 * t + n))
                    store.has(cid)
        except BlockstoreClosed:
            outcomes.append("closed")
        except BaseException as e:
            outcomes.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    started.wait()
    time.sleep(0.05)
    store.close()
    for th in threads:
        th.join(timeout=30)
    assert outcomes == ["closed"] * 4


def test_close_waits_for_a_slow_operation(store: BlockstoreBase, monkeypatch: pytest.MonkeyPatch) -> None:
    cid, data = block(100)
    store.put(cid, data)
    inside, release = threading.Event(), threading.Event()
    real_lookup = store._lookup

    def slow_lookup(c: Cid) -> bytes | None:
        inside.set()
        release.wait(10)
        return real_lookup(c)  # the backend must still be open here

    monkeypatch.setattr(store, "_lookup", slow_lookup)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(store.get(cid)))
    reader.start()
    assert inside.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    time.sleep(0.1)
    assert closer.is_alive(), "close() returned while an operation was in flight"
    with pytest.raises(BlockstoreClosed):  # but new operations are already refused
        store.has(cid)
    release.set()
    reader.join(10)
    closer.join(10)
    assert got == [data]
    assert not closer.is_alive()


# ---- persistence (the stores with a path) ------------------------------------------------------------------
PERSISTENT = [i for i in IMPLS if i.persistent]


@pytest.mark.parametrize("p_impl", PERSISTENT, ids=lambda i: i.kind)
def test_reopen_keeps_blocks(p_impl: Impl, tmp_path: Path) -> None:
    blocks = [block(n, 3) for n in SIZES]
    with p_impl.open(tmp_path / "s") as store:
        store.put_many(blocks[:3])
        for cid, data in blocks[3:]:
            store.put(cid, data)
        store.rm(blocks[0][0])
    with p_impl.open(tmp_path / "s") as store:
        assert sorted(store.list()) == sorted(cid for cid, _ in blocks[1:])
        for cid, data in blocks[1:]:
            assert store.get(cid) == data
        assert not store.has(blocks[0][0])


@pytest.mark.parametrize("p_impl", PERSISTENT, ids=lambda i: i.kind)
def test_second_open_is_refused(p_impl: Impl, tmp_path: Path) -> None:
    with p_impl.open(tmp_path / "s"), pytest.raises(BlockstoreError):
        p_impl.open(tmp_path / "s")
    p_impl.open(tmp_path / "s").close()


@pytest.mark.parametrize("p_impl", PERSISTENT, ids=lambda i: i.kind)
def test_create_false_requires_an_existing_store(p_impl: Impl, tmp_path: Path) -> None:
    with pytest.raises(BlockstoreError):
        p_impl.open(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent").exists()
    p_impl.open(tmp_path / "present").close()
    p_impl.open(tmp_path / "present", create=False).close()


# ---- model-based test --------------------------------------------------------------------------------------
POOL = [block(n, s, codec) for n, s, codec in [
    (0, 0, CODEC_RAW), (1, 1, CODEC_RAW), (40, 2, CODEC_DAG_CBOR), (63, 3, CODEC_RAW),
    (64, 4, CODEC_RAW), (64, 4, CODEC_DAG_CBOR), (65, 5, CODEC_RAW), (200, 6, CODEC_DAG_CBOR),
    (1500, 7, CODEC_RAW), (5000, 8, CODEC_RAW),
]]  # fmt: skip
pool_blocks = st.sampled_from(POOL)


class StoreVsDict(RuleBasedStateMachine):
    """Random operation sequences against a store and a dict; they must always agree."""

    impl: Impl = IMPLS[0]

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="bs-model-"))
        self.store = self.impl.open(self.dir / "s", sync=False, max_block_size=4096)
        self.model: dict[Cid, bytes] = {}
        self.reopens = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(b=pool_blocks)
    def put(self, b: tuple[Cid, bytes]) -> None:
        cid, data = b
        if len(data) > self.store.max_block_size:
            with pytest.raises(BlockTooLarge):
                self.store.put(cid, data)
            return
        self.store.put(cid, data)
        self.model[cid] = data

    @rule(bs=st.lists(pool_blocks, max_size=5))
    def put_many(self, bs: list[tuple[Cid, bytes]]) -> None:
        if any(len(d) > self.store.max_block_size for _, d in bs):
            with pytest.raises(BlockTooLarge):
                self.store.put_many(bs)
            return
        self.store.put_many(bs)
        self.model.update(bs)

    @rule(b=pool_blocks, flip=st.integers(0, 255))
    def put_corrupted(self, b: tuple[Cid, bytes], flip: int) -> None:
        cid, data = b
        bad = data + bytes([flip])
        with pytest.raises((HashMismatch, BlockTooLarge)):
            self.store.put(cid, bad)

    @rule(b=pool_blocks)
    def rm(self, b: tuple[Cid, bytes]) -> None:
        assert self.store.rm(b[0]) == (self.model.pop(b[0], None) is not None)

    @rule(b=pool_blocks)
    def read(self, b: tuple[Cid, bytes]) -> None:
        cid = b[0]
        expected = self.model.get(cid)
        assert self.store.has(cid) == (expected is not None)
        assert self.store.size(cid) == (None if expected is None else len(expected))
        if expected is None:
            with pytest.raises(BlockNotFound):
                self.store.get(cid)
        else:
            assert self.store.get(cid) == expected

    @precondition(lambda self: self.impl.persistent and self.reopens < 2)  # opening RocksDB is slow
    @rule()
    def reopen(self) -> None:
        self.reopens += 1
        self.store.close()
        self.store = self.impl.open(self.dir / "s", sync=False, max_block_size=4096)

    @invariant()
    def same_listing(self) -> None:
        listed = list(self.store.list())
        assert len(listed) == len(set(listed))
        assert set(listed) == set(self.model)


def test_model(impl: Impl) -> None:
    machine = type(f"StoreVsDict_{impl.kind}", (StoreVsDict,), {"impl": impl})
    run_state_machine_as_test(
        machine,  # type: ignore[arg-type]
        settings=settings(max_examples=30, stateful_step_count=30, deadline=None, database=None),
    )
