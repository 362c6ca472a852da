"""Java `DataOutputStream` / `Serialize` framing for PKI bodies and claim payloads (spec/peergos.md §3.2,
§12.2, §18.21).

Theory of operation
-------------------
The `/peergos/v0/core/*` request and response bodies and the signed payload of a username claim are not
CBOR but Java `DataOutputStream` streams, written with `peergos.shared.util.Serialize`:

- `int32` / `int64`: big-endian two's complement (`writeInt`, `writeLong`);
- `boolean`: one byte, 1 or 0 (`writeBoolean`);
- byte array: `int32 length || bytes` (`Serialize.serialize(byte[])`);
- string: `int32 length || UTF-8 bytes`, where the length written is Java's `String.length()`, the count
  of **UTF-16 code units**, not the byte count (§18.21). For ASCII (every valid username) the two agree;
  for other text Java writes a length its own reader then misreads. `DataWriter.write_string` reproduces
  Java's bytes exactly (signatures cover them); `DataReader.read_string` reads `length` bytes as Java does
  and requires them to be valid UTF-8.

`DataReader` is strict and bounded: every length is checked against the caller's maximum before anything
is read (Java's `Serialize.deserializeByteArray(din, max)` bounds), negative lengths, truncation, booleans
other than 0/1 and invalid UTF-8 are `DecodeError`s, and `expect_end()` refuses trailing bytes. Nothing
here raises IndexError/struct.error on hostile input.
"""

from __future__ import annotations

import struct

from peergos_node.errors import DecodeError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


def java_char_count(s: str) -> int:
    """Java's `String.length()`: the number of UTF-16 code units."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


class DataWriter:
    """Builds a Java DataOutputStream byte stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write_int(self, value: int) -> DataWriter:
        """`writeInt`: 4 bytes big-endian."""
        if not INT32_MIN <= value <= INT32_MAX:
            raise ValueError(f"{value} does not fit in a Java int")
        self._buf += _I32.pack(value)
        return self

    def write_long(self, value: int) -> DataWriter:
        """`writeLong`: 8 bytes big-endian."""
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{value} does not fit in a Java long")
        self._buf += _I64.pack(value)
        return self

    def write_boolean(self, value: bool) -> DataWriter:
        """`writeBoolean`: one byte, 1 or 0."""
        self._buf.append(1 if value else 0)
        return self

    def write_byte_array(self, data: bytes) -> DataWriter:
        """`Serialize.serialize(byte[])`: int32 length then the bytes."""
        self.write_int(len(data))
        self._buf += data
        return self

    def write_string(self, text: str) -> DataWriter:
        """`Serialize.serialize(String)`: int32 Java char count then the UTF-8 bytes (§18.21)."""
        self.write_int(java_char_count(text))
        self._buf += text.encode("utf-8")
        return self

    def write_raw(self, data: bytes) -> DataWriter:
        """`write(byte[])`: the bytes with no length."""
        self._buf += data
        return self

    def to_bytes(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)


class DataReader:
    """Strict, bounded reader of a Java DataInputStream byte stream."""

    def __init__(self, data: bytes, what: str = "body") -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self._pos

    def _take(self, n: int, field: str) -> bytes:
        if n > self.remaining:
            raise DecodeError(f"{self._what}: truncated {field} (need {n} bytes, have {self.remaining})")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def read_int(self, field: str = "int") -> int:
        """`readInt`."""
        return int(_I32.unpack(self._take(4, field))[0])

    def read_long(self, field: str = "long") -> int:
        """`readLong`."""
        return int(_I64.unpack(self._take(8, field))[0])

    def read_boolean(self, field: str = "boolean") -> bool:
        """`readBoolean`, accepting only the bytes Java writes (1 and 0)."""
        b = self._take(1, field)[0]
        if b > 1:
            raise DecodeError(f"{self._what}: {field} is not a boolean byte ({b})")
        return b == 1

    def _length(self, max_len: int, field: str) -> int:
        n = self.read_int(f"{field} length")
        if n < 0 or n > max_len:
            raise DecodeError(f"{self._what}: {field} length {n} outside [0, {max_len}]")
        return n

    def read_byte_array(self, max_len: int, field: str = "byte array") -> bytes:
        """`Serialize.deserializeByteArray(din, max_len)`."""
        return self._take(self._length(max_len, field), field)

    def read_string(self, max_len: int, field: str = "string") -> str:
        """`Serialize.deserializeString(din, max_len)`: `length` bytes of UTF-8."""
        raw = self._take(self._length(max_len, field), field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{self._what}: {field} is not valid UTF-8") from None

    def read_raw(self, n: int, field: str = "bytes") -> bytes:
        """Exactly `n` bytes."""
        if n < 0:
            raise ValueError("cannot read a negative number of bytes")
        return self._take(n, field)

    def read_remaining(self, max_len: int, field: str = "rest") -> bytes:
        """All remaining bytes (at most `max_len`)."""
        if self.remaining > max_len:
            raise DecodeError(f"{self._what}: {field} longer than {max_len} bytes")
        return self._take(self.remaining, field)

    def expect_end(self) -> None:
        """Refuse trailing bytes."""
        if self.remaining:
            raise DecodeError(f"{self._what}: {self.remaining} trailing bytes")


__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "DataReader",
    "DataWriter",
    "java_char_count",
]
