"""Kademlia wire messages: encoding details, limits and framing."""

from __future__ import annotations

import pytest

from nabu_py.codec import protobuf as pb
from nabu_py.errors import DecodeError
from nabu_py.protocols.kademlia import messages as m


def test_find_node_request_bytes() -> None:
    # type=4 (field 1 varint), key (field 2, 4 bytes): what go-libp2p-kad-dht writes
    assert m.Message(m.MessageType.FIND_NODE, key=b"abcd").encode() == b"\x08\x04\x12\x04abcd"


def test_put_value_type_zero_is_omitted_as_in_proto3() -> None:
    msg = m.Message(m.MessageType.PUT_VALUE, key=b"/k/x", record=m.Record(b"/k/x", b"v"))
    data = msg.encode()
    assert data[0] == 0x12  # no field 1 at all
    assert m.Message.decode(data) == msg


def test_empty_record_is_still_present() -> None:
    msg = m.Message(m.MessageType.GET_VALUE, key=b"k", record=m.Record(b"", b""))
    assert m.Message.decode(msg.encode()).record == m.Record(b"", b"")


def test_unknown_fields_skipped_and_unknown_enum_kept() -> None:
    data = (
        pb.Writer()
        .write_uint(1, 42)
        .write_bytes(2, b"key")
        .write_bytes(77, b"junk")
        .write_uint(99, 5)
        .finish()
    )
    msg = m.Message.decode(data)
    assert msg.type == 42 and msg.key == b"key"


def test_negative_cluster_level_round_trips() -> None:
    msg = m.Message(m.MessageType.PING, cluster_level_raw=-1)
    assert m.Message.decode(msg.encode()).cluster_level_raw == -1


@pytest.mark.parametrize(
    "data",
    [
        pb.Writer().write_bytes(1, b"x").finish(),  # type must be a varint
        pb.Writer().write_uint(2, 1).finish(),  # key must be bytes
        pb.Writer().write_uint(8, 1).finish(),  # closerPeers must be a message
        pb.Writer().write_uint(9, 1).finish(),  # providerPeers must be a message
        pb.Writer().write_bytes(3, b"\x0a\x05ab").finish(),  # truncated nested record
        pb.Writer().write_bytes(8, pb.Writer().write_uint(1, 3).finish()).finish(),  # peer id not bytes
        pb.Writer().write_bytes(3, pb.Writer().write_bytes(5, b"\xff").finish()).finish(),  # bad UTF-8
    ],
)
def test_wrong_wire_types_and_nested_garbage(data: bytes) -> None:
    with pytest.raises(DecodeError):
        m.Message.decode(data)


def test_limits_on_decode() -> None:
    too_long_key = pb.Writer().write_bytes(2, b"k" * (m.MAX_KEY_SIZE + 1)).finish()
    with pytest.raises(DecodeError):
        m.Message.decode(too_long_key)
    w = pb.Writer()
    for _ in range(m.MAX_PEERS_PER_LIST + 1):
        w.write_bytes(8, m.Peer(b"id").encode())
    with pytest.raises(DecodeError):
        m.Message.decode(w.finish())
    peer = m.Peer(b"id", tuple(b"a" for _ in range(m.MAX_ADDRS_PER_PEER + 1)))
    with pytest.raises(DecodeError):
        m.Peer.decode(peer.encode())
    with pytest.raises(DecodeError):
        m.Peer.decode(m.Peer(b"i" * (m.MAX_PEER_ID_SIZE + 1)).encode())
    with pytest.raises(DecodeError):
        m.Peer.decode(m.Peer(b"id", (b"a" * (m.MAX_ADDR_SIZE + 1),)).encode())
    with pytest.raises(DecodeError):
        m.Message.decode(b"\x00" * (m.MAX_MESSAGE_SIZE + 1))


def test_limits_are_generous_for_honest_messages() -> None:
    peers = tuple(m.Peer(bytes([i]) * 38, (b"\x04" + bytes(6),) * 10) for i in range(20))
    msg = m.Message(m.MessageType.FIND_NODE, key=b"x" * 38, closer_peers=peers)
    assert m.Message.decode(msg.encode()) == msg


def test_encode_refuses_more_than_one_mib() -> None:
    msg = m.Message(m.MessageType.PUT_VALUE, key=b"k", record=m.Record(b"k", b"v" * m.MAX_MESSAGE_SIZE))
    with pytest.raises(ValueError):
        msg.encode()
    with pytest.raises(ValueError):
        m.frame(b"x" * (m.MAX_MESSAGE_SIZE + 1))


def test_record_encode_refuses_what_decode_would_reject() -> None:
    # 16 four-byte characters: 64 UTF-8 bytes fit, 17 do not (the limit counts bytes, not characters)
    ok = m.Record(b"k", b"v", "\U0001f600" * 16)
    assert m.Record.decode(ok.encode()) == ok
    with pytest.raises(ValueError, match="timeReceived"):
        m.Record(b"k", b"v", "\U0001f600" * 17).encode()
    with pytest.raises(ValueError, match="record key"):
        m.Record(b"k" * (m.MAX_KEY_SIZE + 1), b"v").encode()
    with pytest.raises(DecodeError):
        m.Record.decode(pb.Writer().write_string(m.RECORD_TIME_RECEIVED, "\U0001f600" * 17).finish())


def test_framing_round_trip_in_small_chunks() -> None:
    msgs = [m.Message(m.MessageType.FIND_NODE, key=bytes([i]) * (i * 40 + 1)) for i in range(5)]
    stream = b"".join(m.encode_framed(x) for x in msgs)
    dec = m.FrameDecoder()
    got: list[bytes] = []
    for i in range(0, len(stream), 3):
        got.extend(dec.feed(stream[i : i + 3]))
    assert [m.Message.decode(g) for g in got] == msgs
    assert dec.buffered == 0
    assert m.decode_framed(m.encode_framed(msgs[2])) == msgs[2]


def test_frame_decoder_rejects_oversized_declared_length_before_buffering() -> None:
    dec = m.FrameDecoder(max_size=100)
    with pytest.raises(DecodeError):
        dec.feed(pb.encode_varint(101))
    with pytest.raises(DecodeError):
        m.FrameDecoder().feed(pb.encode_varint(m.MAX_MESSAGE_SIZE + 1))


def test_frame_decoder_rejects_malformed_prefix_and_waits_for_partial_one() -> None:
    assert m.FrameDecoder().feed(b"\x80") == []  # prefix continues
    with pytest.raises(DecodeError):
        m.FrameDecoder().feed(b"\x80\x00")  # non-minimal varint prefix
    with pytest.raises(DecodeError):
        m.FrameDecoder().feed(b"\xff" * 10)


def test_decode_framed_checks_the_length() -> None:
    with pytest.raises(DecodeError):
        m.decode_framed(b"\x05abc")
    with pytest.raises(DecodeError):
        m.decode_framed(b"\x01ab")
