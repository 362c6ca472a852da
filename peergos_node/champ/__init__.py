"""Merkle-CHAMP: the hash-array-mapped trie holding every Peergos writer's filesystem, owned keys, secret
links and the PKI (spec/peergos.md §5.2, §5.3, §4.4, §18.7-8).

A tree is named by the CID of its root node. `node` is the byte-exact node format (8-way, buckets of at
most 4 mappings, Java BitSet bitmaps, children stored in reverse bit order, optional mirror-BAT root map);
`tree.Champ` does lookups, CAS puts and removes, bulk edits, diffs, 3-way merges and lookup proofs over a
`store.BlockGetter`/`BlockStore`, always leaving trees in the canonical shape Java Peergos produces, so
that equal key sets give equal root CIDs; `hashers` holds the key hashers and map-key rules of each
Peergos tree. Typical use:

    champ = Champ(store, identity_hasher)
    root = champ.create_empty()
    root = champ.put(root, map_key, None, cryptree_node_cid)
    champ.get(root, map_key)            # -> cryptree_node_cid
"""

from peergos_node.champ.cache import DEFAULT_CACHE_NODES, NodeCache
from peergos_node.champ.errors import (
    CasError,
    ChampError,
    ConcurrentModification,
    HashCollision,
    MissingBlock,
)
from peergos_node.champ.hashers import (
    KeyHasher,
    blake2b_hasher,
    identity_hasher,
    owned_key_from_map_key,
    owned_key_map_key,
    pki_key,
    secret_link_key,
    sha256_hasher,
)
from peergos_node.champ.node import (
    BIT_WIDTH,
    EMPTY_NODE,
    EMPTY_NODE_BYTES,
    MAX_BUCKET,
    MAX_DEPTH,
    ChampNode,
    decode_node,
    encode_node,
)
from peergos_node.champ.store import BlockGetter, BlockStore, MemoryBlockStore
from peergos_node.champ.tree import Champ, ChampPath, Change, same_value, verify_path, verify_paths

__all__ = [
    "BIT_WIDTH",
    "DEFAULT_CACHE_NODES",
    "EMPTY_NODE",
    "EMPTY_NODE_BYTES",
    "MAX_BUCKET",
    "MAX_DEPTH",
    "BlockGetter",
    "BlockStore",
    "CasError",
    "Champ",
    "ChampError",
    "ChampNode",
    "ChampPath",
    "Change",
    "ConcurrentModification",
    "HashCollision",
    "KeyHasher",
    "MemoryBlockStore",
    "MissingBlock",
    "NodeCache",
    "blake2b_hasher",
    "decode_node",
    "encode_node",
    "identity_hasher",
    "owned_key_from_map_key",
    "owned_key_map_key",
    "pki_key",
    "same_value",
    "secret_link_key",
    "sha256_hasher",
    "verify_path",
    "verify_paths",
]
