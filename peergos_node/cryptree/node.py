"""Cryptree nodes: the encrypted block every file chunk and directory chunk is stored as
(spec/peergos.md §6.2, §6.6, §6.8, §6.9, §18 item 9; vectors README "cryptree.json").

Theory of operation
-------------------
A node is the dag-cbor map `{v: 1, bats?: [BatId...], b, p, d}` stored in the writer's CHAMP under a
32-byte map key:

* `bats` — the BAT ids that may read the block: `BatId.inline(bat)` (the BAT itself) and, if the owner
  has one, the mirror BAT's sha256 id. Omitted when empty (legacy nodes).
* `b` — `FromBase {k, w?, n}`, zero-padded to 64-byte blocks and encrypted with the node's read **base
  key**: `k` is the data key of a file or the *parent key* of a directory, `w` an optional
  `SymmetricLinkToSigner` (the writer's signing key encrypted with the write base key, present where the
  writer changes), `n` the next chunk's `RelativeCapability`.
* `p` — `FromParent {p?, s}`, zero-padded to 16-byte blocks: an optional link to the parent directory
  (carrying the parent's *parent* key, so a holder can walk up names but not list siblings) and the
  `FileProperties`. A file encrypts it with its base key; a directory with its parent key.
* `d` — `FragmentedPaddedCipherText` (`fragments.py`) of the chunk bytes (under the file's data key) or
  the directory's child list (under its base key).

Key schedule (§6.2): for a **file** the capability's read key is both base and parent key and the data
key differs from it; for a **directory** base key and parent key differ. Which one a node is shows only
on decryption: if FromParent opens with the capability's key it is a file (or the key is a directory's
parent key, which reads only its properties), otherwise it is a directory (§6.2 "trial decryption").

`create_file_chunk` and `create_dir` mirror Java's `CryptreeNode.createFile` / `createDir`, drawing every
nonce and BAT from the given `Rng` in Java's order — files: payload nonce and fragment BATs, then FromBase,
then FromParent; directories: signer link, FromBase, FromParent, then payload nonce and fragment BATs.
They return the node and the raw fragment blocks the caller stores alongside it.

`CryptreeNode.read(key)` decrypts FromBase and FromParent into a `ReadNode`; children and file data are
decrypted from the fragment blocks the caller fetched. Parsing is strict and bounded (at most 1 MiB + 100
bytes, known keys only, version 1, BAT ids in place); malformed input is a `DecodeError`, a wrong key or
altered ciphertext a `BadCiphertext`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Self, TypeVar

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_int,
    expect_list,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.bat import MAX_RAW_BLOCK_PREFIX_SIZE, Bat, BatId
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import CipherText, PaddedCipherText, SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability
from peergos_node.cryptree.chunks import ChunkLocation, next_chunk_location
from peergos_node.cryptree.fragments import FRAGMENT_SIZE, Fragment, FragmentedPaddedCipherText
from peergos_node.cryptree.properties import FileProperties
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from peergos_node.errors import BadCiphertext, DecodeError

CURRENT_VERSION = 1
BASE_BLOCK_PADDING = 64
"""FromBase padding block (Java `BASE_BLOCK_PADDING_BLOCKSIZE`)."""
META_DATA_PADDING = 16
"""FromParent padding block (Java `META_DATA_PADDING_BLOCKSIZE`)."""
MAX_NODE_SIZE = FRAGMENT_SIZE + MAX_RAW_BLOCK_PREFIX_SIZE
"""Largest node block accepted (a Peergos block is at most 1 MiB + 100 bytes)."""
MAX_NODE_BATS = 4
_FROM_BASE_KEYS = frozenset({"k", "w", "n"})
_FROM_PARENT_KEYS = frozenset({"p", "s"})
_NODE_KEYS = frozenset({"v", "bats", "b", "p", "d"})
C = TypeVar("C", bound=AbsoluteCapability)


@dataclass(frozen=True)
class SymmetricLinkToSigner(CborMixin):
    """A writer's signing key encrypted under a node's write base key (CBOR: a `CipherText`)."""

    link: CipherText

    @classmethod
    def from_pair(
        cls, wbase_key: SymmetricKey, signer: SigningPrivateKeyAndPublicHash, rng: Rng = SYSTEM_RNG
    ) -> SymmetricLinkToSigner:
        """Encrypt `signer` under `wbase_key` (Java `SymmetricLinkToSigner.fromPair`)."""
        return cls(CipherText.build(wbase_key, signer, rng))

    def target(self, wbase_key: SymmetricKey) -> SigningPrivateKeyAndPublicHash:
        """The signer; BadCiphertext for a wrong key, DecodeError if the secret does not match its hash."""
        signer = SigningPrivateKeyAndPublicHash.from_cbor(self.link.decrypt(wbase_key))
        if PublicKeyHash.of(signer.secret.public_key()) != signer.public_key_hash:
            raise DecodeError("SymmetricLinkToSigner: the secret key does not belong to its public key hash")
        return signer

    def to_cbor(self) -> CborValue:
        return self.link.to_cbor()

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(CipherText.from_cbor(value))


@dataclass(frozen=True)
class FromBase(CborMixin):
    """The block under the base key: `{k: data key | parent key, w?: signer link, n: next chunk}`."""

    key: SymmetricKey = dc_field(repr=False)
    next_chunk: RelativeCapability
    signer_link: SymmetricLinkToSigner | None = None

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"k": self.key.to_cbor(), "n": self.next_chunk.to_cbor()}
        if self.signer_link is not None:
            m["w"] = self.signer_link.to_cbor()
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "FromBase")
        only_keys(m, _FROM_BASE_KEYS, "FromBase")
        key = SymmetricKey.from_cbor(cbor_field(m, "k", "FromBase"))
        link = SymmetricLinkToSigner.from_cbor(m["w"]) if "w" in m else None
        return cls(key, RelativeCapability.from_cbor(cbor_field(m, "n", "FromBase")), link)

    def encrypt(self, base_key: SymmetricKey, rng: Rng) -> PaddedCipherText:
        """The `b` field: padded to 64-byte blocks under the base key."""
        return PaddedCipherText.build(base_key, self, BASE_BLOCK_PADDING, rng)


@dataclass(frozen=True)
class FromParent(CborMixin):
    """The block under the parent key: `{p?: link to the parent directory, s: FileProperties}`."""

    properties: FileProperties
    parent_link: RelativeCapability | None = None

    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"s": self.properties.to_cbor()}
        if self.parent_link is not None:
            m["p"] = self.parent_link.to_cbor()
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "FromParent")
        only_keys(m, _FROM_PARENT_KEYS, "FromParent")
        link = RelativeCapability.from_cbor(m["p"]) if "p" in m else None
        return cls(FileProperties.from_cbor(cbor_field(m, "s", "FromParent")), link)

    def encrypt(self, parent_key: SymmetricKey, rng: Rng) -> PaddedCipherText:
        """The `p` field: padded to 16-byte blocks under the parent key."""
        return PaddedCipherText.build(parent_key, self, META_DATA_PADDING, rng)


def _open_base(cipher: PaddedCipherText, key: SymmetricKey) -> FromBase:
    return FromBase.from_cbor(cipher.decrypt(key))


def _open_parent(cipher: PaddedCipherText, key: SymmetricKey) -> FromParent:
    return FromParent.from_cbor(cipher.decrypt(key))


@dataclass(frozen=True)
class CryptreeNode(CborMixin):
    """One encrypted file or directory chunk (`{v: 1, bats?, b, p, d}`)."""

    from_base: PaddedCipherText = dc_field(repr=False)
    from_parent: PaddedCipherText = dc_field(repr=False)
    payload: FragmentedPaddedCipherText
    bats: tuple[BatId, ...] = ()

    def __post_init__(self) -> None:
        if len(self.bats) > MAX_NODE_BATS:
            raise ValueError(f"a node lists at most {MAX_NODE_BATS} BAT ids")
        if any(b.is_inline for b in self.bats[1:]):
            raise ValueError("only a node's first BAT id may be an inline BAT")

    # ---- identity and access --------------------------------------------------------------------------
    @classmethod
    def parse(cls, block: bytes) -> CryptreeNode:
        """Strictly parse a node block (at most 1 MiB + 100 bytes)."""
        return cls.deserialize(block)

    @classmethod
    def deserialize(cls, data: bytes, *, allow_zero_padding: bool = False) -> Self:
        """Strictly parse a node block (at most 1 MiB + 100 bytes; never zero padded)."""
        if len(data) > MAX_NODE_SIZE:
            raise DecodeError(f"a cryptree node is at most {MAX_NODE_SIZE} bytes")
        if allow_zero_padding:
            raise ValueError("cryptree node blocks are not padded")
        return cls.from_cbor(dag_cbor.decode(data, max_size=MAX_NODE_SIZE))

    def cid(self) -> Cid:
        """CIDv1 dag-cbor sha256 of the serialised node."""
        return Cid.for_block(CODEC_DAG_CBOR, self.serialize())

    @property
    def inline_bat(self) -> Bat | None:
        """The BAT embedded in the node (None on legacy nodes)."""
        return self.bats[0].inline_bat() if self.bats else None

    @property
    def mirror_bat_id(self) -> BatId | None:
        """The mirror BAT id (Java `mirrorBatId`: the last of at least two ids)."""
        return self.bats[-1] if len(self.bats) >= 2 else None

    @property
    def fragments(self) -> tuple[Cid, ...]:
        """The fragment blocks to fetch (in order) before decrypting children or data."""
        return self.payload.fragments

    # ---- decryption -----------------------------------------------------------------------------------
    def is_directory(self, key: SymmetricKey) -> bool:
        """Node type by trial decryption of FromParent with the capability's key (Java `fromCbor`)."""
        try:
            from_parent = _open_parent(self.from_parent, key)
        except BadCiphertext:
            return True
        return from_parent.properties.is_directory

    def read(self, base_key: SymmetricKey) -> ReadNode:
        """Decrypt FromBase and FromParent with a capability's read base key.

        BadCiphertext if the key does not open the node, or is only a directory's parent key (which reads
        its properties, see `properties`).
        """
        try:
            from_parent: FromParent | None = _open_parent(self.from_parent, base_key)
        except BadCiphertext:
            from_parent = None
        if from_parent is not None:
            if from_parent.properties.is_directory:
                raise BadCiphertext("this key is the directory's parent key: it reads only its properties")
            from_base = _open_base(self.from_base, base_key)
            if from_base.key.key == base_key.key:
                raise DecodeError("a file's data key must differ from its base key")
            return ReadNode(self, False, base_key, base_key, from_base, from_parent)
        from_base = _open_base(self.from_base, base_key)
        if from_base.key.key == base_key.key:
            raise DecodeError("a directory's parent key must differ from its base key")
        from_parent = _open_parent(self.from_parent, from_base.key)
        return ReadNode(self, True, base_key, from_base.key, from_base, from_parent)

    def parent_key(self, key: SymmetricKey) -> SymmetricKey:
        """The key that opens FromParent (Java `getParentKey`): a directory's parent key from its base key,
        else the key itself (a file's base key, or a directory's parent key already)."""
        try:
            _open_parent(self.from_parent, key)
        except BadCiphertext:
            return _open_base(self.from_base, key).key
        return key

    def properties(self, key: SymmetricKey) -> FileProperties:
        """The properties, readable with a file's base key or a directory's base or parent key."""
        return _open_parent(self.from_parent, self.parent_key(key)).properties

    def parent_link(self, key: SymmetricKey) -> RelativeCapability | None:
        """The link to the parent directory (first chunks only), with the same keys as `properties`."""
        return _open_parent(self.from_parent, self.parent_key(key)).parent_link

    def children(self, base_key: SymmetricKey, blocks: Sequence[bytes] = ()) -> ChildrenLinks:
        """A directory chunk's child links; `blocks` are the fragment blocks of `fragments`, in order."""
        return ChildrenLinks.from_cbor(self.payload.decrypt(base_key, blocks))

    def data(self, data_key: SymmetricKey, blocks: Sequence[bytes] = ()) -> bytes:
        """A file chunk's bytes (decrypted with the data key from `read(...).data_key`)."""
        return self.payload.decrypt_data(data_key, blocks)

    # ---- updates (each draws fresh nonces) -----------------------------------------------------------
    def with_properties(
        self, key: SymmetricKey, properties: FileProperties, rng: Rng = SYSTEM_RNG
    ) -> CryptreeNode:
        """New properties, same parent link (Java `updateProperties`); `key` as for `properties`."""
        parent_key = self.parent_key(key)
        current = _open_parent(self.from_parent, parent_key)
        return replace(self, from_parent=FromParent(properties, current.parent_link).encrypt(parent_key, rng))

    def with_parent_link(
        self, key: SymmetricKey, parent_link: RelativeCapability | None, rng: Rng = SYSTEM_RNG
    ) -> CryptreeNode:
        """A new link to the parent directory (moves), same properties (Java `withParentLink`)."""
        parent_key = self.parent_key(key)
        current = _open_parent(self.from_parent, parent_key)
        return replace(self, from_parent=FromParent(current.properties, parent_link).encrypt(parent_key, rng))

    def with_signer_link(
        self, base_key: SymmetricKey, signer_link: SymmetricLinkToSigner | None, rng: Rng = SYSTEM_RNG
    ) -> CryptreeNode:
        """Set or drop the writer link in FromBase (Java `withWriterLink`)."""
        current = _open_base(self.from_base, base_key)
        return replace(self, from_base=replace(current, signer_link=signer_link).encrypt(base_key, rng))

    def with_mirror_bat(self, mirror_bat_id: BatId) -> CryptreeNode:
        """Add the owner's mirror BAT id to a node that has only its inline BAT (Java `withMirrorBat`)."""
        if len(self.bats) != 1:
            raise ValueError("a mirror BAT can only be added to a node with exactly one BAT")
        return replace(self, bats=(*self.bats, mirror_bat_id))

    def with_payload(self, payload: FragmentedPaddedCipherText) -> CryptreeNode:
        """The same node with another payload (e.g. after its fragments were re-stored)."""
        return replace(self, payload=payload)

    def with_children(
        self, base_key: SymmetricKey, children: Sequence[NamedRelativeCapability], rng: Rng = SYSTEM_RNG
    ) -> NodeWithFragments:
        """A directory chunk with a new child list (Java `withChildren`): payload re-encrypted under the base
        key with fresh fragment BATs and this node's mirror BAT."""
        payload, fragments = FragmentedPaddedCipherText.build_value(
            base_key, ChildrenLinks.of(children), mirror_bat_id=self.mirror_bat_id, rng=rng
        )
        return NodeWithFragments(replace(self, payload=payload), tuple(fragments))

    # ---- CBOR -----------------------------------------------------------------------------------------
    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {
            "v": CURRENT_VERSION,
            "b": self.from_base.to_cbor(),
            "p": self.from_parent.to_cbor(),
            "d": self.payload.to_cbor(),
        }
        if self.bats:
            m["bats"] = [b.to_cbor() for b in self.bats]
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "CryptreeNode"
        m = expect_map(value, ctx)
        only_keys(m, _NODE_KEYS, ctx)
        as_int(cbor_field(m, "v", ctx), f"{ctx}.v", CURRENT_VERSION, CURRENT_VERSION)
        raw_bats = expect_list(m["bats"], f"{ctx}.bats", max_len=MAX_NODE_BATS) if "bats" in m else []
        bats = tuple(BatId.from_cbor(b) for b in raw_bats)
        from_base = PaddedCipherText.from_cbor(cbor_field(m, "b", ctx))
        from_parent = PaddedCipherText.from_cbor(cbor_field(m, "p", ctx))
        payload = FragmentedPaddedCipherText.from_cbor(cbor_field(m, "d", ctx))
        try:
            return cls(from_base, from_parent, payload, bats)
        except ValueError as e:
            raise DecodeError(f"{ctx}: {e}") from None


@dataclass(frozen=True)
class ReadNode:
    """A node opened with its read base key: type, keys and the decrypted FromBase/FromParent."""

    node: CryptreeNode
    is_directory: bool
    base_key: SymmetricKey = dc_field(repr=False)
    parent_key: SymmetricKey = dc_field(repr=False)
    from_base: FromBase = dc_field(repr=False)
    from_parent: FromParent

    @property
    def properties(self) -> FileProperties:
        """The node's properties."""
        return self.from_parent.properties

    @property
    def parent_link(self) -> RelativeCapability | None:
        """Link to the parent directory (with the parent's parent key); absent on later chunks and roots."""
        return self.from_parent.parent_link

    @property
    def next_chunk(self) -> RelativeCapability:
        """FromBase's next-chunk pointer (use `next_chunk_location` to follow it safely)."""
        return self.from_base.next_chunk

    @property
    def signer_link(self) -> SymmetricLinkToSigner | None:
        """The writer link, present where this node's writer differs from its parent's."""
        return self.from_base.signer_link

    @property
    def data_key(self) -> SymmetricKey:
        """A file's data key (ValueError for a directory)."""
        if self.is_directory:
            raise ValueError("directories have no data key")
        return self.from_base.key

    @property
    def is_dirty(self) -> bool:
        """True for a file whose data key must be replaced on the next write (after a revocation, §6.9)."""
        return not self.is_directory and self.from_base.key.dirty

    def signer(
        self, wbase_key: SymmetricKey, entry_signer: SigningPrivateKeyAndPublicHash | None = None
    ) -> SigningPrivateKeyAndPublicHash:
        """The key that signs writes to this node: from the writer link if present, else the inherited
        `entry_signer` (Java `getSigner`); ValueError if there is neither."""
        if self.signer_link is not None:
            return self.signer_link.target(wbase_key)
        if entry_signer is None:
            raise ValueError("this node has no writer link and no entry signer was given")
        return entry_signer

    def next_chunk_location(self, current: ChunkLocation, stream_secret: bytes | None) -> ChunkLocation:
        """Where the next chunk is (Java `getNextChunkLocation`).

        Pass the file's stream secret (from its first chunk's properties): when there is one it **must**
        be used, whatever FromBase says (downgrade protection, §6.5). Directories and legacy files pass
        None and follow FromBase's next-chunk pointer.
        """
        if stream_secret is not None:
            return next_chunk_location(stream_secret, current)
        return ChunkLocation(self.next_chunk.map_key, self.next_chunk.bat)

    def next_chunk_cap(self, cap: C, stream_secret: bytes | None) -> C:
        """`cap` moved to the next chunk (same keys, next map key and BAT)."""
        nxt = self.next_chunk_location(ChunkLocation(cap.map_key, cap.bat), stream_secret)
        return cap.with_map_key(nxt.map_key, nxt.bat)

    def children(self, blocks: Sequence[bytes] = ()) -> ChildrenLinks:
        """A directory chunk's child links (ValueError for a file)."""
        if not self.is_directory:
            raise ValueError("a file has no children")
        return self.node.children(self.base_key, blocks)

    def data(self, blocks: Sequence[bytes] = ()) -> bytes:
        """A file chunk's bytes (ValueError for a directory)."""
        return self.node.data(self.data_key, blocks)


@dataclass(frozen=True)
class NodeWithFragments:
    """A new node and the raw fragment blocks to store with it."""

    node: CryptreeNode
    fragments: tuple[Fragment, ...] = ()

    @property
    def block(self) -> bytes:
        """The node's dag-cbor block."""
        return self.node.serialize()

    @property
    def cid(self) -> Cid:
        """The node block's CID."""
        return self.node.cid()


def _node_bats(inline_bat: Bat | None, mirror_bat_id: BatId | None) -> tuple[BatId, ...]:
    ids = [BatId.inline(inline_bat)] if inline_bat is not None else []
    return (*ids, mirror_bat_id) if mirror_bat_id is not None else tuple(ids)


def create_file_chunk(
    *,
    base_key: SymmetricKey,
    data_key: SymmetricKey,
    properties: FileProperties,
    data: bytes | memoryview,
    next_chunk: RelativeCapability,
    parent_link: RelativeCapability | None,
    inline_bat: Bat | None,
    mirror_bat_id: BatId | None = None,
    signer_link: SymmetricLinkToSigner | None = None,
    rng: Rng = SYSTEM_RNG,
) -> NodeWithFragments:
    """One file chunk (Java `CryptreeNode.createFile`): `data` under the data key; FromBase and FromParent
    under the base key. Draws the payload nonce and fragment BATs, then the FromBase and FromParent nonces.
    Files without an inline BAT (legacy) list no BAT ids at all."""
    if base_key.key == data_key.key:
        raise ValueError("a file's base key and data key must differ")
    payload, fragments = FragmentedPaddedCipherText.build_data(
        data_key, data, mirror_bat_id=mirror_bat_id, rng=rng
    )
    b = FromBase(data_key, next_chunk, signer_link).encrypt(base_key, rng)
    p = FromParent(properties, parent_link).encrypt(base_key, rng)
    bats = _node_bats(inline_bat, mirror_bat_id) if inline_bat is not None else ()
    return NodeWithFragments(CryptreeNode(b, p, payload, bats), tuple(fragments))


def create_dir(
    *,
    rbase_key: SymmetricKey,
    parent_key: SymmetricKey,
    properties: FileProperties,
    children: Sequence[NamedRelativeCapability],
    next_chunk: RelativeCapability,
    parent_link: RelativeCapability | None,
    inline_bat: Bat | None,
    mirror_bat_id: BatId | None = None,
    wbase_key: SymmetricKey | None = None,
    signer: SigningPrivateKeyAndPublicHash | None = None,
    rng: Rng = SYSTEM_RNG,
) -> NodeWithFragments:
    """One directory chunk (Java `CryptreeNode.createDir`): FromBase and the children under the read base
    key, FromParent under the parent key, and a writer link under `wbase_key` when `signer` is given.
    Draws the signer-link nonce, the FromBase and FromParent nonces, then the payload nonce and BATs."""
    if rbase_key.key == parent_key.key:
        raise ValueError("a directory's base key and parent key must differ")
    link = None
    if signer is not None:
        if wbase_key is None:
            raise ValueError("a writer link needs the directory's write base key")
        link = SymmetricLinkToSigner.from_pair(wbase_key, signer, rng)
    b = FromBase(parent_key, next_chunk, link).encrypt(rbase_key, rng)
    p = FromParent(properties, parent_link).encrypt(parent_key, rng)
    payload, fragments = FragmentedPaddedCipherText.build_value(
        rbase_key, ChildrenLinks.of(children), mirror_bat_id=mirror_bat_id, rng=rng
    )
    node = CryptreeNode(b, p, payload, _node_bats(inline_bat, mirror_bat_id))
    return NodeWithFragments(node, tuple(fragments))


__all__ = [
    "BASE_BLOCK_PADDING",
    "CURRENT_VERSION",
    "MAX_NODE_SIZE",
    "META_DATA_PADDING",
    "CryptreeNode",
    "FromBase",
    "FromParent",
    "NodeWithFragments",
    "ReadNode",
    "SymmetricLinkToSigner",
    "create_dir",
    "create_file_chunk",
]
