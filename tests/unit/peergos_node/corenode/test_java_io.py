"""Java DataOutputStream framing: exact bytes out, strict and bounded reading in."""

from __future__ import annotations

import pytest

from peergos_node.corenode.java_io import DataReader, DataWriter, java_char_count
from peergos_node.errors import DecodeError


def test_writer_bytes_match_data_output_stream() -> None:
    w = DataWriter().write_int(5).write_int(-1).write_long(1 << 40).write_boolean(True).write_boolean(False)
    assert w.to_bytes() == bytes.fromhex("00000005ffffffff00000100000000000100")
    assert DataWriter().write_byte_array(b"\x01\x02").to_bytes() == bytes.fromhex("000000020102")
    assert DataWriter().write_byte_array(b"").to_bytes() == bytes(4)
    assert DataWriter().write_string("alice").to_bytes() == bytes.fromhex("00000005616c696365")


def test_string_length_is_java_char_count() -> None:
    """§18.21: Java writes String.length() (UTF-16 units), then the UTF-8 bytes."""
    assert java_char_count("é") == 1 and java_char_count("😀") == 2
    assert DataWriter().write_string("é").to_bytes() == bytes.fromhex("00000001c3a9")
    assert DataWriter().write_string("a😀").to_bytes() == bytes.fromhex("0000000361f09f9880")


def test_writer_rejects_out_of_range_numbers() -> None:
    with pytest.raises(ValueError):
        DataWriter().write_int(1 << 31)
    with pytest.raises(ValueError):
        DataWriter().write_long(-(1 << 63) - 1)


def test_reader_round_trip() -> None:
    data = (
        DataWriter()
        .write_string("bob")
        .write_byte_array(b"xyz")
        .write_int(-7)
        .write_long(-(1 << 62))
        .write_boolean(True)
        .write_raw(b"tail")
        .to_bytes()
    )
    r = DataReader(data)
    assert r.read_string(10) == "bob"
    assert r.read_byte_array(3) == b"xyz"
    assert r.read_int() == -7
    assert r.read_long() == -(1 << 62)
    assert r.read_boolean() is True
    assert r.remaining == 4
    assert r.read_remaining(4) == b"tail"
    r.expect_end()


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (b"\x00\x00\x00", lambda r: r.read_int()),
        (b"\x00" * 7, lambda r: r.read_long()),
        (b"\x02", lambda r: r.read_boolean()),
        (b"", lambda r: r.read_boolean()),
        (bytes.fromhex("00000005616c6963"), lambda r: r.read_string(64)),  # truncated
        (bytes.fromhex("ffffffff"), lambda r: r.read_byte_array(64)),  # negative length
        (bytes.fromhex("00000041") + b"a" * 65, lambda r: r.read_string(64)),  # over the bound
        (bytes.fromhex("7fffffff"), lambda r: r.read_byte_array(1 << 20)),  # huge, bounded first
        (bytes.fromhex("00000002c328"), lambda r: r.read_string(64)),  # invalid UTF-8
        (b"abc", lambda r: r.read_remaining(2)),
    ],
)
def test_reader_errors_are_decode_errors(data: bytes, read: object) -> None:
    with pytest.raises(DecodeError):
        read(DataReader(data))  # type: ignore[operator]


def test_expect_end_refuses_trailing_bytes() -> None:
    r = DataReader(bytes.fromhex("0000000100"))
    r.read_int()
    with pytest.raises(DecodeError, match="trailing"):
        r.expect_end()


def test_java_reads_the_char_count_of_bytes() -> None:
    """A non-ASCII string written by Java cannot be read back to the same string (Java's own bug)."""
    data = DataWriter().write_string("é").to_bytes()
    with pytest.raises(DecodeError):
        DataReader(data).read_string(64)  # reads 1 byte of a 2-byte character
