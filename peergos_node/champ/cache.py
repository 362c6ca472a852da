"""A bounded cache of decoded CHAMP nodes by CID (spec/peergos.md §5.2).

Blocks are immutable and content addressed, so a decoded node never goes stale: the cache only bounds
memory. Walking a tree decodes each node on the path; caching them makes repeated lookups and edits cost
dictionary lookups instead of CBOR decodes, and nodes an edit creates are cached as they are written, so
the next edit never decodes them at all. One cache may be shared by several `Champ` instances.

Eviction is first-in first-out: a hit costs a single dict lookup (an LRU's reordering doubled the cost
of a lookup step), and a hot node that ages out (say a root) is decoded once and cached again. The map is
an OrderedDict because evicting from the front of a plain dict degrades to a linear scan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from nabu_py.multiformats.cid import Cid
from peergos_node.champ.node import ChampNode

DEFAULT_CACHE_NODES = 8192
"""Decoded nodes kept by default (a few KiB each: ~25 MiB at most)."""


class NodeCache:
    """Map CID -> decoded node holding at most `max_nodes` entries (oldest insertions evicted first).

    `get(cid)` returns the node or None; `decodes` counts nodes the owner had to decode (cache misses).
    """

    __slots__ = ("_nodes", "decodes", "get", "max_nodes")

    def __init__(self, max_nodes: int = DEFAULT_CACHE_NODES) -> None:
        if max_nodes < 0:
            raise ValueError("cache size must be >= 0")
        self.max_nodes = max_nodes
        self._nodes: OrderedDict[Cid, ChampNode] = OrderedDict()
        self.get: Callable[[Cid], ChampNode | None] = self._nodes.get
        self.decodes = 0

    def put(self, cid: Cid, node: ChampNode) -> None:
        """Remember a node, evicting the oldest entries beyond the bound."""
        if self.max_nodes == 0:
            return
        nodes = self._nodes
        nodes[cid] = node
        while len(nodes) > self.max_nodes:
            nodes.popitem(last=False)

    def clear(self) -> None:
        """Forget every node."""
        self._nodes.clear()

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, cid: object) -> bool:
        return cid in self._nodes


__all__ = ["DEFAULT_CACHE_NODES", "NodeCache"]
