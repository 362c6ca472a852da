"""Cryptree: capabilities, encrypted nodes, files and directories (spec/peergos.md §6, §10).

Encryption itself lives in `peergos_node.crypto`; this package never imports a crypto library.

Modules
-------
- `capabilities`  `AbsoluteCapability`, `WritableAbsoluteCapability` (§6.1)
- `relative`      `RelativeCapability`, `NamedRelativeCapability`, `ChildrenLinks` (§6.1, §6.6)
- `properties`    `FileProperties`, `Timestamp` (Java `LocalDateTime` as UTC), `Thumbnail`, `HashTree` /
                  `HashBranch` (§6.3)
- `fragments`     `FragmentedPaddedCipherText`: padding, inline or 1 MiB fragments with BAT prefixes (§6.4)
- `node`          `CryptreeNode` (`{v, bats?, b, p, d}`), `FromBase`, `FromParent`, `SymmetricLinkToSigner`,
                  `create_file_chunk`, `create_dir`, `ReadNode` (§6.2)
- `chunks`        chunk locations chained by the stream secret, seeking, directory splitting (§6.5, §6.6)
- `builders`      `FileEncryptor` (all chunks of a file), `create_directory` with overflow chunks
- `secret_link`   secret links (§10)

Typical use (no I/O here: the caller stores and fetches blocks)
------------------------------------------------------------------
Write a file: `FileEncryptor(base_key, data_key, props_with_stream_secret, first_location, parent_link,
hash_tree, mirror_bat_id).encrypt_all(data, rng)` yields one `LocatedNode` per 5 MiB chunk — store
`.block` at `.location.map_key` (signed by the writer) and every `.fragments[i].block` under its CID.
Write a directory: `create_directory(...)` (first chunk plus 500-child overflow chunks) or `create_dir`
for one chunk; change one with `node.with_children / with_properties / with_parent_link`.
Read: `node = CryptreeNode.parse(block)`, `read = node.read(cap.rbase_key)`, then `read.properties`,
`read.children(blocks)` or `read.data(blocks)` with `blocks` fetched for `node.fragments` (in order), and
`read.next_chunk_cap(cap, stream_secret)` to go on to the next chunk (pass the file's stream secret).

Errors: malformed input is `DecodeError` (`HashMismatch` for a block that does not match its CID); a wrong
key or altered ciphertext is `BadCiphertext`; misuse of the API is `ValueError`.
"""

from peergos_node.cryptree.builders import (
    FileEncryptor,
    LocatedNode,
    create_directory,
    create_overflow_chunk,
    random_location,
)
from peergos_node.cryptree.capabilities import AbsoluteCapability, WritableAbsoluteCapability
from peergos_node.cryptree.chunks import (
    MAX_CHILD_LINKS_PER_CHUNK,
    ChunkLocation,
    chunk_location,
    chunk_locations,
    next_chunk_location,
    split_children,
)
from peergos_node.cryptree.fragments import Fragment, FragmentedPaddedCipherText, FragmentLayout
from peergos_node.cryptree.node import (
    CryptreeNode,
    FromBase,
    FromParent,
    NodeWithFragments,
    ReadNode,
    SymmetricLinkToSigner,
    create_dir,
    create_file_chunk,
)
from peergos_node.cryptree.properties import (
    CHUNK_SIZE,
    EMPTY,
    FileProperties,
    HashBranch,
    HashTree,
    Thumbnail,
    Timestamp,
    chunk_count,
    hash_tree_root,
)
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability

__all__ = [
    "CHUNK_SIZE",
    "EMPTY",
    "MAX_CHILD_LINKS_PER_CHUNK",
    "AbsoluteCapability",
    "ChildrenLinks",
    "ChunkLocation",
    "CryptreeNode",
    "FileEncryptor",
    "FileProperties",
    "Fragment",
    "FragmentLayout",
    "FragmentedPaddedCipherText",
    "FromBase",
    "FromParent",
    "HashBranch",
    "HashTree",
    "LocatedNode",
    "NamedRelativeCapability",
    "NodeWithFragments",
    "ReadNode",
    "RelativeCapability",
    "SymmetricLinkToSigner",
    "Thumbnail",
    "Timestamp",
    "WritableAbsoluteCapability",
    "chunk_count",
    "chunk_location",
    "chunk_locations",
    "create_dir",
    "create_directory",
    "create_file_chunk",
    "create_overflow_chunk",
    "hash_tree_root",
    "next_chunk_location",
    "random_location",
    "split_children",
]
