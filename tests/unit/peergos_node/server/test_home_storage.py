"""HomeStorage: every write verified, nothing stored on refusal, BAT-guarded reads, GC, quota."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nabu_py.blockstore import open_blockstore
from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.champ import Champ, identity_hasher
from peergos_node.crypto.bat import Bat, BatId, BatWithId, create_raw_block_prefix
from peergos_node.crypto.block_auth import generate_auth
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.errors import AuthError, BadSignature
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.mutable.signed_pointer import sign_pointer
from peergos_node.mutable.writer_data import WriterData
from peergos_node.server.db import Database
from peergos_node.server.home_storage import (
    MAX_BLOCK_SIZE,
    ChunkMirrorCap,
    HomeStorage,
    PointerCasError,
    QuotaExceeded,
    StorageError,
)
from peergos_node.server.stores.metadata import MemoryBlockMetadataStore, SqlBlockMetadataStore
from peergos_node.server.stores.pointers import MemoryPointerStore, SqlPointerStore
from peergos_node.server.stores.transactions import MemoryTransactionStore, SqlTransactionStore
from peergos_node.server.stores.usage import MemoryUsageStore, SqlUsageStore
from tests.helpers.peergos_users import PeergosUser, sign_block

PEER = Cid.v1(0x72, b"\x00\x24\x08\x01\x12\x20" + bytes(32))


class Clock:
    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HomeStorage]:
    clock = Clock()
    if request.param == "memory":
        s = HomeStorage(
            PEER,
            open_blockstore("memory"),
            MemoryBlockMetadataStore(),
            MemoryTransactionStore(),
            MemoryPointerStore(),
            MemoryUsageStore(),
            clock,
        )
        yield s
        return
    db = Database.sqlite(tmp_path / "server.sqlite")
    blocks = open_blockstore("hybrid", tmp_path / "blocks", max_block_size=MAX_BLOCK_SIZE)
    s = HomeStorage(
        PEER,
        blocks,
        SqlBlockMetadataStore(db),
        SqlTransactionStore(db),
        SqlPointerStore(db),
        SqlUsageStore(db),
        clock,
        atomic=db.transaction,
    )
    yield s
    blocks.close()
    db.close()


def stored_state(s: HomeStorage) -> tuple[Any, ...]:
    return (sorted(bytes(c) for c in s.blocks.list()), sorted(s.metadata.cids()), s.pointers.all())


@pytest.fixture
def alice(storage: HomeStorage) -> PeergosUser:
    user = PeergosUser.create("alice")
    user.signup(storage)
    return user


def test_signup_flow_stores_pointers_and_counts_usage(storage: HomeStorage, alice: PeergosUser) -> None:
    assert storage.get_pointer(alice.identity.hash) is not None
    assert storage.get_pointer(alice.writer.hash) is not None
    assert storage.usage.writer(alice.writer.hash.to_bytes()) is not None, "owned writer registered on commit"
    before = storage.usage_of(alice.owner)
    assert before > 0
    alice.add_file(storage, bytes(32), b"x" * 5000)
    assert storage.usage_of(alice.owner) > before + 5000


def test_forged_block_signature_stores_nothing(storage: HomeStorage, alice: PeergosUser) -> None:
    before = stored_state(storage)
    tid = storage.start_transaction(alice.owner)
    block = dag_cbor.encode({"x": 1})
    with pytest.raises(BadSignature):
        storage.put_blocks(
            alice.owner, alice.writer.hash, [sign_block(alice.identity.pair, block)], [block], tid, False
        )
    with pytest.raises(BadSignature):
        storage.put_blocks(alice.owner, alice.writer.hash, [b"\x00" * 96], [block], tid, False)
    assert stored_state(storage) == before


def test_writer_of_another_owner_is_refused(storage: HomeStorage, alice: PeergosUser) -> None:
    bob = PeergosUser.create("bob")
    bob.signup(storage)
    before = stored_state(storage)
    tid = storage.start_transaction(alice.owner)
    block = dag_cbor.encode({"y": 2})
    with pytest.raises(StorageError, match="not allowed"):
        storage.put_blocks(
            alice.owner, bob.writer.hash, [sign_block(bob.writer.pair, block)], [block], tid, False
        )
    stranger = PeergosUser.create("mallory")
    with pytest.raises(StorageError):
        storage.put_blocks(
            alice.owner, stranger.writer.hash, [sign_block(stranger.writer.pair, block)], [block], tid, False
        )
    assert stored_state(storage) == before


def test_block_rules(storage: HomeStorage, alice: PeergosUser) -> None:
    tid = storage.start_transaction(alice.owner)
    w = alice.writer
    big = b"\x00" * (MAX_BLOCK_SIZE + 1)
    before = stored_state(storage)
    with pytest.raises(StorageError, match="smaller than 1MiB"):
        storage.put_blocks(alice.owner, w.hash, [sign_block(w.pair, big)], [big], tid, True)
    bad_cbor = b"\xa2\x61a\x01\x61a\x02"
    with pytest.raises(StorageError, match="dag-cbor"):
        storage.put_blocks(alice.owner, w.hash, [sign_block(w.pair, bad_cbor)], [bad_cbor], tid, False)
    ok = b"raw bytes"
    with pytest.raises(StorageError, match="transaction"):
        storage.put_blocks(alice.owner, w.hash, [sign_block(w.pair, ok)], [ok], "no-such-tid", True)
    with pytest.raises(StorageError, match="signatures"):
        storage.put_blocks(alice.owner, w.hash, [], [ok], tid, True)
    assert stored_state(storage) == before
    [cid] = storage.put_blocks(alice.owner, w.hash, [sign_block(w.pair, ok)], [ok], tid, True)
    assert cid == Cid.for_block(CODEC_RAW, ok) and storage.get_block(cid) == ok


def test_pointer_rules(storage: HomeStorage, alice: PeergosUser) -> None:
    w = alice.writer
    current = w.target
    assert current is not None
    before = stored_state(storage)
    # replay of an older update
    replay = sign_pointer(w.pair, PointerUpdate(None, current, 1))
    with pytest.raises(PointerCasError):
        storage.set_pointer(alice.owner, w.hash, replay)
    # rollback: right original, sequence not increasing
    other = Cid.for_block(CODEC_DAG_CBOR, b"nope")
    with pytest.raises(StorageError, match="sequence"):
        storage.set_pointer(
            alice.owner, w.hash, sign_pointer(w.pair, PointerUpdate(current, other, w.sequence))
        )
    # pointing our writer at the identity's WriterData (controller mismatch)
    assert alice.identity.target is not None
    with pytest.raises(StorageError, match="controller"):
        storage.set_pointer(alice.owner, w.hash, w.next_update(alice.identity.target))
    # target block not stored here
    with pytest.raises(StorageError, match="WriterData"):
        storage.set_pointer(alice.owner, w.hash, w.next_update(other))
    # signed by the wrong key
    with pytest.raises(BadSignature):
        storage.set_pointer(
            alice.owner, w.hash, alice.identity.pair.sign(PointerUpdate(current, other, 99).serialize())
        )
    assert stored_state(storage) == before
    assert storage.get_pointer(w.hash) is not None


def test_cas_message_matches_peergos(storage: HomeStorage, alice: PeergosUser) -> None:
    w = alice.writer
    stale = Cid.for_block(CODEC_DAG_CBOR, b"stale")
    with pytest.raises(PointerCasError) as e:
        storage.set_pointer(alice.owner, w.hash, sign_pointer(w.pair, PointerUpdate(stale, None, 100)))
    assert str(e.value) == f"PointerCAS:{w.target},{w.sequence},{stale}"


def test_multi_writer_commit_is_atomic(storage: HomeStorage, alice: PeergosUser) -> None:
    from peergos_node.mutable.signed_pointer import SignedPointerUpdate

    w, ident = alice.writer, alice.identity
    tid = storage.start_transaction(alice.owner)
    wd2 = alice.blocks.put(
        WriterData(controller=w.hash, tree=alice.writer_data().tree, links=w.target).serialize()
    )
    alice.upload_new(storage, w, tid)
    good = SignedPointerUpdate(w.hash, w.next_update(wd2))
    bad = SignedPointerUpdate(ident.hash, sign_pointer(ident.pair, PointerUpdate(None, ident.target, 5)))
    with pytest.raises(PointerCasError):
        storage.set_pointers(alice.owner, [good, bad])
    assert PointerUpdate.from_signed_unverified(storage.get_pointer(w.hash) or b"").updated == w.target
    assert storage.set_pointers(alice.owner, [good])


def test_quota(storage: HomeStorage) -> None:
    user = PeergosUser.create("carol")
    user.signup(storage, quota=60_000)
    tid = storage.start_transaction(user.owner)
    w = user.writer
    blob = b"\x01" * 40_000
    storage.put_blocks(user.owner, w.hash, [sign_block(w.pair, blob)], [blob], tid, True)
    blob2 = b"\x02" * 40_000
    with pytest.raises(QuotaExceeded, match="Storage quota reached!"):
        storage.put_blocks(user.owner, w.hash, [sign_block(w.pair, blob2)], [blob2], tid, True)
    assert not storage.has_block(Cid.for_block(CODEC_RAW, blob2))
    # once over quota, small metadata writes (deletes, renames) still go through
    small = b"\x03" * 100
    storage.put_blocks(user.owner, w.hash, [sign_block(w.pair, small)], [small], tid, True)


def test_bat_guarded_reads(storage: HomeStorage, alice: PeergosUser) -> None:
    rng = DeterministicRng(b"bats")
    bat, mirror = Bat.random(rng), Bat.random(rng)
    block = create_raw_block_prefix(bat, BatId.sha256(mirror)) + b"secret fragment"
    tid = storage.start_transaction(alice.owner)
    [cid] = storage.put_blocks(
        alice.owner, alice.writer.hash, [sign_block(alice.writer.pair, block)], [block], tid, True
    )
    with pytest.raises(AuthError):
        storage.get_block(cid)
    assert storage.get_block(cid, bat=BatWithId(bat, bat.calculate_id())) == block
    assert storage.get_block(cid, bat=BatWithId(mirror, BatId.sha256(mirror))) == block
    wrong = Bat.random(rng)
    with pytest.raises(AuthError):
        storage.get_block(cid, bat=BatWithId(wrong, wrong.calculate_id()))
    requester = Cid.v1(0x72, b"\x00\x24\x08\x01\x12\x20" + bytes([7] * 32))
    now = int(storage.clock())
    auth = generate_auth(bat, cid, requester, now, bat.calculate_id()).encode()
    assert storage.get_block(cid, auth=auth, requester=requester) == block
    with pytest.raises(AuthError):
        storage.get_block(cid, auth=auth, requester=PEER)  # bound to another peer
    storage.clock.t += 3600  # type: ignore[attr-defined]
    with pytest.raises(AuthError):
        storage.get_block(cid, auth=auth, requester=requester)  # expired


def test_champ_lookup_returns_verifiable_path(storage: HomeStorage, alice: PeergosUser) -> None:
    keys = [hashlib.sha256(bytes([i])).digest() for i in range(30)]
    tid = storage.start_transaction(alice.owner)
    for k in keys:
        alice.add_file(storage, k, k, tid)
    root = alice.writer_data().tree
    assert root is not None
    blocks = storage.champ_lookup(root, [ChunkMirrorCap(keys[3], None), ChunkMirrorCap(keys[7], None)])
    from peergos_node.champ import verify_paths

    values = verify_paths(root, [keys[3], keys[7]], blocks, identity_hasher)
    assert all(isinstance(v, Cid) for v in values.values())
    with pytest.raises(StorageError, match="Too many"):
        storage.champ_lookup(root, [ChunkMirrorCap(k, None) for k in keys[:21]])


def test_gc_keeps_reachable_and_open_transactions(storage: HomeStorage, alice: PeergosUser) -> None:
    key = bytes(range(32))
    value = alice.add_file(storage, key, b"keep me" * 100)
    tid = storage.start_transaction(alice.owner)
    pending = b"uploading"
    [pending_cid] = storage.put_blocks(
        alice.owner, alice.writer.hash, [sign_block(alice.writer.pair, pending)], [pending], tid, True
    )
    orphan_tid = storage.start_transaction(alice.owner)
    orphan = b"orphaned"
    [orphan_cid] = storage.put_blocks(
        alice.owner, alice.writer.hash, [sign_block(alice.writer.pair, orphan)], [orphan], orphan_tid, True
    )
    storage.close_transaction(alice.owner, orphan_tid)
    report = storage.collect_garbage()
    assert not storage.has_block(orphan_cid) and storage.has_block(pending_cid) and storage.has_block(value)
    assert report.deleted >= 1
    alice.remove_file(storage, key, value)
    storage.close_transaction(alice.owner, tid)
    storage.collect_garbage()
    assert not storage.has_block(value) and not storage.has_block(pending_cid)
    # what is reachable survives: the writer's current WriterData and tree
    assert alice.writer.target is not None and storage.has_block(alice.writer.target)
    tree = alice.writer_data().tree
    assert tree is not None and Champ(alice.blocks, identity_hasher).get(tree, key) is None


def test_champ_lookups_from_many_threads_share_the_lookup_caches(
    storage: HomeStorage, alice: PeergosUser
) -> None:
    keys = [hashlib.sha256(bytes([i, 1])).digest() for i in range(200)]
    tid = storage.start_transaction(alice.owner)
    for k in keys:
        alice.add_file(storage, k, k, tid)
    root = alice.writer_data().tree
    assert root is not None
    from concurrent.futures import ThreadPoolExecutor

    from peergos_node.champ import verify_paths

    groups = [keys[i : i + 20] for i in range(0, len(keys), 20)] * 4
    fresh = Champ(storage._getter)  # a walk of the block store itself, no shared cache
    expected = {
        tuple(g): {*fresh.get_paths(root, g), *(storage.blocks.get(fresh.get(root, k)) for k in g)}
        for g in groups
    }

    def lookup(group: list[bytes]) -> list[bytes]:
        return storage.champ_lookup(root, [ChunkMirrorCap(k, None) for k in group])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lookup, groups))
    for group, blocks in zip(groups, answers, strict=True):
        assert len(blocks) == len(set(blocks)) and set(blocks) == expected[tuple(group)]
        values = verify_paths(root, group, blocks, identity_hasher)
        assert all(isinstance(v, Cid) for v in values.values())
    assert len(storage._lookup_nodes) > 0  # the walks went through the shared caches


def test_champ_lookup_gives_value_blocks_only_with_their_bat(
    storage: HomeStorage, alice: PeergosUser
) -> None:
    from peergos_node.champ import verify_paths
    from peergos_node.server.stores.metadata import CachingBlockMetadataStore

    rng = DeterministicRng(b"champ bats")
    bat, other = Bat.random(rng), Bat.random(rng)
    good, wrong = BatWithId(bat, bat.calculate_id()), BatWithId(other, other.calculate_id())
    keys = [hashlib.sha256(bytes([i, 2])).digest() for i in range(20)]
    tid = storage.start_transaction(alice.owner)
    values = [
        alice.add_file(storage, k, k, tid, bats=[bat.calculate_id()] if i % 2 == 0 else [])
        for i, k in enumerate(keys)
    ]
    root = alice.writer_data().tree
    assert root is not None
    caps = [ChunkMirrorCap(k, [good, wrong, None][i % 3]) for i, k in enumerate(keys)]
    readable = {alice.blocks.get(v) for i, v in enumerate(values) if i % 2 == 1 or i % 3 == 0}
    all_values = {alice.blocks.get(v) for v in values}
    assert 0 < len(readable) < len(all_values)
    assert isinstance(storage.metadata, CachingBlockMetadataStore)
    inner = storage.metadata.inner

    def fresh(cache_bytes: int) -> HomeStorage:  # the same stores, as after a restart
        return HomeStorage(
            PEER,
            storage.blocks,
            inner,
            storage.transactions,
            storage.pointers,
            storage.usage,
            metadata_cache_bytes=cache_bytes,
        )

    restarted = fresh(1 << 20)
    for s in (storage, restarted, restarted, fresh(0)):  # filled by put, cold, warm, no cache
        blocks = s.champ_lookup(root, caps)
        assert {b for b in blocks if b in all_values} == readable
        assert len(verify_paths(root, keys, blocks, identity_hasher)) == len(keys), "every path is whole"
    for v in values:  # without recorded metadata, the value block's own `bats` are checked
        inner.remove(v.to_bytes())
    blocks = fresh(1 << 20).champ_lookup(root, caps)
    assert {b for b in blocks if b in all_values} == readable
