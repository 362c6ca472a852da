"""Unsigned LEB128 varints as used by multiformats (https://github.com/multiformats/unsigned-varint).

Decoding is strict: at most 9 bytes (63-bit values, the multiformats limit), minimal encoding only
(no redundant trailing 0x80/0x00 groups), and truncated input is a DecodeError.
"""

from __future__ import annotations

from nabu_py.errors import DecodeError

MAX_VARINT_BYTES = 9
MAX_VALUE = (1 << 63) - 1


def encode(value: int) -> bytes:
    """Encode a non-negative integer < 2**63."""
    if value < 0 or value > MAX_VALUE:
        raise ValueError(f"varint out of range: {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_from(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode one varint at `offset`; return (value, offset just after it)."""
    value = 0
    shift = 0
    end = len(data)
    i = offset
    while True:
        if i >= end:
            raise DecodeError("truncated varint")
        if i - offset >= MAX_VARINT_BYTES:
            raise DecodeError("varint longer than 9 bytes")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0 and i - offset > 1:
                raise DecodeError("varint is not minimally encoded")
            return value, i
        shift += 7


def decode(data: bytes | bytearray | memoryview) -> int:
    """Decode a buffer holding exactly one varint."""
    value, end = decode_from(data, 0)
    if end != len(data):
        raise DecodeError("trailing bytes after varint")
    return value
