"""One merkle-CHAMP node: its model, strict decoder and byte-exact encoder (spec/peergos.md §5.2, §18.7).

Java Peergos' `Champ` node is the dag-cbor array `[dataMap, nodeMap, contents]`, 8-way (BIT_WIDTH 3):

* `dataMap` / `nodeMap` are Java `BitSet.toByteArray()`: bit i is bit (i % 8) of byte i / 8, trailing zero
  bytes dropped; with 8 positions each is an empty byte string or one non-zero byte. A position is in at
  most one of them.
* `contents` holds one bucket per `dataMap` bit in increasing bit order, then one tag-42 child link per
  `nodeMap` bit in *decreasing* bit order (slot of the child at bit b is `len - 1 - popcount(nodeMap
  below b)`). A bucket is the flat list `[key, value, key, value, ...]` of 1..4 mappings sorted by (key
  length, unsigned key bytes); a value is any dag-cbor value (a merkle link in practice; CBOR null means
  "no value").
* A root may carry a mirror BAT: then the node is the map `{d: <the array>, bats: [BatId]}` where a
  BatId is the byte string of its CID.
* The empty node is `83 40 40 80`.

The hash bits of a key at depth d are bits [3d, 3d + 3) of its hash read LSB-first (bit 0 = LSB of byte
0), i.e. `(int.from_bytes(hash, "little") >> 3d) & 7`; bytes past the end of the hash read as zero, as in
Java's `Champ.mask`.

`ChampNode` keeps children in increasing bit order (the reverse of the wire order). `decode_node` accepts
exactly the bytes `encode_node` produces and nothing else: anything malformed, non-canonical or
inconsistent (bitmap/content counts, unsorted or oversized buckets, duplicate keys, links where buckets
belong) is a `DecodeError`, so a node from a malicious server can never crash a caller. `encode_node` is a
hand-written serialiser of this one shape (it is on every write's hot path); tests check it against the
generic dag-cbor encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid

BIT_WIDTH = 3
"""Hash bits consumed per level (8-way branching), Java `ChampWrapper.BIT_WIDTH`."""
WIDTH = 1 << BIT_WIDTH
MAX_BUCKET = 4
"""Mappings per bucket before it is pushed down a level, Java `MAX_HASH_COLLISIONS_PER_LEVEL`."""
MAX_DEPTH = 32
"""Nodes live at depths 0..31; pushing a bucket to depth 32 is "Hash collision!" (Java `HASH_CODE_LENGTH`)."""
MAX_NODE_BYTES = 1 << 20
"""Peergos refuses blocks over 1 MiB, so no valid node is larger."""

EMPTY_NODE_BYTES = bytes.fromhex("83404080")

CborValue = Any
Entry = tuple[bytes, CborValue]
"""One mapping: (key bytes, dag-cbor value)."""
Bucket = tuple[Entry, ...]


def popcount(x: int) -> int:
    """Number of set bits."""
    return x.bit_count()


def key_order(key: bytes) -> tuple[int, bytes]:
    """Sort key of mappings inside a bucket: key length first, then unsigned bytes (Java ByteArrayWrapper)."""
    return (len(key), key)


def hash_int(key_hash: bytes) -> int:
    """The key hash as the integer whose bit i is hash bit i (LSB-first within each byte)."""
    return int.from_bytes(key_hash, "little")


def mask(key_hash: int, depth: int) -> int:
    """Bit position (0..7) of a key at `depth`, from `hash_int(hash)`."""
    return (key_hash >> (BIT_WIDTH * depth)) & (WIDTH - 1)


@dataclass(frozen=True, slots=True)
class ChampNode:
    """A decoded CHAMP node.

    `buckets[i]` is the bucket at the i-th set bit of `data_map` (increasing), `children[j]` the link at
    the j-th set bit of `node_map` (increasing: the wire order is the reverse). `mirror_bat` is the BatId
    CID of a root's mirror BAT, or None.
    """

    data_map: int
    node_map: int
    buckets: tuple[Bucket, ...]
    children: tuple[Cid, ...]
    mirror_bat: Cid | None = None
    segments: dict[int, bytes] | None = field(default=None, compare=False, repr=False)
    """Memo of each occupied position's encoded CBOR item (bucket list or link), filled on first encode;
    an edit re-encodes only the positions it changes."""

    def bucket_at(self, bit: int) -> Bucket | None:
        """The bucket at bit position `bit`, or None."""
        b = 1 << bit
        if not self.data_map & b:
            return None
        return self.buckets[(self.data_map & (b - 1)).bit_count()]

    def child_at(self, bit: int) -> Cid | None:
        """The child link at bit position `bit`, or None."""
        b = 1 << bit
        if not self.node_map & b:
            return None
        return self.children[(self.node_map & (b - 1)).bit_count()]

    def key_count(self) -> int:
        """Mappings held directly in this node's buckets."""
        return sum(len(b) for b in self.buckets)

    def is_empty(self) -> bool:
        """True for a node with no buckets and no children."""
        return not self.data_map and not self.node_map

    def slots(self) -> list[tuple[int, Bucket | Cid]]:
        """(bit, bucket or child link) for every occupied position, in increasing bit order."""
        if not self.node_map:
            return list(zip(BITS[self.data_map], self.buckets, strict=True))
        if not self.data_map:
            return list(zip(BITS[self.node_map], self.children, strict=True))
        out: list[tuple[int, Bucket | Cid]] = []
        out.extend(zip(BITS[self.data_map], self.buckets, strict=True))
        out.extend(zip(BITS[self.node_map], self.children, strict=True))
        out.sort(key=_first)
        return out


def _first(item: tuple[int, Any]) -> int:
    return item[0]


BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(b for b in range(WIDTH) if x >> b & 1) for x in range(1 << WIDTH)
)
"""BITS[bitmap] = the set bit positions of an 8-bit bitmap, increasing."""


EMPTY_NODE = ChampNode(0, 0, (), ())


# ---- encoding --------------------------------------------------------------------------------------


def _head(major: int, n: int) -> bytes:
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    return bytes((m | 27,)) + n.to_bytes(8, "big")


_BYTES_HEAD = [_head(2, n) for n in range(256)]
_ARRAY_HEAD = [_head(4, n) for n in range(256)]
_NULL = b"\xf6"


def _bytes_item(b: bytes) -> bytes:
    n = len(b)
    return (_BYTES_HEAD[n] if n < 256 else _head(2, n)) + b


def _link_item(cid: Cid) -> bytes:
    raw = cid.to_bytes()
    n = len(raw) + 1
    return b"\xd8\x2a" + (_BYTES_HEAD[n] if n < 256 else _head(2, n)) + b"\x00" + raw


def encode_value(value: CborValue) -> bytes:
    """Canonical dag-cbor of one mapping value (links and null on a fast path)."""
    if type(value) is Cid:
        return _link_item(value)
    if value is None:
        return _NULL
    return dag_cbor.encode(value)


def _bitmap_item(bits: int) -> bytes:
    return b"\x40" if bits == 0 else bytes((0x41, bits))


def encode_bucket(bucket: Bucket) -> bytes:
    """The CBOR list `[key, value, ...]` of one bucket."""
    parts = [_ARRAY_HEAD[2 * len(bucket)]]
    for key, value in bucket:
        n = len(key)
        parts.append(_BYTES_HEAD[n] if n < 256 else _head(2, n))
        parts.append(key)
        if type(value) is Cid:
            parts.append(_link_item(value))
        elif value is None:
            parts.append(_NULL)
        else:
            parts.append(dag_cbor.encode(value))
    return b"".join(parts)


def link_item(cid: Cid) -> bytes:
    """The tag-42 CBOR item of a merkle link."""
    return _link_item(cid)


def node_segments(node: ChampNode) -> dict[int, bytes]:
    """bit -> encoded CBOR item of that position (memoised on the node)."""
    segs = node.segments
    if segs is None:
        segs = {}
        for bit, bucket in zip(BITS[node.data_map], node.buckets, strict=True):
            segs[bit] = encode_bucket(bucket)
        for bit, child in zip(BITS[node.node_map], node.children, strict=True):
            segs[bit] = _link_item(child)
        object.__setattr__(node, "segments", segs)
    return segs


def assemble_node(data_map: int, node_map: int, segments: dict[int, bytes], mirror_bat: Cid | None) -> bytes:
    """The node bytes from each position's encoded item: buckets in increasing, links in decreasing bit
    order, wrapped in the mirror-BAT map when there is one."""
    n = data_map.bit_count() + node_map.bit_count()
    parts = [
        b"\x83",
        _bitmap_item(data_map),
        _bitmap_item(node_map),
        _ARRAY_HEAD[n] if n < 256 else _head(4, n),
    ]
    parts.extend(segments[bit] for bit in BITS[data_map])
    parts.extend(segments[bit] for bit in reversed(BITS[node_map]))
    body = b"".join(parts)
    if mirror_bat is None:
        return body
    # {"d": body, "bats": [h'batid']}: canonical dag-cbor key order is length first, so "d" precedes "bats".
    return b"\xa2\x61d" + body + b"\x64bats\x81" + _bytes_item(mirror_bat.to_bytes())


def encode_node(node: ChampNode) -> bytes:
    """Serialise a node exactly as Java Peergos does."""
    return assemble_node(node.data_map, node.node_map, node_segments(node), node.mirror_bat)


def node_to_cbor(node: ChampNode) -> CborValue:
    """The node as a generic dag-cbor value tree (for tests and debugging; `encode_node` is the fast path)."""
    contents: list[CborValue] = [[x for key, value in b for x in (key, value)] for b in node.buckets]
    contents.extend(reversed(node.children))
    body = [_bitmap_bytes(node.data_map), _bitmap_bytes(node.node_map), contents]
    if node.mirror_bat is None:
        return body
    return {"d": body, "bats": [node.mirror_bat.to_bytes()]}


def _bitmap_bytes(bits: int) -> bytes:
    return b"" if bits == 0 else bytes((bits,))


# ---- decoding --------------------------------------------------------------------------------------


def _bitmap(value: CborValue, what: str) -> int:
    if type(value) is not bytes:
        raise DecodeError(f"CHAMP node: {what} must be a byte string")
    if len(value) == 0:
        return 0
    if len(value) != 1 or value[0] == 0:
        raise DecodeError(f"CHAMP node: {what} is not a trimmed 8-bit BitSet")
    return value[0]


def _bucket(value: CborValue) -> Bucket:
    if type(value) is not list:
        raise DecodeError("CHAMP node: a bucket slot does not hold a bucket")
    n = len(value)
    if n == 0 or n % 2 or n > 2 * MAX_BUCKET:
        raise DecodeError(f"CHAMP node: bucket of {n} items (want 1..{MAX_BUCKET} key/value pairs)")
    entries: list[Entry] = []
    prev: bytes | None = None
    for i in range(0, n, 2):
        key = value[i]
        if type(key) is not bytes:
            raise DecodeError("CHAMP node: bucket key is not a byte string")
        if prev is not None and key_order(prev) >= key_order(key):
            raise DecodeError("CHAMP node: bucket keys are not strictly sorted by (length, bytes)")
        prev = key
        entries.append((key, value[i + 1]))
    return tuple(entries)


def _child(value: CborValue) -> Cid:
    if type(value) is not Cid:
        raise DecodeError("CHAMP node: a child slot does not hold a merkle link")
    if value.version != 1 or value.codec != CODEC_DAG_CBOR:
        raise DecodeError("CHAMP node: a child link is not a dag-cbor CIDv1")
    return value


def node_from_cbor(value: CborValue) -> ChampNode:
    """Validate a decoded dag-cbor value as a CHAMP node (either form)."""
    mirror: Cid | None = None
    if type(value) is dict:
        if set(value) != {"d", "bats"}:
            raise DecodeError("CHAMP root map must have exactly the fields 'd' and 'bats'")
        bats = value["bats"]
        if type(bats) is not list or len(bats) != 1 or type(bats[0]) is not bytes:
            raise DecodeError("CHAMP root: 'bats' must be a list of one BatId")
        mirror = Cid.decode(bats[0])
        value = value["d"]
    if type(value) is not list or len(value) != 3:
        raise DecodeError("CHAMP node must be a 3-item CBOR array")
    data_map = _bitmap(value[0], "dataMap")
    node_map = _bitmap(value[1], "nodeMap")
    if data_map & node_map:
        raise DecodeError("CHAMP node: a position is both a bucket and a child")
    contents = value[2]
    if type(contents) is not list:
        raise DecodeError("CHAMP node: contents must be a CBOR array")
    nd, nn = data_map.bit_count(), node_map.bit_count()
    if len(contents) != nd + nn:
        raise DecodeError(f"CHAMP node: {len(contents)} contents for {nd} buckets and {nn} children")
    buckets = tuple(_bucket(contents[i]) for i in range(nd))
    children = tuple(_child(contents[i]) for i in range(len(contents) - 1, nd - 1, -1))
    return ChampNode(data_map, node_map, buckets, children, mirror)


def decode_node(data: bytes | bytearray | memoryview) -> ChampNode:
    """Strictly decode a CHAMP node block; DecodeError on anything malformed or non-canonical."""
    if len(data) > MAX_NODE_BYTES:
        raise DecodeError(f"CHAMP node of {len(data)} bytes exceeds {MAX_NODE_BYTES}")
    node = node_from_cbor(dag_cbor.decode(data, max_size=MAX_NODE_BYTES))
    # Values are arbitrary dag-cbor; cbor2 accepts some non-canonical forms of them (e.g. unsorted map
    # keys), so the only complete canonicality check is a re-encoding.
    if encode_node(node) != bytes(data):
        raise DecodeError("CHAMP node is not in canonical dag-cbor form")
    return node


__all__ = [
    "BIT_WIDTH",
    "EMPTY_NODE",
    "EMPTY_NODE_BYTES",
    "MAX_BUCKET",
    "MAX_DEPTH",
    "MAX_NODE_BYTES",
    "BITS",
    "WIDTH",
    "Bucket",
    "ChampNode",
    "CborValue",
    "Entry",
    "assemble_node",
    "decode_node",
    "encode_bucket",
    "encode_node",
    "encode_value",
    "hash_int",
    "key_order",
    "link_item",
    "mask",
    "node_from_cbor",
    "node_segments",
    "node_to_cbor",
]
