"""CachingBlockMetadataStore: hits, the memory bound (LRU), invalidation on remove, fills that race a remove,
and many threads at once over SQLite. (Its BlockMetadataStore behaviour is in test_store_conformance.)"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from peergos_node.server.db import Database
from peergos_node.server.stores.metadata import (
    BlockMetadata,
    CachingBlockMetadataStore,
    MemoryBlockMetadataStore,
    SqlBlockMetadataStore,
    _entry_cost,
)


def meta(i: int) -> BlockMetadata:
    return BlockMetadata(i, (), (bytes([i % 256]) * 34,))


def cid(i: int) -> bytes:
    return b"\x01\x71\x12\x20" + i.to_bytes(32, "big")


def test_hit_needs_no_store_read() -> None:
    inner = MemoryBlockMetadataStore()
    cache = CachingBlockMetadataStore(inner)
    cache.put(cid(1), meta(1))  # put fills
    inner.put(cid(2), meta(2))  # written behind the cache's back: a miss first
    inner.remove(cid(1))  # so that only the cache can still answer for 1
    assert cache.get(cid(1)) == meta(1) and (cache.hits, cache.misses) == (1, 0)
    assert cache.get(cid(2)) == meta(2) and (cache.hits, cache.misses) == (1, 1)
    inner.remove(cid(2))
    assert cache.get(cid(2)) == meta(2), "filled by the miss"
    assert cache.get(cid(3)) is None and cache.get(cid(3)) is None
    assert (cache.hits, cache.misses) == (2, 3), "absent metadata is never cached"
    inner.put(cid(3), meta(3))
    assert cache.get(cid(3)) == meta(3)


def test_get_many_reads_only_the_misses() -> None:
    inner = MemoryBlockMetadataStore()
    cache = CachingBlockMetadataStore(inner)
    for i in range(4):
        inner.put(cid(i), meta(i))
    cache.get(cid(0))
    cache.get(cid(1))
    inner.remove(cid(0))
    assert cache.get_many([cid(0), cid(1), cid(2), cid(2), cid(9)]) == {
        cid(0): meta(0),
        cid(1): meta(1),
        cid(2): meta(2),
    }
    assert len(cache) == 3
    inner.remove(cid(2))
    assert cache.get_many([cid(2)]) == {cid(2): meta(2)}, "filled by get_many"


def test_memory_bound_evicts_least_recently_used() -> None:
    inner = MemoryBlockMetadataStore()
    cost = _entry_cost(cid(0), meta(0))
    cache = CachingBlockMetadataStore(inner, max_bytes=3 * cost)
    for i in range(3):
        cache.put(cid(i), meta(i))
    assert cache.get(cid(0)) == meta(0)  # 0 is now the most recently used; 1 the least
    for i in range(3, 10):
        inner.put(cid(i), meta(i))
    cache.get_many([cid(3)])
    assert len(cache) == 3 and cache.cached_bytes <= 3 * cost
    for i in range(10):
        inner.remove(cid(i))  # what is left can only come from the cache
    assert [i for i in range(10) if cache.get(cid(i)) is not None] == [0, 2, 3]
    big = BlockMetadata(1, tuple(cid(i) for i in range(100)), ())
    cache.put(cid(50), big)
    assert inner.get(cid(50)) == big and len(cache) == 3, "an entry larger than the bound is not kept"


def test_remove_invalidates_and_a_later_put_is_seen(tmp_path: Path) -> None:
    with Database.sqlite(tmp_path / "m.sqlite") as db:
        cache = CachingBlockMetadataStore(SqlBlockMetadataStore(db))
        cache.put(cid(1), meta(1))
        assert cache.get(cid(1)) == meta(1)
        cache.remove(cid(1))
        assert cache.get(cid(1)) is None and cache.get_many([cid(1)]) == {} and len(cache) == 0
        assert cache.inner.get(cid(1)) is None
        cache.put(cid(1), meta(1))
        assert cache.get(cid(1)) == meta(1) and cache.inner.get(cid(1)) == meta(1)


class _RemovedWhileRead(MemoryBlockMetadataStore):
    """A store whose reads are overtaken by a remove through the cache (between reading and returning)."""

    cache: CachingBlockMetadataStore

    def get(self, cid: bytes) -> BlockMetadata | None:
        found = super().get(cid)
        self.cache.remove(cid)
        return found

    def get_many(self, cids: Sequence[bytes]) -> dict[bytes, BlockMetadata]:
        found = super().get_many(cids)
        for c in found:
            self.cache.remove(c)
        return found


def test_a_read_overtaken_by_a_remove_is_not_cached() -> None:
    inner = _RemovedWhileRead()
    cache = CachingBlockMetadataStore(inner)
    inner.cache = cache
    for i in range(3):
        MemoryBlockMetadataStore.put(inner, cid(i), meta(i))
    assert cache.get(cid(0)) == meta(0)  # read before the remove
    assert cache.get_many([cid(1), cid(2)]) == {cid(1): meta(1), cid(2): meta(2)}
    assert len(cache) == 0
    assert cache.get(cid(0)) is None and cache.get_many([cid(1), cid(2)]) == {}


def test_many_threads_agree_with_the_store(tmp_path: Path) -> None:
    with Database.sqlite(tmp_path / "m.sqlite") as db:
        cache = CachingBlockMetadataStore(
            SqlBlockMetadataStore(db), max_bytes=40 * _entry_cost(cid(0), meta(0))
        )
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for round_ in range(30):
                    base = (t * 7 + round_) % 60
                    keys = [cid(base + k) for k in range(20)]
                    found = cache.get_many(keys)
                    for k, m in found.items():
                        assert m == meta(int.from_bytes(k[4:], "big"))
                    i = base + round_ % 20
                    if (t + round_) % 3 == 0:
                        cache.remove(cid(i))
                    else:
                        cache.put(cid(i), meta(i))
                    got = cache.get(cid(i))
                    assert got is None or got == meta(i)
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not errors and not any(th.is_alive() for th in threads)
        assert cache.cached_bytes <= cache.max_bytes
        keys = [cid(i) for i in range(100)]
        assert cache.get_many(keys) == cache.inner.get_many(keys)
        assert all(cache.get(k) == cache.inner.get(k) for k in keys)
