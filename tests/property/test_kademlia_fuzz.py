"""Hypothesis: Kademlia messages and the protobuf layer round-trip, decoding arbitrary bytes raises
only DecodeError (10,000 examples per decoder), and the engine never raises on what peers send."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import protobuf as pb
from nabu_py.errors import DecodeError
from nabu_py.protocols.kademlia import messages as m
from nabu_py.protocols.kademlia.engine import KademliaEngine, Penalise, QueryFinished, Reply, SendRequest
from tests.helpers.fuzz import fuzz_settings, round_trip_settings
from tests.helpers.kad import SeqValidator, peer_id

peers = st.builds(
    m.Peer,
    st.binary(max_size=40),
    st.lists(st.binary(max_size=30), max_size=4).map(tuple),
    st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1),
)
# timeReceived is limited in UTF-8 bytes, not characters: 16 characters are at most 64 bytes
records = st.builds(m.Record, st.binary(max_size=40), st.binary(max_size=100), st.text(max_size=16))
messages = st.builds(
    m.Message,
    st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1),
    st.binary(max_size=60),
    st.none() | records,
    st.lists(peers, max_size=5).map(tuple),
    st.lists(peers, max_size=3).map(tuple),
    st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1),
)


@round_trip_settings
@given(messages)
def test_message_round_trip(msg: m.Message) -> None:
    data = msg.encode()
    assert m.Message.decode(data) == msg
    assert m.decode_framed(m.encode_framed(msg)) == msg


@fuzz_settings
@given(st.binary(max_size=400))
def test_message_decode_arbitrary_bytes(data: bytes) -> None:
    try:
        msg = m.Message.decode(data)
    except DecodeError:
        return
    assert m.Message.decode(msg.encode()) == msg


@round_trip_settings
@given(messages, st.binary(min_size=1, max_size=8))
def test_message_decode_mutated(msg: m.Message, junk: bytes) -> None:
    data = bytearray(msg.encode() or b"\x08\x01")
    pos = junk[0] % len(data)
    data[pos : pos + 1] = junk[1:]
    try:
        m.Message.decode(bytes(data))
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=200))
def test_peer_and_record_decode_arbitrary_bytes(data: bytes) -> None:
    for cls in (m.Peer, m.Record):
        try:
            cls.decode(data)
        except DecodeError:
            pass


@fuzz_settings
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=17))
def test_frame_decoder_arbitrary_stream(data: bytes, chunk: int) -> None:
    dec = m.FrameDecoder(max_size=64)
    try:
        for i in range(0, len(data), chunk):
            for payload in dec.feed(data[i : i + chunk]):
                assert len(payload) <= 64
    except DecodeError:
        pass
    assert dec.buffered <= 64 + 9 + chunk


@fuzz_settings
@given(st.binary(max_size=200))
def test_protobuf_iter_fields_arbitrary_bytes(data: bytes) -> None:
    try:
        for num, wt, val in pb.iter_fields(data):
            assert 1 <= num <= pb.MAX_FIELD_NUMBER
            assert isinstance(val, bytes) == (wt == pb.LEN)
    except DecodeError:
        pass


@round_trip_settings
@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_protobuf_varint_round_trip(n: int) -> None:
    enc = pb.encode_varint(n)
    assert pb.decode_varint(enc) == (n, len(enc))


def _engine() -> KademliaEngine:
    e = KademliaEngine(peer_id(0), (b"me",), validators={b"test": SeqValidator()}, rng=random.Random(0))
    for i in range(1, 60):
        e.add_peer(peer_id(i), (b"a",), 0.0, server=True)
    return e


ENGINE = _engine()


@fuzz_settings
@given(st.binary(max_size=300), st.booleans())
def test_engine_never_raises_on_arbitrary_request_bytes(data: bytes, server: bool) -> None:
    actions = ENGINE.handle_request(peer_id(500), data, 1.0, sender_is_server=server)
    assert all(isinstance(a, (Reply, Penalise, SendRequest)) for a in actions)


@round_trip_settings
@given(messages)
def test_engine_never_raises_on_arbitrary_request_messages(msg: m.Message) -> None:
    actions = ENGINE.handle_request(peer_id(501), msg, 1.0)
    assert len([a for a in actions if isinstance(a, Reply)]) <= 1


@round_trip_settings
@given(st.lists(st.one_of(st.binary(max_size=120), messages), min_size=1, max_size=6))
def test_engine_never_raises_on_arbitrary_responses(responses: list[bytes | m.Message]) -> None:
    e = _engine()
    qid, actions = e.get_value(b"/test/x", 0.0, quorum=2)
    sends = [a for a in actions if isinstance(a, SendRequest)]
    out = []
    for i, resp in enumerate(responses):
        target = sends[i % len(sends)].peer.id
        out += e.on_response(qid, target, resp, 0.1 * i)
    out += e.on_timer(1000.0)  # past the query deadline: it must have ended by now
    assert [a.query_id for a in out if isinstance(a, QueryFinished)] == [qid]
