"""Protocol Buffers wire format, by hand (https://protobuf.dev/programming-guides/encoding/).

Why not generated code: every libp2p message we speak is small and flat, the `.proto` files under
`proto/` are the source of truth, and a hand-written codec lets each message be a frozen dataclass
with its own size limits (design.md §4 practice 4). This module is the shared layer underneath.

Wire model: a message is a sequence of fields `tag || payload`, tag = varint(field_number << 3 |
wire_type). Wire types handled: 0 VARINT (int32/int64/uint32/uint64/bool/enum), 1 I64 (fixed64,
sfixed64, double), 2 LEN (bytes, string, embedded messages, packed repeated), 5 I32 (fixed32, sfixed32,
float). Groups (wire types 3 and 4, deprecated since proto2) are rejected.

Decoding (`iter_fields`) is strict about structure and lenient about content, like the reference
parsers: varints are at most 10 bytes and below 2**64, field numbers are 1..2**29-1, lengths never
run past the buffer, and anything else is a `DecodeError`. Unknown fields are returned like known
ones, so callers simply skip numbers they do not know; proto3 "last one wins" for repeated scalars is
the caller's choice. Non-minimal varints are accepted, as every protobuf parser does.

Encoding (`Writer`) appends to one bytearray; proto3 callers omit default values themselves (zero,
empty, absent) to produce the same bytes as the reference encoders, which write fields in
field-number order.
"""

from __future__ import annotations

from collections.abc import Iterator

from nabu_py.errors import DecodeError

VARINT = 0
I64 = 1
LEN = 2
SGROUP = 3
EGROUP = 4
I32 = 5

MAX_FIELD_NUMBER = (1 << 29) - 1
_U64 = (1 << 64) - 1
_MAX_VARINT_BYTES = 10

FieldValue = int | bytes
"""A decoded field payload: an int for VARINT/I64/I32, the raw bytes for LEN."""


def encode_varint(value: int) -> bytes:
    """Encode an unsigned varint (0 <= value < 2**64)."""
    if value < 0x80:
        if value < 0:
            raise ValueError(f"unsigned varint out of range: {value}")
        return bytes((value,))
    if value > _U64:
        raise ValueError(f"unsigned varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """Decode one varint at `pos`; return (value, position after it). DecodeError if malformed."""
    end = len(data)
    if pos >= end:
        raise DecodeError("truncated varint")
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    i = pos + 1
    while True:
        if i >= end:
            raise DecodeError("truncated varint")
        if i - pos >= _MAX_VARINT_BYTES:
            raise DecodeError("varint longer than 10 bytes")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value > _U64:
                raise DecodeError("varint exceeds 64 bits")
            return value, i
        shift += 7


def to_int32(value: int) -> int:
    """Interpret a decoded VARINT as int32 (protobuf keeps the low 32 bits, two's complement)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def to_int64(value: int) -> int:
    """Interpret a decoded VARINT or I64 as int64 (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def zigzag_encode(value: int) -> int:
    """sint32/sint64 zig-zag mapping of a signed integer onto an unsigned one."""
    return (value << 1) ^ (value >> 63) if value < 0 else value << 1


def zigzag_decode(value: int) -> int:
    """Inverse of `zigzag_encode`."""
    return (value >> 1) ^ -(value & 1)


def tag(field_number: int, wire_type: int) -> bytes:
    """The encoded tag of a field."""
    if not 1 <= field_number <= MAX_FIELD_NUMBER:
        raise ValueError(f"field number out of range: {field_number}")
    return encode_varint((field_number << 3) | wire_type)


class Writer:
    """Append-only protobuf encoder. Callers write fields in field-number order.

    Every method writes the field unconditionally: proto3 default values are omitted by the caller.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def write_uint(self, field_number: int, value: int) -> Writer:
        """A VARINT field holding an unsigned value (uint32/uint64/bool/non-negative enum)."""
        self._buf += tag(field_number, VARINT)
        self._buf += encode_varint(value)
        return self

    def write_int(self, field_number: int, value: int) -> Writer:
        """A VARINT field holding int32/int64/enum; negatives take 10 bytes (two's complement)."""
        self._buf += tag(field_number, VARINT)
        self._buf += encode_varint(value & _U64 if value < 0 else value)
        return self

    def write_sint(self, field_number: int, value: int) -> Writer:
        """A VARINT field holding a zig-zag encoded sint32/sint64."""
        return self.write_uint(field_number, zigzag_encode(value))

    def write_fixed64(self, field_number: int, value: int) -> Writer:
        """An I64 field (fixed64/sfixed64), little endian."""
        self._buf += tag(field_number, I64)
        self._buf += (value & _U64).to_bytes(8, "little")
        return self

    def write_fixed32(self, field_number: int, value: int) -> Writer:
        """An I32 field (fixed32/sfixed32), little endian."""
        self._buf += tag(field_number, I32)
        self._buf += (value & 0xFFFFFFFF).to_bytes(4, "little")
        return self

    def write_bytes(self, field_number: int, data: bytes | bytearray) -> Writer:
        """A LEN field: bytes, an embedded message's encoding, or packed repeated scalars."""
        self._buf += tag(field_number, LEN)
        self._buf += encode_varint(len(data))
        self._buf += data
        return self

    def write_string(self, field_number: int, text: str) -> Writer:
        """A LEN field holding UTF-8 text."""
        return self.write_bytes(field_number, text.encode())

    def __len__(self) -> int:
        return len(self._buf)

    def finish(self) -> bytes:
        """The encoded message."""
        return bytes(self._buf)


def iter_fields(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, FieldValue]]:
    """Yield (field_number, wire_type, value) for every field of an encoded message.

    VARINT values are unsigned (see `to_int32`/`to_int64`/`zigzag_decode`), I64/I32 values are
    unsigned little-endian integers, LEN values are `bytes`. Raises DecodeError on malformed input;
    a caller that stops iterating early has not validated the rest.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data)
    pos = 0
    while pos < end:
        key = data[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = decode_varint(data, pos)
        field_number = key >> 3
        wire_type = key & 7
        if field_number == 0 or field_number > MAX_FIELD_NUMBER:
            raise DecodeError(f"invalid protobuf field number {field_number}")
        if wire_type == LEN:
            length = data[pos] if pos < end else 0x80
            if length < 0x80:
                pos += 1
            else:
                length, pos = decode_varint(data, pos)
            stop = pos + length
            if stop > end:
                raise DecodeError(f"field {field_number} length {length} runs past the message")
            yield field_number, LEN, data[pos:stop]
            pos = stop
        elif wire_type == VARINT:
            b = data[pos] if pos < end else 0x80
            if b < 0x80:
                pos += 1
                yield field_number, VARINT, b
            else:
                value, pos = decode_varint(data, pos)
                yield field_number, VARINT, value
        elif wire_type == I64:
            stop = pos + 8
            if stop > end:
                raise DecodeError("truncated fixed64 field")
            yield field_number, I64, int.from_bytes(data[pos:stop], "little")
            pos = stop
        elif wire_type == I32:
            stop = pos + 4
            if stop > end:
                raise DecodeError("truncated fixed32 field")
            yield field_number, I32, int.from_bytes(data[pos:stop], "little")
            pos = stop
        else:
            raise DecodeError(f"unsupported protobuf wire type {wire_type} (field {field_number})")


def expect_int(field_number: int, wire_type: int, value: FieldValue, want: int = VARINT) -> int:
    """Check a known numeric field's wire type and return its value; DecodeError otherwise."""
    if wire_type != want or not isinstance(value, int):
        raise DecodeError(f"field {field_number} has wire type {wire_type}, expected {want}")
    return value


def expect_bytes(field_number: int, wire_type: int, value: FieldValue, max_len: int | None = None) -> bytes:
    """Check a known LEN field's wire type (and optional length bound) and return its bytes."""
    if wire_type != LEN or not isinstance(value, bytes):
        raise DecodeError(f"field {field_number} has wire type {wire_type}, expected {LEN}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"field {field_number} is {len(value)} bytes, limit {max_len}")
    return value


def expect_string(field_number: int, wire_type: int, value: FieldValue, max_len: int | None = None) -> str:
    """Check a known string field and decode it as UTF-8; DecodeError on invalid UTF-8."""
    raw = expect_bytes(field_number, wire_type, value, max_len)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise DecodeError(f"field {field_number} is not valid UTF-8")
