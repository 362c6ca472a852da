"""Block Access Tokens: BATs, BAT ids and where blocks carry them (spec/peergos.md §6.2, §6.4, §7;
spec/nabu.md §2.6; vectors README "cbor.json" Bat/BatId/RawBlockPrefix rows).

Theory of operation
-------------------
A BAT is 32 random bytes (CBOR `{s: h'secret'}`, text `z` + base58 of the secret). Private blocks list
the ids of the BATs that may read them, and a reader proves possession of one with a signed request
(`block_auth`). There are **three** id derivations, all CIDv1 with codec raw:

- `BatId.inline(bat)`        identity multihash of the secret — the BAT itself is in the block;
- `BatId.sha256(bat)`        sha2-256 of the secret — mirror BATs held by the home server;
- `BatId.calculate_id(bat)`  sha2-256 of the Bat's CBOR — the per-fragment ids in `BatWithId`.

A BatId's CBOR is a byte string of the CID bytes. `BatWithId` is `{b: Bat, i: h'cid'}` and travels as
the base58btc multibase of that CBOR (`bat=` parameters).

Where ids live: **raw** blocks (encrypted file fragments) start with the 8-byte magic
`71 1d 10 cf 3d 32 2f 2b` followed by a CBOR list of BatId byte strings (the inline id, then the mirror
id if any); the CID covers the prefix. A prefix is at most 100 bytes; parsing is strict (canonical
CBOR heads, definite lengths, byte strings only, valid BatIds) and never looks past those 100 bytes.
**dag-cbor** blocks (cryptree nodes) list them under the top-level map key `bats`. Blocks without ids
(other codecs, raw blocks without the magic, maps without `bats`) are public.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Self

from nabu_py.codec import dag_cbor
from nabu_py.multiformats import multibase, multihash
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.cbor import CborMixin, CborValue, as_bytes, expect_list, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.errors import DecodeError

BAT_LENGTH = 32
RAW_BLOCK_MAGIC_PREFIX = bytes((113, 29, 16, 0xCF, 61, 50, 47, 43))
MAX_RAW_BLOCK_PREFIX_SIZE = 100
MAX_BATS_PER_BLOCK = 64
MAX_BAT_TEXT = 256
_MAX_BAT_ID_BYTES = 40
_BAT_CBOR_HEAD = b"\xa1\x61s\x58\x20"
"""A Bat's dag-cbor up to its secret: map(1), text "s", bytes(32) (`Bat.serialize()` = head + secret)."""
_SHA256_PREFIX = b"\x12\x20"
_BAT_KEYS = frozenset({"s"})
_BAT_WITH_ID_KEYS = frozenset({"b", "i"})


@dataclass(frozen=True)
class Bat(CborMixin):
    """A 32-byte block access token (CBOR `{s: h'secret'}`)."""

    secret: bytes = dc_field(repr=False)

    def __post_init__(self) -> None:
        if type(self.secret) is not bytes or len(self.secret) != BAT_LENGTH:
            raise ValueError("a BAT is exactly 32 bytes")

    @classmethod
    def random(cls, rng: Rng = SYSTEM_RNG) -> Bat:
        """A fresh BAT."""
        return cls(rng.random_bytes(BAT_LENGTH))

    def encode_secret(self) -> str:
        """`z` + base58 of the secret (Peergos `encodeSecret`; the S3 secret key is `AWS4` + this)."""
        return multibase.encode(self.secret, "base58btc")

    @classmethod
    def from_string(cls, text: str) -> Bat:
        """Parse the `encode_secret` form."""
        if len(text) > MAX_BAT_TEXT:
            raise DecodeError("BAT text too long")
        raw = multibase.decode(text)
        if len(raw) != BAT_LENGTH:
            raise DecodeError("a BAT is exactly 32 bytes")
        return cls(raw)

    def inline_id(self) -> BatId:
        """`BatId.inline(self)`."""
        return BatId.inline(self)

    def sha256_id(self) -> BatId:
        """`BatId.sha256(self)` (mirror BAT id)."""
        return BatId.sha256(self)

    def calculate_id(self) -> BatId:
        """`Bat.calculateId`: CIDv1 raw sha2-256 of this Bat's CBOR (fragment ids in BatWithId)."""
        digest = hashlib.sha256(_BAT_CBOR_HEAD + self.secret).digest()
        return BatId(Cid.v1(CODEC_RAW, _SHA256_PREFIX + digest))

    def to_cbor(self) -> CborValue:
        return {"s": self.secret}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "Bat")
        only_keys(m, _BAT_KEYS, "Bat")
        return cls(as_bytes(cbor_field(m, "s", "Bat"), "Bat.s", length=BAT_LENGTH))


def _check_bat_cid(cid: Cid) -> None:
    if cid.version != 1 or cid.codec != CODEC_RAW:
        raise DecodeError("a BatId is a CIDv1 with codec raw")
    code = cid.multihash[0]
    if code == multihash.IDENTITY:
        if len(cid.digest) != BAT_LENGTH:
            raise DecodeError("an inline BatId holds exactly 32 bytes")
    elif code != multihash.SHA2_256:
        raise DecodeError("a BatId uses the identity or sha2-256 multihash")


@dataclass(frozen=True)
class BatId(CborMixin):
    """The id of a BAT: a CIDv1 raw (identity = inline BAT, or sha2-256). CBOR: h'cid bytes'."""

    cid: Cid

    def __post_init__(self) -> None:
        if not isinstance(self.cid, Cid):
            raise TypeError("BatId wraps a Cid")
        _check_bat_cid(self.cid)

    @classmethod
    def inline(cls, bat: Bat) -> BatId:
        """Identity CID of the secret: the BAT travels inside the block."""
        return cls(Cid.v1(CODEC_RAW, multihash.wrap(multihash.IDENTITY, bat.secret)))

    @classmethod
    def sha256(cls, bat: Bat) -> BatId:
        """CIDv1 raw sha2-256 of the bare secret (mirror BATs)."""
        return cls(Cid.for_block(CODEC_RAW, bat.secret))

    @classmethod
    def decode(cls, data: bytes) -> BatId:
        """Parse CID bytes."""
        return cls(Cid.decode(data))

    @property
    def is_inline(self) -> bool:
        """True when the BAT itself is embedded."""
        return self.cid.is_identity

    def inline_bat(self) -> Bat | None:
        """The embedded BAT of an inline id, else None."""
        return Bat(self.cid.digest) if self.cid.is_identity else None

    def matches(self, bat: Bat) -> bool:
        """True if `bat` has this id under any of the three derivations."""
        # Every BatId is a CIDv1 raw with an identity or sha2-256 multihash (checked on construction), so
        # comparing digests is comparing the three derived ids, without building them (a hot path of
        # `champ/get/bulk`, which checks one BAT per value block).
        digest = self.cid.digest
        if self.cid.multihash[0] == multihash.IDENTITY:
            return digest == bat.secret
        return (
            digest == hashlib.sha256(bat.secret).digest()
            or digest == hashlib.sha256(_BAT_CBOR_HEAD + bat.secret).digest()
        )

    def to_bytes(self) -> bytes:
        """The CID bytes."""
        return self.cid.to_bytes()

    def to_base58(self) -> str:
        """Plain base58 of the CID bytes (the S3 access key id)."""
        return self.cid.to_base58()

    def __str__(self) -> str:
        return str(self.cid)

    def to_cbor(self) -> CborValue:
        return self.cid.to_bytes()

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        return cls(Cid.decode(as_bytes(value, "BatId", max_len=_MAX_BAT_ID_BYTES)))


@dataclass(frozen=True)
class BatWithId(CborMixin):
    """A BAT with its (non-inline) id: CBOR `{b: Bat, i: h'cid'}`; text = base58btc of the CBOR."""

    bat: Bat
    id: BatId

    def __post_init__(self) -> None:
        if self.id.is_inline or not self.id.matches(self.bat):
            raise ValueError("a BatWithId's id must be the BAT's sha256 id or calculated id")

    @classmethod
    def calculated(cls, bat: Bat) -> BatWithId:
        """`bat` with its calculated id (Peergos `new BatWithId(bat, bat.calculateId())`), without
        re-deriving the id to check it (it is right by construction)."""
        out = object.__new__(cls)
        object.__setattr__(out, "bat", bat)
        object.__setattr__(out, "id", bat.calculate_id())
        return out

    def encode(self) -> str:
        """`z` + base58 of the CBOR (Peergos `BatWithId.encode`)."""
        return multibase.encode(self.serialize(), "base58btc")

    @classmethod
    def decode(cls, text: str) -> BatWithId:
        """Parse the `encode` form."""
        if len(text) > MAX_BAT_TEXT:
            raise DecodeError("BatWithId text too long")
        return cls.deserialize(multibase.decode(text))

    def to_cbor(self) -> CborValue:
        return {"b": self.bat.to_cbor(), "i": self.id.to_cbor()}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        m = expect_map(value, "BatWithId")
        only_keys(m, _BAT_WITH_ID_KEYS, "BatWithId")
        bat = Bat.from_cbor(cbor_field(m, "b", "BatWithId"))
        bat_id = BatId.from_cbor(cbor_field(m, "i", "BatWithId"))
        try:
            return cls(bat, bat_id)
        except ValueError as e:
            raise DecodeError(f"BatWithId: {e}") from None


# ---- raw block prefix ---------------------------------------------------------------------------------
def create_raw_block_prefix(inline_bat: Bat, mirror_bat_id: BatId | None = None) -> bytes:
    """`magic || cbor([BatId.inline(inline_bat), mirror id?])`, put in front of raw fragment blocks."""
    ids: list[CborValue] = [BatId.inline(inline_bat).to_cbor()]
    if mirror_bat_id is not None:
        ids.append(mirror_bat_id.to_cbor())
    prefix = RAW_BLOCK_MAGIC_PREFIX + dag_cbor.encode(ids)
    if len(prefix) > MAX_RAW_BLOCK_PREFIX_SIZE:
        raise ValueError("raw block prefix longer than 100 bytes")
    return prefix


def _head(buf: bytes, i: int, end: int) -> tuple[int, int, int]:
    """Read one canonical CBOR head (major type, argument, next offset) within buf[:end]."""
    if i >= end:
        raise DecodeError("raw block BAT prefix: truncated CBOR")
    initial = buf[i]
    major, info = initial >> 5, initial & 31
    if info < 24:
        return major, info, i + 1
    if info == 24:
        if i + 2 > end:
            raise DecodeError("raw block BAT prefix: truncated CBOR")
        value = buf[i + 1]
        if value < 24:
            raise DecodeError("raw block BAT prefix: non-canonical CBOR length")
        return major, value, i + 2
    raise DecodeError("raw block BAT prefix: CBOR length too large or indefinite")


def parse_raw_block_prefix(block: bytes) -> tuple[list[BatId], int]:
    """The BAT ids of a raw block and the offset where its payload starts.

    Without the magic the block is public: `([], 0)`. With it, the CBOR list must be canonical, hold
    only valid BatId byte strings and end within the first 100 bytes; anything else is a DecodeError.
    """
    magic_len = len(RAW_BLOCK_MAGIC_PREFIX)
    if block[:magic_len] != RAW_BLOCK_MAGIC_PREFIX:
        return [], 0
    end = min(len(block), MAX_RAW_BLOCK_PREFIX_SIZE)
    major, count, i = _head(block, magic_len, end)
    if major != 4:
        raise DecodeError("raw block BAT prefix: expected a CBOR array")
    ids: list[BatId] = []
    for _ in range(count):
        major, length, i = _head(block, i, end)
        if major != 2:
            raise DecodeError("raw block BAT prefix: BatIds must be byte strings")
        if i + length > end:
            raise DecodeError("raw block BAT prefix: longer than 100 bytes or truncated")
        ids.append(BatId.decode(bytes(block[i : i + length])))
        i += length
    return ids, i


def remove_raw_block_prefix(block: bytes) -> bytes:
    """The payload of a raw block (the block itself if it has no BAT prefix)."""
    _ids, offset = parse_raw_block_prefix(block)
    return block[offset:] if offset else block


def cbor_block_bat_ids(block: bytes) -> list[BatId]:
    """BAT ids of a dag-cbor block: the top-level map's `bats` list, else none."""
    value = dag_cbor.decode(block)
    if type(value) is not dict or "bats" not in value:
        return []
    items = expect_list(value["bats"], "block.bats", max_len=MAX_BATS_PER_BLOCK)
    return [BatId.from_cbor(item) for item in items]


def block_bat_ids(cid: Cid, block: bytes) -> list[BatId]:
    """The BAT ids that guard a block, by codec (raw prefix or dag-cbor `bats`); [] if public."""
    if cid.codec == CODEC_RAW:
        return parse_raw_block_prefix(block)[0]
    if cid.codec == CODEC_DAG_CBOR:
        return cbor_block_bat_ids(block)
    return []


def has_raw_block_prefix(block: bytes) -> bool:
    """Whether a raw block starts with the BAT magic."""
    return block[: len(RAW_BLOCK_MAGIC_PREFIX)] == RAW_BLOCK_MAGIC_PREFIX


__all__ = [
    "BAT_LENGTH",
    "MAX_RAW_BLOCK_PREFIX_SIZE",
    "RAW_BLOCK_MAGIC_PREFIX",
    "Bat",
    "BatId",
    "BatWithId",
    "block_bat_ids",
    "cbor_block_bat_ids",
    "create_raw_block_prefix",
    "has_raw_block_prefix",
    "parse_raw_block_prefix",
    "remove_raw_block_prefix",
]
