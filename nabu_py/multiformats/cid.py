"""Content identifiers (https://github.com/multiformats/cid).

CIDv1 bytes = varint(1) || varint(codec) || multihash; CIDv0 is a bare sha2-256 multihash (34 bytes,
`Qm...` in base58) implying dag-pb. Peergos prints CIDv1 as multibase base58btc (`z...`,
spec/peergos.md §1.5) and so does `str(cid)`; kubo/Nabu APIs print base32 (`to_base32()`).

`Cid` is immutable by convention (slots, no setters), hashable and compared by its byte form. Decoding
is strict: unknown versions, trailing bytes and malformed multihashes are DecodeErrors.
"""

from __future__ import annotations

from nabu_py.errors import DecodeError, HashMismatch
from nabu_py.multiformats import multibase, varint
from nabu_py.multiformats import multihash as _mh

CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
CODEC_DAG_CBOR = 0x71
CODEC_LIBP2P_KEY = 0x72

MAX_CID_BYTES = 256
MAX_CID_TEXT = 512


class Cid:
    """A CID: `version`, `codec`, `multihash` (bytes); `bytes(cid)` is its binary form."""

    __slots__ = ("_bytes", "codec", "multihash", "version")

    version: int
    codec: int
    multihash: bytes
    _bytes: bytes

    def __init__(self, version: int, codec: int, mh: bytes) -> None:
        if version == 0:
            if codec != CODEC_DAG_PB or len(mh) != 34 or mh[:2] != b"\x12\x20":
                raise ValueError("CIDv0 must be a dag-pb sha2-256 multihash")
            raw = bytes(mh)
        elif version == 1:
            raw = b"\x01" + varint.encode(codec) + mh
        else:
            raise ValueError(f"unsupported CID version {version}")
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "multihash", bytes(mh))
        object.__setattr__(self, "_bytes", raw)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Cid is immutable")

    # ---- constructors -------------------------------------------------------------------------
    @classmethod
    def v1(cls, codec: int, mh: bytes) -> Cid:
        """A CIDv1 over an existing multihash (not re-validated: callers build it themselves)."""
        return cls(1, codec, mh)

    @classmethod
    def for_block(cls, codec: int, data: bytes, hash_code: int = _mh.SHA2_256) -> Cid:
        """The CIDv1 of a block's bytes (sha2-256 unless told otherwise)."""
        return cls(1, codec, _mh.compute(hash_code, data))

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Cid:
        """Parse binary CID bytes (v0 or v1); DecodeError on anything malformed."""
        if len(data) == 36 and data[0] == 1 and data[1] < 0x80 and data[2] == 0x12 and data[3] == 0x20:
            # CIDv1, one-byte codec, sha2-256: nearly every link in a block (dag-cbor decodes one per
            # tag 42). The bytes are already canonical, so they are kept as they are.
            raw = bytes(data)
            cid = object.__new__(cls)
            object.__setattr__(cid, "version", 1)
            object.__setattr__(cid, "codec", raw[1])
            object.__setattr__(cid, "multihash", raw[2:])
            object.__setattr__(cid, "_bytes", raw)
            return cid
        cid, end = cls.decode_from(data, 0)
        if end != len(data):
            raise DecodeError("trailing bytes after CID")
        return cid

    @classmethod
    def decode_from(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Cid, int]:
        """Parse a CID at `offset` of a larger buffer; return (cid, end offset)."""
        if len(data) - offset >= 2 and data[offset] == 0x12 and data[offset + 1] == 0x20:
            end = offset + 34
            if end > len(data):
                raise DecodeError("truncated CIDv0")
            return cls(0, CODEC_DAG_PB, bytes(data[offset:end])), end
        version, i = varint.decode_from(data, offset)
        if version != 1:
            raise DecodeError(f"unsupported CID version {version}")
        codec, i = varint.decode_from(data, i)
        start = i
        _code, _dig, end = _mh.decode_from(data, i)
        if end - offset > MAX_CID_BYTES:
            raise DecodeError("CID too long")
        return cls(1, codec, bytes(data[start:end])), end

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID string: `Qm...` (v0) or any supported multibase (`z...`, `b...`)."""
        if not isinstance(text, str):
            raise DecodeError("CID text must be a string")
        if len(text) > MAX_CID_TEXT:
            raise DecodeError("CID text too long")
        if len(text) == 46 and text.startswith("Qm"):
            return cls.decode(multibase.b58decode(text))
        return cls.decode(multibase.decode(text))

    # ---- views ----------------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        return self._bytes

    def to_bytes(self) -> bytes:
        """Binary form (same as `bytes(cid)`)."""
        return self._bytes

    @property
    def hash_code(self) -> int:
        """The multihash function code (0x12 sha2-256, 0x00 identity, ...)."""
        return _mh.decode(self.multihash)[0]

    @property
    def digest(self) -> bytes:
        """The raw digest inside the multihash."""
        return _mh.decode(self.multihash)[1]

    @property
    def is_identity(self) -> bool:
        """True when the content is inlined in the CID (identity multihash)."""
        return self.multihash[0] == 0

    def to_base58(self) -> str:
        """Plain base58btc of the CID bytes, no multibase prefix (Peergos `toBase58()`)."""
        return multibase.b58encode(self._bytes)

    def to_base32(self) -> str:
        """kubo/Nabu text form: base32 multibase for v1, base58 for v0."""
        if self.version == 0:
            return self.to_base58()
        return multibase.encode(self._bytes, "base32")

    def __str__(self) -> str:
        if self.version == 0:
            return self.to_base58()
        return "z" + multibase.b58encode(self._bytes)

    def __repr__(self) -> str:
        return f"Cid({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cid) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __lt__(self, other: Cid) -> bool:
        return self._bytes < other._bytes

    def __reduce__(self) -> tuple[object, ...]:
        return (Cid.decode, (self._bytes,))

    def verify(self, data: bytes) -> None:
        """Raise HashMismatch unless `data` is the content this CID names."""
        code = self.multihash[0]
        if code == 0x12 and self.multihash[1] == 0x20:
            import hashlib

            if hashlib.sha256(data).digest() != self.multihash[2:]:
                raise HashMismatch(f"block does not hash to {self}")
            return
        _mh.verify(self.multihash, data)
