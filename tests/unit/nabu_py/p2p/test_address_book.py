"""Address book conformance: every implementation of nabu_py.p2p.address_book.AddressBook passes these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from multiaddr import Multiaddr

from nabu_py.p2p.address_book import MAX_ADDRS_PER_PEER, AddressBook, MemoryAddressBook, SqliteAddressBook
from nabu_py.p2p.identity import HostIdentity
from nabu_py.p2p.peer_id import PeerId

Factory = Callable[[int], AddressBook]


def _peer(i: int) -> PeerId:
    return HostIdentity.generate(bytes([i]) * 32).peer_id


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    books: list[AddressBook] = []

    def factory(capacity: int) -> AddressBook:
        book: AddressBook
        if request.param == "memory":
            book = MemoryAddressBook(capacity)
        else:
            book = SqliteAddressBook(tmp_path / "book.sqlite", capacity)
        books.append(book)
        return book

    yield factory
    for book in books:
        book.close()


def test_add_get_strips_own_peer_suffix(make: Factory) -> None:
    book = make(10)
    p = _peer(1)
    book.add(
        p, [f"/ip4/1.2.3.4/tcp/4001/p2p/{p}", Multiaddr("/ip6/::1/tcp/4001"), f"/ip4/5.6.7.8/tcp/1/ipfs/{p}"]
    )
    assert [str(a) for a in book.get(p)] == [
        "/ip4/1.2.3.4/tcp/4001",
        "/ip6/::1/tcp/4001",
        "/ip4/5.6.7.8/tcp/1",
    ]
    assert book.get(_peer(2)) == []
    assert len(book) == 1


def test_invalid_and_foreign_addresses_are_skipped(make: Factory) -> None:
    book = make(10)
    p, q = _peer(1), _peer(2)
    book.add(
        p, ["not a multiaddr", f"/ip4/1.2.3.4/tcp/1/p2p/{q}", "/ip4/1.2.3.4/tcp/" + "1" * 2000, f"/p2p/{p}"]
    )
    assert book.get(p) == [] and len(book) == 0
    book.add(p, ["garbage", "/ip4/9.9.9.9/tcp/9"])
    assert [str(a) for a in book.get(p)] == ["/ip4/9.9.9.9/tcp/9"]


def test_merge_puts_new_addresses_first_and_bounds_them(make: Factory) -> None:
    book = make(10)
    p = _peer(1)
    book.add(p, ["/ip4/1.1.1.1/tcp/1", "/ip4/2.2.2.2/tcp/2"])
    book.add(p, ["/ip4/3.3.3.3/tcp/3", "/ip4/1.1.1.1/tcp/1"])
    assert [str(a) for a in book.get(p)] == ["/ip4/3.3.3.3/tcp/3", "/ip4/1.1.1.1/tcp/1", "/ip4/2.2.2.2/tcp/2"]
    book.add(p, [f"/ip4/10.0.0.{i}/tcp/1" for i in range(40)])
    assert len(book.get(p)) == MAX_ADDRS_PER_PEER


def test_least_recently_used_peers_are_evicted(make: Factory) -> None:
    book = make(3)
    peers = [_peer(i) for i in range(1, 5)]
    for i, p in enumerate(peers[:3]):
        book.add(p, [f"/ip4/1.1.1.{i}/tcp/1"])
    assert book.get(peers[0])  # touch the oldest: peers[1] is now least recently used
    book.add(peers[3], ["/ip4/4.4.4.4/tcp/4"])
    assert len(book) == 3
    assert book.get(peers[1]) == []
    assert set(book.peers()) == {peers[0], peers[2], peers[3]}
    assert book.peers()[0] == peers[3]


def test_remove(make: Factory) -> None:
    book = make(3)
    p = _peer(1)
    book.add(p, ["/ip4/1.1.1.1/tcp/1"])
    book.remove(p)
    assert book.get(p) == [] and len(book) == 0
    book.remove(p)  # idempotent


def test_sqlite_book_persists_and_keeps_lru_order(tmp_path: Path) -> None:
    path = tmp_path / "persist.sqlite"
    book = SqliteAddressBook(path, 2)
    a, b, c = _peer(1), _peer(2), _peer(3)
    book.add(a, ["/ip4/1.1.1.1/tcp/1"])
    book.add(b, ["/ip4/2.2.2.2/tcp/2"])
    book.get(a)
    book.close()
    again = SqliteAddressBook(path, 2)
    assert [str(x) for x in again.get(b)] == ["/ip4/2.2.2.2/tcp/2"]  # b is now most recent
    again.add(c, ["/ip4/3.3.3.3/tcp/3"])  # evicts a
    assert again.get(a) == []
    again.close()
    smaller = SqliteAddressBook(path, 1)  # a smaller capacity trims on open
    assert len(smaller) == 1
    smaller.close()


def test_capacity_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        MemoryAddressBook(0)
    with pytest.raises(ValueError):
        SqliteAddressBook(tmp_path / "x.sqlite", 0)
