"""Mark-and-sweep garbage collection of the block store (spec/peergos.md §8 "GC").

Order matters, because clients keep writing while GC runs:
1. list every stored block (the only candidates for deletion this round);
2. expire transactions older than the limit, then read the blocks of the open ones;
3. *then* read every pointer (a write that closed its transaction after step 2 committed its pointer
   before closing it, so step 3 sees that pointer);
4. mark everything reachable from the pointer targets and the open-transaction blocks;
5. delete listed blocks that are not marked (and their metadata), in batches. Each batch holds the
   exclusive side of `GcLock` and spares the blocks of open transactions and every block written (or
   re-written) since this collection started (`spare`); block writes record their transaction, store
   the block and note it for `spare` under the shared side. So a client that re-uploads a block GC had
   doomed (same bytes as an earlier, unreachable state) and commits a pointer to it, even closing its
   transaction before the sweep reaches it, keeps the block.
A block first written after step 1 is never a candidate, so concurrent writes lose nothing reachable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid
from peergos_node.mutable.pointer_update import PointerUpdate
from peergos_node.server.dag import reachable
from peergos_node.server.stores.metadata import BlockMetadataStore
from peergos_node.server.stores.pointers import PointerStore
from peergos_node.server.stores.transactions import TransactionStore

log = logging.getLogger(__name__)

TRANSACTION_EXPIRY_MS = 24 * 3600 * 1000
SWEEP_BATCH = 512


class GcLock:
    """Readers-writer lock: block writes share it, each GC sweep batch holds it exclusively."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Held while recording a transaction's blocks and storing them."""
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by one sweep batch."""
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass(frozen=True)
class GcReport:
    """What one collection did."""

    listed: int
    reachable: int
    deleted: int
    deleted_bytes: int
    expired_transactions: int


class BlockDeleter:
    """What GC needs from the block store: list every block and remove one."""

    def __init__(self, list_cids: Callable[[], list[Cid]], remove: Callable[[Cid], bool]) -> None:
        self.list_cids = list_cids
        self.remove = remove


def pointer_target(signed: bytes) -> bytes | None:
    """The CID bytes a stored (already verified) signed pointer points at."""
    try:
        target = PointerUpdate.from_signed_unverified(signed).updated
    except (DecodeError, ValueError):
        log.warning("unparseable stored pointer ignored by GC")
        return None
    return None if target is None else target.to_bytes()


def collect_garbage(
    blocks: BlockDeleter,
    metadata: BlockMetadataStore,
    transactions: TransactionStore,
    pointers: PointerStore,
    now_ms: int,
    transaction_expiry_ms: int = TRANSACTION_EXPIRY_MS,
    extra_roots: Callable[[], list[bytes]] | None = None,
    lock: GcLock | None = None,
    spare: Callable[[], set[bytes]] | None = None,
) -> GcReport:
    """Run one collection; see the module docstring for why the steps are in this order."""
    candidates = blocks.list_cids()
    expired = transactions.expire(now_ms - transaction_expiry_ms)
    roots: set[bytes] = set(transactions.open_block_cids())
    for _owner, _writer, signed in pointers.all():
        target = pointer_target(signed)
        if target is not None:
            roots.add(target)
    if extra_roots is not None:
        roots.update(extra_roots())
    marked = reachable(roots, metadata)
    doomed = [cid for cid in candidates if cid.to_bytes() not in marked]
    lock = lock or GcLock()
    deleted = 0
    deleted_bytes = 0
    for start in range(0, len(doomed), SWEEP_BATCH):
        with lock.exclusive():
            spared = transactions.open_block_cids()
            if spare is not None:
                spared |= spare()
            for cid in doomed[start : start + SWEEP_BATCH]:
                key = cid.to_bytes()
                if key in spared:
                    continue
                meta = metadata.get(key)
                if blocks.remove(cid):
                    deleted += 1
                    deleted_bytes += meta.size if meta else 0
                metadata.remove(key)
    report = GcReport(len(candidates), len(marked), deleted, deleted_bytes, expired)
    log.info("GC: %s", report)
    return report
