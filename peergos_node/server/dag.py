"""Walking the block DAG through the metadata store (no block is read or parsed here).

`reachable` is the mark phase of garbage collection. `contained_size_change` is how usage accounting
follows a writer's pointer from one root to another (Peergos `getChangeInContainedSize`): the *contained
size* of a root is the sum of the sizes of every block on every path below it (a tree count: a block
linked twice counts twice, consistently on both sides). Both trees are expanded level by level and, at
each level, the multiset of block CIDs common to both sides is cancelled before expanding further, so the
work is proportional to what changed (plus subtrees that moved to another depth, which are counted on
both sides and cancel exactly). Identity CIDs are inline data and never stored: they count zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from peergos_node.server.stores.metadata import BlockMetadataStore

_IDENTITY_MH = 0x00


def _is_identity(cid: bytes) -> bool:
    # CIDv1: 0x01, varint codec (1-2 bytes for the codecs in use), multihash code; CIDv0 is sha256
    if not cid or cid[0] != 0x01:
        return False
    i = 1
    while i < len(cid) and cid[i] & 0x80:
        i += 1
    return i + 1 < len(cid) and cid[i + 1] == _IDENTITY_MH


def reachable(roots: Iterable[bytes], metadata: BlockMetadataStore) -> set[bytes]:
    """Every stored block reachable from `roots` through recorded links (roots included)."""
    seen: set[bytes] = set()
    stack = [r for r in roots if not _is_identity(r)]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        meta = metadata.get(cid)
        if meta is None:
            continue
        for link in meta.links:
            if link not in seen and not _is_identity(link):
                stack.append(link)
    return seen


def iter_reachable(root: bytes, metadata: BlockMetadataStore) -> Iterator[bytes]:
    """Reachable blocks of one root, yielded as found."""
    yield from reachable([root], metadata)


def _expand(level: Counter[bytes], metadata: BlockMetadataStore) -> tuple[int, Counter[bytes]]:
    size = 0
    nxt: Counter[bytes] = Counter()
    for cid, n in level.items():
        if _is_identity(cid):
            continue
        meta = metadata.get(cid)
        if meta is None:
            continue
        size += meta.size * n
        for link in meta.links:
            if not _is_identity(link):
                nxt[link] += n
    return size, nxt


def contained_size_change(
    old_root: bytes | None, new_root: bytes | None, metadata: BlockMetadataStore
) -> int:
    """Contained size of `new_root` minus that of `old_root` (None = empty)."""
    old: Counter[bytes] = Counter([old_root] if old_root else [])
    new: Counter[bytes] = Counter([new_root] if new_root else [])
    delta = 0
    while old or new:
        common = old & new
        old -= common
        new -= common
        removed, old = _expand(old, metadata)
        added, new = _expand(new, metadata)
        delta += added - removed
    return delta


def contained_size(root: bytes | None, metadata: BlockMetadataStore) -> int:
    """Contained size of a root."""
    return contained_size_change(None, root, metadata)
