"""A bounded LRU cache of decoded CHAMP nodes by CID (spec/peergos.md §5.2).

Blocks are immutable and content addressed, so a decoded node never goes stale: the cache only bounds
memory. Walking a tree decodes each node on the path; caching them makes repeated lookups and edits cost
dictionary lookups instead of CBOR decodes, and nodes an edit creates are cached as they are written, so
the next edit never decodes them at all. One cache may be shared by several `Champ` instances.
"""

from __future__ import annotations

from collections import OrderedDict

from nabu_py.multiformats.cid import Cid
from peergos_node.champ.node import ChampNode

DEFAULT_CACHE_NODES = 8192
"""Decoded nodes kept by default (a few KiB each: ~25 MiB at most)."""


class NodeCache:
    """Least-recently-used map CID -> decoded node, holding at most `max_nodes` entries."""

    __slots__ = ("_nodes", "hits", "max_nodes", "misses")

    def __init__(self, max_nodes: int = DEFAULT_CACHE_NODES) -> None:
        if max_nodes < 0:
            raise ValueError("cache size must be >= 0")
        self.max_nodes = max_nodes
        self._nodes: OrderedDict[Cid, ChampNode] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, cid: Cid) -> ChampNode | None:
        """The cached node, or None (and count a miss)."""
        node = self._nodes.get(cid)
        if node is None:
            self.misses += 1
            return None
        self.hits += 1
        self._nodes.move_to_end(cid)
        return node

    def put(self, cid: Cid, node: ChampNode) -> None:
        """Remember a node, evicting the least recently used beyond the bound."""
        if self.max_nodes == 0:
            return
        nodes = self._nodes
        nodes[cid] = node
        nodes.move_to_end(cid)
        while len(nodes) > self.max_nodes:
            nodes.popitem(last=False)

    def clear(self) -> None:
        """Forget every node."""
        self._nodes.clear()

    def __len__(self) -> int:
        return len(self._nodes)


__all__ = ["DEFAULT_CACHE_NODES", "NodeCache"]
