"""One conformance suite for every RecordStore and ProviderStore implementation (memory, SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nabu_py.protocols.kademlia.messages import Peer
from nabu_py.protocols.kademlia.records import (
    MemoryProviderStore,
    MemoryRecordStore,
    ProviderStore,
    RecordStore,
    StoredRecord,
)
from nabu_py.protocols.kademlia.sqlite_stores import SqliteProviderStore, SqliteRecordStore

RecordFactory = Callable[[int], RecordStore]
ProviderFactory = Callable[[int, int], ProviderStore]


@pytest.fixture(params=["memory", "sqlite"])
def record_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordFactory]:
    opened: list[SqliteRecordStore] = []

    def make(max_records: int) -> RecordStore:
        if request.param == "memory":
            return MemoryRecordStore(max_records)
        s = SqliteRecordStore(tmp_path / f"records{len(opened)}.db", max_records)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture(params=["memory", "sqlite"])
def provider_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderFactory]:
    opened: list[SqliteProviderStore] = []

    def make(max_keys: int, per_key: int) -> ProviderStore:
        if request.param == "memory":
            return MemoryProviderStore(max_keys, per_key)
        s = SqliteProviderStore(tmp_path / f"providers{len(opened)}.db", max_keys, per_key)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def rec(key: bytes, value: bytes = b"v", at: float = 0.0, ttl: float = 100.0) -> StoredRecord:
    return StoredRecord(key, value, at, at + ttl)


def test_record_put_get_replace_remove(record_store: RecordFactory) -> None:
    s = record_store(10)
    assert s.get(b"/a/1", 0.0) is None
    s.put(rec(b"/a/1", b"one"))
    assert s.get(b"/a/1", 1.0) == rec(b"/a/1", b"one")
    s.put(rec(b"/a/1", b"two", at=5.0))
    assert s.get(b"/a/1", 6.0) == rec(b"/a/1", b"two", at=5.0)
    assert len(s) == 1
    s.remove(b"/a/1")
    s.remove(b"/a/absent")
    assert s.get(b"/a/1", 6.0) is None and len(s) == 0


def test_expired_records_disappear(record_store: RecordFactory) -> None:
    s = record_store(10)
    s.put(rec(b"/a/short", ttl=10.0))
    s.put(rec(b"/a/long", ttl=1000.0))
    assert s.get(b"/a/short", 9.9) is not None
    assert s.get(b"/a/short", 10.0) is None  # invisible at expiry even before a purge
    assert s.purge_expired(50.0) == 1
    assert len(s) == 1 and s.get(b"/a/long", 50.0) is not None


def test_record_store_is_bounded_with_lru_eviction(record_store: RecordFactory) -> None:
    s = record_store(3)
    for i in range(3):
        s.put(rec(b"/a/%d" % i))
    assert s.get(b"/a/0", 1.0) is not None  # 0 becomes most recently used
    s.put(rec(b"/a/3"))
    assert len(s) == 3
    assert s.get(b"/a/1", 1.0) is None
    assert all(s.get(b"/a/%d" % i, 1.0) is not None for i in (0, 2, 3))
    for i in range(100):
        s.put(rec(b"/b/%d" % i))
    assert len(s) == 3


def test_record_store_persists(tmp_path: Path) -> None:
    a = SqliteRecordStore(tmp_path / "r.db", 5)
    a.put(rec(b"/a/x", b"kept"))
    a.close()
    b = SqliteRecordStore(tmp_path / "r.db", 5)
    assert b.get(b"/a/x", 1.0) == rec(b"/a/x", b"kept")
    b.close()


def P(n: int, addrs: tuple[bytes, ...] = ()) -> Peer:
    return Peer(b"peer%d" % n, addrs)


def test_providers_add_get_refresh(provider_store: ProviderFactory) -> None:
    s = provider_store(10, 10)
    assert s.get(b"k", 0.0, 20) == []
    s.add(b"k", P(1, (b"a",)), 100.0)
    s.add(b"k", P(2), 100.0)
    s.add(b"k", P(1, (b"b",)), 200.0)  # refresh: no duplicate, newest addresses, moves to front
    assert s.get(b"k", 0.0, 20) == [P(1, (b"b",)), P(2)]
    assert s.get(b"k", 0.0, 1) == [P(1, (b"b",))]
    assert len(s) == 2


def test_expired_providers_disappear(provider_store: ProviderFactory) -> None:
    s = provider_store(10, 10)
    s.add(b"k", P(1), 10.0)
    s.add(b"k", P(2), 100.0)
    s.add(b"j", P(3), 10.0)
    assert s.get(b"k", 10.0, 20) == [P(2)]
    assert s.get(b"j", 10.0, 20) == []
    assert s.purge_expired(10.0) == 2
    assert len(s) == 1
    assert s.get(b"k", 50.0, 20) == [P(2)]


def test_providers_per_key_bounded_dropping_soonest_expiry(provider_store: ProviderFactory) -> None:
    s = provider_store(10, 3)
    s.add(b"k", P(1), 300.0)
    s.add(b"k", P(2), 100.0)
    s.add(b"k", P(3), 200.0)
    s.add(b"k", P(4), 400.0)
    assert {p.id for p in s.get(b"k", 0.0, 20)} == {b"peer1", b"peer3", b"peer4"}
    assert len(s) == 3


def test_provider_keys_bounded_with_lru_eviction(provider_store: ProviderFactory) -> None:
    s = provider_store(2, 5)
    s.add(b"k1", P(1), 100.0)
    s.add(b"k2", P(2), 100.0)
    assert s.get(b"k1", 0.0, 5) == [P(1)]  # k1 most recently used
    s.add(b"k3", P(3), 100.0)
    assert s.get(b"k2", 0.0, 5) == []
    assert s.get(b"k1", 0.0, 5) == [P(1)] and s.get(b"k3", 0.0, 5) == [P(3)]
    assert len(s) == 2
    for i in range(50):
        s.add(b"flood%d" % i, P(i), 100.0)
    assert len(s) <= 2 * 5


def test_constructors_reject_nonsense(tmp_path: Path) -> None:
    for bad in (
        lambda: MemoryRecordStore(0),
        lambda: MemoryProviderStore(0, 1),
        lambda: SqliteRecordStore(tmp_path / "x.db", 0),
        lambda: SqliteProviderStore(tmp_path / "y.db", 1, 0),
    ):
        with pytest.raises(ValueError):
            bad()
