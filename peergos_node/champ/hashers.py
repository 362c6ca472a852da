"""Key hashers and map-key derivations of Peergos' CHAMPs (spec/peergos.md §5.2, §18.8).

A CHAMP places a key by the bits of `hasher(key)` (see `node.mask`); Peergos uses a different rule per
tree:

| tree                      | map key                                   | hasher                 |
|---------------------------|-------------------------------------------|------------------------|
| writer filesystem (tree)  | random 32-byte map key                    | identity               |
| owned keys (owned)        | reverse(cbor(owned PublicKeyHash))        | identity               |
| secret links (links)      | sha256(label as 8-byte little-endian)     | identity               |
| PKI usernames             | utf8(username)                            | Blake2b-512            |
| public InodeFileSystem    | name bytes                                | sha256                 |

The map-key helpers below build (and where useful invert) the keys; the hashers are plain functions
`bytes -> bytes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid

KeyHasher = Callable[[bytes], bytes]
"""Maps a CHAMP key to the hash whose bits place it in the tree."""

_U64 = (1 << 64) - 1


def identity_hasher(key: bytes) -> bytes:
    """The key is its own hash (filesystem, owned-key and secret-link CHAMPs)."""
    return key


def blake2b_hasher(key: bytes) -> bytes:
    """Blake2b-512 of the key (the PKI username CHAMP, `IpfsCoreNode.keyHash`)."""
    return hashlib.blake2b(key, digest_size=64).digest()


def sha256_hasher(key: bytes) -> bytes:
    """sha256 of the key (the public InodeFileSystem)."""
    return hashlib.sha256(key).digest()


def pki_key(username: str) -> bytes:
    """The PKI CHAMP key of a username (its UTF-8 bytes; hash with `blake2b_hasher`)."""
    return username.encode("utf-8")


def secret_link_key(label: int) -> bytes:
    """The secret-link CHAMP key of a link label: sha256 of the label as a Java long, little-endian."""
    if not -(1 << 63) <= label <= _U64:
        raise ValueError(f"secret link label {label} does not fit in 64 bits")
    return hashlib.sha256((label & _U64).to_bytes(8, "little")).digest()


def owned_key_map_key(owned: Cid) -> bytes:
    """The owned-key CHAMP key of a PublicKeyHash: its CBOR (a tag-42 link) reversed."""
    return dag_cbor.encode(owned)[::-1]


def owned_key_from_map_key(key: bytes) -> Cid:
    """Invert `owned_key_map_key`; DecodeError when the key is not a reversed CBOR link."""
    value = dag_cbor.decode(key[::-1])
    if type(value) is not Cid:
        raise DecodeError("owned-key CHAMP key is not a reversed CBOR merkle link")
    return value


__all__ = [
    "KeyHasher",
    "blake2b_hasher",
    "identity_hasher",
    "owned_key_from_map_key",
    "owned_key_map_key",
    "pki_key",
    "secret_link_key",
    "sha256_hasher",
]
