"""Garbage collection while a client keeps writing loses nothing reachable (spec/peergos.md §8)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from nabu_py.blockstore import open_blockstore
from nabu_py.multiformats.cid import Cid
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.server.dag import reachable
from peergos_node.server.db import Database
from peergos_node.server.home_storage import MAX_BLOCK_SIZE, HomeStorage
from peergos_node.server.stores.metadata import SqlBlockMetadataStore
from peergos_node.server.stores.pointers import SqlPointerStore
from peergos_node.server.stores.transactions import SqlTransactionStore
from peergos_node.server.stores.usage import SqlUsageStore
from tests.helpers.peergos_users import PeergosUser

PEER = Cid.v1(0x72, b"\x00\x24\x08\x01\x12\x20" + bytes(32))


def test_gc_during_continuous_writes_loses_nothing_reachable(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "server.sqlite")
    blocks = open_blockstore("hybrid", tmp_path / "blocks", max_block_size=MAX_BLOCK_SIZE)
    storage = HomeStorage(
        PEER,
        blocks,
        SqlBlockMetadataStore(db),
        SqlTransactionStore(db),
        SqlPointerStore(db),
        SqlUsageStore(db),
        atomic=db.transaction,
    )
    user = PeergosUser.create("writer-during-gc")
    user.signup(storage, quota=1 << 30)
    stop = threading.Event()
    errors: list[BaseException] = []
    written: list[bytes] = []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                key = hashlib.sha256(i.to_bytes(4, "big")).digest()
                value = user.add_file(storage, key, key * 40)
                written.append(key)
                if i % 3 == 2:  # deletions too, so GC has real garbage to collect
                    user.remove_file(storage, key, value)
                    written.remove(key)
                i += 1
        except BaseException as e:  # reported to the test thread below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    deleted = 0
    deadline = time.monotonic() + 6
    rounds = 0
    while time.monotonic() < deadline or rounds < 5:
        deleted += storage.collect_garbage().deleted
        rounds += 1
    stop.set()
    t.join(60)
    assert not t.is_alive() and not errors, errors
    assert rounds >= 5 and len(written) > 10 and deleted > 0
    storage.collect_garbage()
    roots = []
    for _owner, _writer, signed in storage.pointers.all():
        target = PointerUpdate.from_signed_unverified(signed).updated
        assert target is not None
        roots.append(target.to_bytes())
    live = reachable(roots, storage.metadata)
    missing = [c for c in live if not storage.blocks.has(Cid.decode(c))]
    assert missing == [], f"{len(missing)} reachable blocks lost"
    # and every file the writer still references reads back
    from peergos_node.champ import Champ, identity_hasher

    tree = user.writer_data().tree
    assert tree is not None
    champ = Champ(storage._getter, identity_hasher)
    for key in written:
        value = champ.get(tree, key)
        assert isinstance(value, Cid) and storage.get_block(value) is not None
    blocks.close()
    db.close()
