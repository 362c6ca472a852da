"""The encrypted payload of a cryptree node: `FragmentedPaddedCipherText` and its raw fragment blocks
(spec/peergos.md §6.4, §7, §18 items 10-11; vectors README "cryptree.json").

Theory of operation
-------------------
A node's `d` field holds a directory's child list or a file chunk's bytes (as a CBOR byte string),
encrypted with secretbox under a fresh nonce after zero padding that hides the exact size:

* **Padding** to 4096-byte blocks. Plaintexts up to 4096 bytes are padded to 4096; longer ones keep a
  6-byte allowance for the CBOR header outside the blocks: `padded = ceil((len - 6) / 4096) * 4096 + 6`.
  So a 5 MiB chunk (CBOR header 5 bytes) pads to exactly 5 MiB + 6.
* **Inline** when the padded plaintext is at most 4102 bytes: `{n: nonce, f: [h'ciphertext']}`.
* **Fragments** otherwise. The ciphertext is `tag(16) || ...`, so `len mod 4096` is 22 bytes (tag plus
  the 6-byte allowance): that `h`eader stays in the node and the rest, an exact multiple of 4096, is cut
  into 1 MiB pieces (the last one shorter). Each piece is stored as a raw block
  `magic || cbor([BatId.inline(bat_i), mirror BatId?]) || piece` under CIDv1(raw, sha256(whole block)),
  with a fresh random BAT per piece, and the node lists the blocks as tag-42 links in `f` and their BATs
  as `bats: [{b: Bat, i: Bat.calculate_id}]` — note the id is sha256 of the Bat's *CBOR*.

Decryption takes the fragment blocks in order, checks each against its CID (so a server cannot alter
the BAT prefix, which the MAC does not cover) and that its prefix carries the fragment's inline BAT,
strips the prefixes, joins `header || pieces`, opens the secretbox and reads one CBOR item followed only
by zero bytes. Two legacy shapes are read as Peergos reads them: a header next to inline ciphertext
(joined before opening), and a single identity-multihash link whose digest *is* the inline ciphertext
(re-serialised inline, as Peergos does).

Everything a server supplies is bounded: 24-byte nonce, header below 4096 bytes, at most 16 fragments of
at most 1 MiB + 100 bytes, inline ciphertext at most 1 MiB + 4 KiB, one BAT per fragment (or none, for
legacy public fragments). Malformed shapes are `DecodeError`s (`HashMismatch` for a block that does not
match its CID); a wrong key or altered ciphertext is `BadCiphertext`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Self

from nabu_py.codec import dag_cbor
from nabu_py.multiformats import multihash
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.cbor import (
    Cborable,
    CborMixin,
    CborValue,
    as_bytes,
    expect_list,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.bat import (
    MAX_RAW_BLOCK_PREFIX_SIZE,
    Bat,
    BatId,
    BatWithId,
    create_raw_block_prefix,
    parse_raw_block_prefix,
)
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import MAC_BYTES, NONCE_BYTES, SymmetricKey
from peergos_node.errors import DecodeError

PADDING_BLOCK = 4096
"""Padding block of node payloads (Java `CryptreeNode.MIN_FRAGMENT_SIZE`)."""
MAX_CBOR_OVERHEAD = 6
"""Bytes left outside the padding blocks for the CBOR header of large payloads."""
MAX_INLINE_PADDED = PADDING_BLOCK + MAX_CBOR_OVERHEAD
"""Padded payloads up to this size are stored inline in the node."""
FRAGMENT_SIZE = 1024 * 1024
"""Largest fragment payload (Java `Fragment.MAX_LENGTH`)."""
MAX_FRAGMENT_BLOCK_SIZE = FRAGMENT_SIZE + MAX_RAW_BLOCK_PREFIX_SIZE
"""Largest fragment block including its BAT prefix (`Fragment.MAX_LENGTH_WITH_BAT_PREFIX`)."""
MAX_FRAGMENTS = 16
"""Most fragments one payload may have when decoding (a 5 MiB chunk has 5)."""
MAX_INLINE_CIPHERTEXT = FRAGMENT_SIZE + PADDING_BLOCK
MAX_DECRYPTED_SIZE = MAX_FRAGMENTS * FRAGMENT_SIZE + PADDING_BLOCK
_KEYS = frozenset({"n", "h", "f", "bats"})


def padded_length(plaintext_length: int, padding_block: int = PADDING_BLOCK) -> int:
    """Length after padding (Java `FragmentedPaddedCipherText.pad` with the 6-byte CBOR allowance)."""
    if plaintext_length < 0 or padding_block < 1:
        raise ValueError("lengths must be non-negative and the padding block positive")
    excluded = 0 if plaintext_length <= padding_block else MAX_CBOR_OVERHEAD
    blocks = (plaintext_length - excluded + padding_block - 1) // padding_block
    return blocks * padding_block + excluded


def _piece_bounds(total: int, start: int, max_fragment: int) -> list[tuple[int, int]]:
    """Java `split`: the [start, end) of each fragment of `total` ciphertext bytes after the header."""
    rest = total - start
    mod = rest % 256
    aligned = rest + (256 - mod if mod != 0 or rest == 0 else 0)
    count = -(-aligned // max_fragment)
    bounds = []
    for i in range(count):
        lo = start + max_fragment * i
        bounds.append((lo, min(total, lo + max_fragment)))
    return bounds


@dataclass(frozen=True)
class FragmentLayout:
    """How a payload of a given plaintext length is stored (lengths only)."""

    plaintext_length: int
    padded_length: int
    ciphertext_length: int
    inline: bool
    header_length: int
    fragment_lengths: tuple[int, ...]

    @classmethod
    def of(
        cls, plaintext_length: int, padding_block: int = PADDING_BLOCK, max_fragment: int = FRAGMENT_SIZE
    ) -> FragmentLayout:
        """The layout `FragmentedPaddedCipherText.build` produces for this plaintext length."""
        padded = padded_length(plaintext_length, padding_block)
        total = padded + MAC_BYTES
        if padded <= MAX_INLINE_PADDED:
            return cls(plaintext_length, padded, total, True, 0, ())
        header = total % padding_block
        pieces = tuple(hi - lo for lo, hi in _piece_bounds(total, header, max_fragment))
        return cls(plaintext_length, padded, total, False, header, pieces)


def _byte_string_head(n: int) -> bytes:
    if n < 24:
        return bytes((0x40 | n,))
    if n < 1 << 8:
        return bytes((0x58, n))
    if n < 1 << 16:
        return b"\x59" + n.to_bytes(2, "big")
    if n < 1 << 32:
        return b"\x5a" + n.to_bytes(4, "big")
    return b"\x5b" + n.to_bytes(8, "big")


def cbor_byte_string(data: bytes | memoryview) -> bytes:
    """The canonical CBOR encoding of a byte string (what a file chunk's plaintext is)."""
    return b"".join((_byte_string_head(len(data)), data))


@dataclass(frozen=True)
class Fragment:
    """A raw fragment block to store next to its node: `magic || BAT ids || piece` under `cid`."""

    cid: Cid
    block: bytes = dc_field(repr=False)
    bat: BatWithId = dc_field(repr=False)

    @property
    def prefix_length(self) -> int:
        """Length of the BAT prefix in front of the ciphertext piece."""
        return parse_raw_block_prefix(self.block)[1]

    @property
    def payload(self) -> bytes:
        """The ciphertext piece without its BAT prefix."""
        return self.block[self.prefix_length :]


@dataclass(frozen=True)
class FragmentedPaddedCipherText(CborMixin):
    """Padded, encrypted node payload: inline ciphertext or a header plus linked fragment blocks."""

    nonce: bytes
    inline: bytes | None = dc_field(default=None, repr=False)
    header: bytes | None = dc_field(default=None, repr=False)
    fragments: tuple[Cid, ...] = ()
    bats: tuple[BatWithId, ...] = ()

    def __post_init__(self) -> None:
        if type(self.nonce) is not bytes or len(self.nonce) != NONCE_BYTES:
            raise ValueError("a nonce is 24 bytes")
        if (self.inline is None) == (not self.fragments):
            raise ValueError("a payload is either inline or fragmented")
        if self.inline is not None and self.bats:
            raise ValueError("inline payloads have no fragment BATs")
        if self.bats and len(self.bats) != len(self.fragments):
            raise ValueError("one BAT per fragment (or none)")

    # ---- building -------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        key: SymmetricKey,
        plaintext: bytes,
        *,
        mirror_bat_id: BatId | None = None,
        rng: Rng = SYSTEM_RNG,
        padding_block: int = PADDING_BLOCK,
        max_fragment_size: int = FRAGMENT_SIZE,
    ) -> tuple[FragmentedPaddedCipherText, list[Fragment]]:
        """Pad, encrypt and split serialised CBOR (Java `FragmentedPaddedCipherText.build`).

        Draws the nonce, then one BAT per fragment, from `rng`. Returns the payload for the node and the
        fragment blocks to store (empty when inline).
        """
        return cls._build([plaintext], key, mirror_bat_id, rng, padding_block, max_fragment_size)

    @classmethod
    def _build(
        cls,
        parts: list[bytes | memoryview],
        key: SymmetricKey,
        mirror_bat_id: BatId | None,
        rng: Rng,
        padding_block: int = PADDING_BLOCK,
        max_fragment_size: int = FRAGMENT_SIZE,
    ) -> tuple[FragmentedPaddedCipherText, list[Fragment]]:
        if not 1 <= max_fragment_size <= FRAGMENT_SIZE:
            raise ValueError("fragments are at most 1 MiB")
        nonce = key.create_nonce(rng)
        length = sum(len(p) for p in parts)
        padded = padded_length(length, padding_block)
        ciphertext = key.encrypt(b"".join((*parts, bytes(padded - length))), nonce)
        if padded <= MAX_INLINE_PADDED:
            return cls(nonce, inline=ciphertext), []
        header_size = len(ciphertext) % padding_block
        bounds = _piece_bounds(len(ciphertext), header_size, max_fragment_size)
        piece_bats = [Bat.random(rng) for _ in bounds]
        view = memoryview(ciphertext)
        fragments: list[Fragment] = []
        for bat, (lo, hi) in zip(piece_bats, bounds, strict=True):
            block = b"".join((create_raw_block_prefix(bat, mirror_bat_id), view[lo:hi]))
            bat_with_id = BatWithId(bat, bat.calculate_id())
            fragments.append(Fragment(Cid.for_block(CODEC_RAW, block), block, bat_with_id))
        payload = cls(
            nonce,
            header=ciphertext[:header_size],
            fragments=tuple(f.cid for f in fragments),
            bats=tuple(f.bat for f in fragments),
        )
        return payload, fragments

    @classmethod
    def build_value(
        cls,
        key: SymmetricKey,
        value: Cborable,
        *,
        mirror_bat_id: BatId | None = None,
        rng: Rng = SYSTEM_RNG,
    ) -> tuple[FragmentedPaddedCipherText, list[Fragment]]:
        """`build` over the CBOR serialisation of a value (a directory's `ChildrenLinks`)."""
        return cls.build(key, dag_cbor.encode(value.to_cbor()), mirror_bat_id=mirror_bat_id, rng=rng)

    @classmethod
    def build_data(
        cls,
        key: SymmetricKey,
        data: bytes | memoryview,
        *,
        mirror_bat_id: BatId | None = None,
        rng: Rng = SYSTEM_RNG,
    ) -> tuple[FragmentedPaddedCipherText, list[Fragment]]:
        """`build` over file chunk bytes (serialised as a CBOR byte string)."""
        return cls._build([_byte_string_head(len(data)), data], key, mirror_bat_id, rng)

    # ---- reading --------------------------------------------------------------------------------------
    @property
    def is_inline(self) -> bool:
        """True when the ciphertext is stored in the node itself."""
        return self.inline is not None

    def with_fragments(self, fragments: Sequence[Cid]) -> FragmentedPaddedCipherText:
        """The same payload with re-stored fragment blocks (e.g. after adding a mirror BAT to them)."""
        if len(fragments) != len(self.fragments):
            raise ValueError("the fragment count cannot change")
        return FragmentedPaddedCipherText(self.nonce, self.inline, self.header, tuple(fragments), self.bats)

    def _ciphertext(self, blocks: Sequence[bytes]) -> bytes:
        if self.inline is not None:
            if blocks:
                raise ValueError("an inline payload has no fragment blocks")
            return self.inline if self.header is None else self.header + self.inline
        if len(blocks) != len(self.fragments):
            raise ValueError(f"expected {len(self.fragments)} fragment blocks, got {len(blocks)}")
        parts: list[bytes | memoryview] = [self.header or b""]
        for i, (cid, block) in enumerate(zip(self.fragments, blocks, strict=True)):
            if len(block) > MAX_FRAGMENT_BLOCK_SIZE:
                raise DecodeError(f"fragment {i} is larger than a fragment block may be")
            cid.verify(block)
            ids, offset = parse_raw_block_prefix(block)
            if self.bats and (not ids or ids[0] != BatId.inline(self.bats[i].bat)):
                raise DecodeError(f"fragment {i} does not carry its BAT")
            parts.append(memoryview(block)[offset:])
        return b"".join(parts)

    def decrypt_padded(self, key: SymmetricKey, blocks: Sequence[bytes] = ()) -> bytes:
        """The padded plaintext. `blocks` are the fragment blocks in the order of `fragments` (as fetched;
        each is checked against its CID). BadCiphertext on a wrong key or altered ciphertext."""
        return key.decrypt(self._ciphertext(blocks), self.nonce)

    def decrypt(self, key: SymmetricKey, blocks: Sequence[bytes] = ()) -> CborValue:
        """Decrypt and read the single CBOR item (only zero bytes may follow it)."""
        return dag_cbor.decode(
            self.decrypt_padded(key, blocks), allow_zero_padding=True, max_size=MAX_DECRYPTED_SIZE
        )

    def decrypt_data(self, key: SymmetricKey, blocks: Sequence[bytes] = ()) -> bytes:
        """Decrypt a file chunk: the plaintext must be a CBOR byte string."""
        return as_bytes(self.decrypt(key, blocks), "file chunk data")

    # ---- CBOR -----------------------------------------------------------------------------------------
    def to_cbor(self) -> CborValue:
        m: dict[str, CborValue] = {"n": self.nonce}
        if self.header is not None:
            m["h"] = self.header
        if self.inline is not None:
            m["f"] = [self.inline]
        else:
            m["f"] = list(self.fragments)
            m["bats"] = [b.to_cbor() for b in self.bats]
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "FragmentedPaddedCipherText"
        m = expect_map(value, ctx)
        only_keys(m, _KEYS, ctx)
        nonce = as_bytes(cbor_field(m, "n", ctx), f"{ctx}.n", length=NONCE_BYTES)
        header = as_bytes(m["h"], f"{ctx}.h", max_len=PADDING_BLOCK - 1) if "h" in m else None
        items = expect_list(cbor_field(m, "f", ctx), f"{ctx}.f", max_len=MAX_FRAGMENTS)
        if not items:
            raise DecodeError(f"{ctx}: no ciphertext")
        inline: bytes | None = None
        links: tuple[Cid, ...] = ()
        if all(type(x) is bytes for x in items):
            if len(items) != 1:
                raise DecodeError(f"{ctx}: more than one inline ciphertext")
            inline = as_bytes(items[0], f"{ctx}.f", max_len=MAX_INLINE_CIPHERTEXT)
        elif all(type(x) is Cid for x in items):
            if len(items) == 1 and items[0].is_identity:  # legacy: the ciphertext inlined in a CID
                inline = items[0].digest
            else:
                for cid in items:
                    if cid.version != 1 or cid.codec != CODEC_RAW or cid.multihash[:2] != b"\x12\x20":
                        raise DecodeError(f"{ctx}: fragments are CIDv1 raw sha2-256 blocks")
                links = tuple(items)
        else:
            raise DecodeError(f"{ctx}: fragments must be all links or one inline ciphertext")
        if inline is not None and len(inline) + len(header or b"") < MAC_BYTES:
            raise DecodeError(f"{ctx}: inline ciphertext shorter than its tag")
        bats: tuple[BatWithId, ...] = ()
        if "bats" in m:
            if inline is not None:
                raise DecodeError(f"{ctx}: inline payloads have no fragment BATs")
            raw_bats = expect_list(m["bats"], f"{ctx}.bats", max_len=MAX_FRAGMENTS)
            bats = tuple(BatWithId.from_cbor(b) for b in raw_bats)
            if bats and len(bats) != len(links):
                raise DecodeError(f"{ctx}: one BAT per fragment")
        return cls(nonce, inline, header, links, bats)


def identity_fragment_link(ciphertext: bytes) -> Cid:
    """The legacy single-fragment form that inlined ciphertext in an identity CID (for tests/readers)."""
    return Cid.v1(CODEC_RAW, multihash.wrap(multihash.IDENTITY, ciphertext))


__all__ = [
    "FRAGMENT_SIZE",
    "MAX_FRAGMENTS",
    "MAX_INLINE_PADDED",
    "PADDING_BLOCK",
    "Fragment",
    "FragmentLayout",
    "FragmentedPaddedCipherText",
    "cbor_byte_string",
    "identity_fragment_link",
    "padded_length",
]
