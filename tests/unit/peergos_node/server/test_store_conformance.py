"""One conformance suite for every server store, run against the in-memory twin, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peergos_node.server.stores.accounts import (
    FactorRow,
    LoginRow,
    MemoryAccountStore,
    PendingLogin,
    SqlAccountStore,
)
from peergos_node.server.stores.metadata import (
    GET_MANY_BATCH,
    BlockMetadata,
    CachingBlockMetadataStore,
    MemoryBlockMetadataStore,
    SqlBlockMetadataStore,
)
from peergos_node.server.stores.pointers import MemoryPointerStore, PointerCas, SqlPointerStore
from peergos_node.server.stores.tokens import MemoryTokenStore, SqlTokenStore
from peergos_node.server.stores.transactions import (
    MemoryTransactionStore,
    SqlTransactionStore,
    TransactionError,
)
from peergos_node.server.stores.usage import MemoryUsageStore, SqlUsageStore
from tests.helpers.db import KINDS, open_database


def _make(kind: str, tmp_path: Path, mem: type, sql: type) -> Iterator[Any]:
    with open_database(kind, tmp_path) as db:
        yield mem() if db is None else sql(db)


@pytest.fixture(params=KINDS)
def pointers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _make(request.param, tmp_path, MemoryPointerStore, SqlPointerStore)


@pytest.fixture(params=KINDS)
def transactions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _make(request.param, tmp_path, MemoryTransactionStore, SqlTransactionStore)


@pytest.fixture(params=[*KINDS, *(f"cached-{k}" for k in KINDS)])
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every BlockMetadataStore, and the caching wrapper in front of each (with room for a few entries
    only, so that evictions happen too)."""
    kind: str = request.param
    for store in _make(
        kind.removeprefix("cached-"), tmp_path, MemoryBlockMetadataStore, SqlBlockMetadataStore
    ):
        yield CachingBlockMetadataStore(store, max_bytes=4000) if kind.startswith("cached-") else store


@pytest.fixture(params=KINDS)
def usage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _make(request.param, tmp_path, MemoryUsageStore, SqlUsageStore)


@pytest.fixture(params=KINDS)
def tokens(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _make(request.param, tmp_path, MemoryTokenStore, SqlTokenStore)


OWNER, W1, W2 = b"owner", b"writer-1", b"writer-2"


def test_pointer_cas(pointers: Any) -> None:
    assert pointers.get(W1) is None
    assert pointers.compare_and_set(PointerCas(OWNER, W1, None, b"v1"))
    assert not pointers.compare_and_set(PointerCas(OWNER, W1, None, b"v1b")), "create twice"
    assert not pointers.compare_and_set(PointerCas(OWNER, W1, b"wrong", b"v2")), "stale expected value"
    assert pointers.get(W1) == b"v1"
    assert pointers.compare_and_set(PointerCas(OWNER, W1, b"v1", b"v2"))
    assert pointers.get(W1) == b"v2" and pointers.owner_of(W1) == OWNER
    assert pointers.writers() == [W1] and pointers.writers(OWNER) == [W1] and pointers.writers(b"x") == []
    assert pointers.all() == [(OWNER, W1, b"v2")]


def test_pointer_multi_cas_is_all_or_nothing(pointers: Any) -> None:
    assert pointers.compare_and_set(PointerCas(OWNER, W1, None, b"a1"))
    bad = [PointerCas(OWNER, W1, b"a1", b"a2"), PointerCas(OWNER, W2, b"not-there", b"b1")]
    assert not pointers.compare_and_set_many(bad)
    assert pointers.get(W1) == b"a1" and pointers.get(W2) is None
    good = [PointerCas(OWNER, W1, b"a1", b"a2"), PointerCas(OWNER, W2, None, b"b1")]
    assert pointers.compare_and_set_many(good)
    assert pointers.get(W1) == b"a2" and pointers.get(W2) == b"b1"
    assert not pointers.compare_and_set_many(
        [PointerCas(OWNER, W1, b"a2", b"x"), PointerCas(OWNER, W1, b"a2", b"y")]
    )


def test_pointer_cas_races_have_one_winner(pointers: Any) -> None:
    assert pointers.compare_and_set(PointerCas(OWNER, W1, None, b"base"))
    wins: list[bytes] = []

    def attempt(i: int) -> None:
        new = f"v{i}".encode()
        if pointers.compare_and_set(PointerCas(OWNER, W1, b"base", new)):
            wins.append(new)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1 and pointers.get(W1) == wins[0]


def test_transactions(transactions: Any) -> None:
    tid = transactions.start(OWNER, 1000)
    assert transactions.is_open(tid, OWNER) and not transactions.is_open(tid, b"other")
    transactions.add_blocks(tid, OWNER, [b"c1", b"c2", b"c1"])
    with pytest.raises(TransactionError):
        transactions.add_blocks(tid, b"other", [b"c3"])
    with pytest.raises(TransactionError):
        transactions.add_blocks("nope", OWNER, [b"c3"])
    tid2 = transactions.start(OWNER, 5000)
    transactions.add_blocks(tid2, OWNER, [b"c3"])
    assert transactions.open_block_cids() == {b"c1", b"c2", b"c3"}
    assert not transactions.close(tid, b"other")
    assert transactions.close(tid, OWNER) and not transactions.close(tid, OWNER)
    assert transactions.open_block_cids() == {b"c3"}
    assert transactions.expire(6000) == 1
    assert transactions.open_block_cids() == set() and not transactions.is_open(tid2, OWNER)


def test_block_metadata(metadata: Any) -> None:
    meta = BlockMetadata(1234, (b"l1", b"l2"), (b"bat",))
    metadata.put(b"cid1", meta)
    metadata.put(b"cid1", meta)
    metadata.put(b"cid2", BlockMetadata(5, (), ()))
    assert metadata.get(b"cid1") == meta
    assert metadata.get(b"missing") is None
    assert sorted(metadata.cids()) == [b"cid1", b"cid2"]
    metadata.remove(b"cid1")
    metadata.remove(b"cid1")
    assert metadata.get(b"cid1") is None and list(metadata.cids()) == [b"cid2"]
    metadata.put(b"cid1", meta)
    assert metadata.get(b"cid1") == meta


def test_block_metadata_get_many(metadata: Any) -> None:
    assert metadata.get_many([]) == {}
    stored = {
        f"cid{i:05d}".encode(): BlockMetadata(
            i, tuple(f"l{i}-{j}".encode() for j in range(i % 3)), (bytes([i % 256]),)
        )
        for i in range(GET_MANY_BATCH * 2 + 7)  # several SQL batches
    }
    for cid, meta in stored.items():
        metadata.put(cid, meta)
    keys = list(stored)
    assert metadata.get_many([*keys[:3], b"missing", keys[1]]) == {k: stored[k] for k in keys[:3]}
    assert metadata.get(keys[5]) == stored[keys[5]]  # one maybe cached, the others not
    assert metadata.get_many([*keys, b"absent"]) == stored
    metadata.remove(keys[0])
    assert metadata.get_many(keys[:2]) == {keys[1]: stored[keys[1]]}


def test_usage(usage: Any) -> None:
    usage.add_user("alice", b"id-a", 1000)
    usage.add_user("alice", b"id-a", 10)
    assert usage.quota("alice") == 1000, "re-adding a user never lowers the quota"
    assert usage.quota("bob") == 0 and usage.user_of_identity(b"id-a") == "alice"
    assert usage.identity_of("alice") == b"id-a" and usage.identity_of("bob") is None
    usage.set_quota("alice", 2000)
    assert usage.quota("alice") == 2000
    with pytest.raises(KeyError):
        usage.set_quota("bob", 5)
    usage.add_writer("alice", b"id-a")
    usage.add_writer("alice", W1)
    usage.add_writer("alice", W1)
    assert usage.writers_of("alice") == sorted([b"id-a", W1])
    usage.add_pending(W1, 100)
    usage.add_pending(W1, 50)
    usage.add_pending(b"unknown", 99)
    assert usage.total_usage("alice") == 150
    usage.set_usage(W1, b"root", 400)
    rec = usage.writer(W1)
    assert rec is not None and (rec.username, rec.root, rec.usage, rec.pending) == ("alice", b"root", 400, 0)
    usage.set_usage(b"id-a", None, 10)
    assert usage.total_usage("alice") == 410
    usage.remove_writer(W1)
    assert usage.total_usage("alice") == 10 and usage.writer(W1) is None
    assert usage.users() == ["alice"]
    assert not usage.is_errored("alice")
    usage.set_errored("alice", True)
    assert usage.is_errored("alice") and not usage.is_errored("bob")
    assert usage.account("alice") == (2000, 10, True)
    usage.set_errored("alice", False)
    assert not usage.is_errored("alice")
    assert usage.account("alice") == (2000, 10, False) and usage.account("nobody") == (0, 0, False)


def test_tokens(tokens: Any) -> None:
    made = tokens.create(1000, count=3)
    assert len(set(made)) == 3 and all(len(t) == 64 for t in made)
    assert [t.token for t in tokens.list()] == sorted(made)
    assert tokens.is_valid(made[0]) and not tokens.is_valid("nope")
    assert tokens.consume(made[0], "alice")
    assert not tokens.consume(made[0], "bob") and not tokens.is_valid(made[0])
    assert not tokens.consume("nope", "bob")
    used = {t.token: t.used_by for t in tokens.list()}
    assert used[made[0]] == "alice" and used[made[1]] is None


@pytest.fixture(params=KINDS)
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _make(request.param, tmp_path, MemoryAccountStore, SqlAccountStore)


def test_accounts_login_and_pending(accounts: Any) -> None:
    assert accounts.get_login("u") is None and accounts.get_pending("u") is None
    accounts.set_login("u", LoginRow(b"e1", b"r1"))
    assert accounts.get_login("u") == LoginRow(b"e1", b"r1")
    accounts.set_pending("u", PendingLogin(b"e2", b"r2", b"w", b"wd"))
    assert accounts.get_pending("u") == PendingLogin(b"e2", b"r2", b"w", b"wd")
    assert accounts.get_login("u") == LoginRow(b"e1", b"r1"), "staging does not change the live row"
    assert accounts.promote_pending("u") and not accounts.promote_pending("u")
    assert accounts.get_login("u") == LoginRow(b"e2", b"r2") and accounts.get_pending("u") is None
    accounts.set_pending("u", PendingLogin(b"e3", b"r3", b"w", b"wd"))
    accounts.set_login("u", LoginRow(b"e4", b"r4"))
    assert accounts.get_pending("u") is None, "a direct update drops a stale staged change"


def test_accounts_factors(accounts: Any) -> None:
    f1 = FactorRow(b"c1", "TOTP", 1, 20000, False, b"k1")
    f2 = FactorRow(b"c2", "10", 3, 20001, True, b"h1")
    accounts.add_factor("u", f1)
    accounts.add_factor("u", f2)
    with pytest.raises(ValueError):
        accounts.add_factor("u", f1)
    assert accounts.factors("u") == [f1, f2] and accounts.factors("v") == []
    assert accounts.set_enabled("u", b"c1", True) and not accounts.set_enabled("u", b"zz", True)
    assert accounts.factors("u")[0].enabled
    assert accounts.replace_secret("u", b"c2", b"h1", b"h2", "9")
    assert not accounts.replace_secret("u", b"c2", b"h1", b"h3", "8"), "CAS on the old secret"
    assert accounts.factors("u")[1] == FactorRow(b"c2", "9", 3, 20001, True, b"h2")
    assert accounts.delete_factor("u", b"c1") and not accounts.delete_factor("u", b"c1")
    assert [f.credential_id for f in accounts.factors("u")] == [b"c2"]
