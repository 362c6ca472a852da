"""proto/dht.proto is the source of truth: parse it and check our codec against it.

Two checks: (1) every field number and type used by messages.py matches the .proto text; (2) the
reference protobuf runtime (google.protobuf, built from a descriptor generated out of the parsed
.proto) produces the very bytes our encoder produces, and parses ours back to the same values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nabu_py.codec import protobuf as pb
from nabu_py.protocols.kademlia import messages as m

PROTO = Path(__file__).resolve().parents[4] / "proto" / "dht.proto"

_FIELD = re.compile(r"^\s*(repeated\s+)?([A-Za-z_][\w.]*)\s+(\w+)\s*=\s*(\d+)\s*;")
_ENUM_VALUE = re.compile(r"^\s*(\w+)\s*=\s*(\d+)\s*;")
_BLOCK = re.compile(r"^\s*(message|enum)\s+(\w+)\s*\{")

Schema = dict[str, dict[str, tuple[str, int, bool]]]


def parse_proto(text: str) -> tuple[str, Schema, dict[str, dict[str, int]]]:
    """Parse the subset of proto3 used here: nested messages and enums, scalar/message fields."""
    package = ""
    messages: Schema = {}
    enums: dict[str, dict[str, int]] = {}
    stack: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("//", 1)[0]
        if not line.strip():
            continue
        if line.strip().startswith("package "):
            package = line.strip()[len("package ") :].rstrip(";").strip()
            continue
        b = _BLOCK.match(line)
        if b:
            name = ".".join([n for _, n in stack] + [b.group(2)])
            stack.append((b.group(1), b.group(2)))
            (messages if b.group(1) == "message" else enums)[name] = {}
            continue
        if line.strip() == "}":
            stack.pop()
            continue
        if not stack:
            continue
        scope = ".".join(n for _, n in stack)
        if stack[-1][0] == "enum":
            ev = _ENUM_VALUE.match(line)
            assert ev, f"unparsed enum line: {raw!r}"
            enums[scope][ev.group(1)] = int(ev.group(2))
        else:
            f = _FIELD.match(line)
            assert f, f"unparsed field line: {raw!r}"
            messages[scope][f.group(3)] = (f.group(2), int(f.group(4)), bool(f.group(1)))
    assert not stack, "unbalanced braces"
    return package, messages, enums


PACKAGE, MESSAGES, ENUMS = parse_proto(PROTO.read_text())

# (message, proto field name) -> (our constant, wire type our encoder writes)
OURS = {
    ("Record", "key"): (m.RECORD_KEY, pb.LEN),
    ("Record", "value"): (m.RECORD_VALUE, pb.LEN),
    ("Record", "timeReceived"): (m.RECORD_TIME_RECEIVED, pb.LEN),
    ("Message.Peer", "id"): (m.PEER_ID, pb.LEN),
    ("Message.Peer", "addrs"): (m.PEER_ADDRS, pb.LEN),
    ("Message.Peer", "connection"): (m.PEER_CONNECTION, pb.VARINT),
    ("Message", "type"): (m.MSG_TYPE, pb.VARINT),
    ("Message", "key"): (m.MSG_KEY, pb.LEN),
    ("Message", "record"): (m.MSG_RECORD, pb.LEN),
    ("Message", "closerPeers"): (m.MSG_CLOSER_PEERS, pb.LEN),
    ("Message", "providerPeers"): (m.MSG_PROVIDER_PEERS, pb.LEN),
    ("Message", "clusterLevelRaw"): (m.MSG_CLUSTER_LEVEL_RAW, pb.VARINT),
}
_WIRE_OF_TYPE = {"bytes": pb.LEN, "string": pb.LEN, "int32": pb.VARINT}


def _wire_type(msg: str, type_name: str) -> int:
    if type_name in _WIRE_OF_TYPE:
        return _WIRE_OF_TYPE[type_name]
    scope = msg.split(".")
    for i in range(len(scope), -1, -1):
        full = ".".join([*scope[:i], type_name])
        if full in ENUMS:
            return pb.VARINT
        if full in MESSAGES:
            return pb.LEN
    raise AssertionError(f"unknown type {type_name}")


def test_schema_parsed() -> None:
    assert PACKAGE == "dht.pb"
    assert set(MESSAGES) == {"Record", "Message", "Message.Peer"}
    assert set(ENUMS) == {"Message.MessageType", "Message.ConnectionType"}


def test_every_proto_field_is_known_to_the_codec_with_the_same_number_and_type() -> None:
    proto_fields = {(msg, name) for msg, fields in MESSAGES.items() for name in fields}
    assert proto_fields == set(OURS)
    for (msg, name), (number, wire) in OURS.items():
        type_name, proto_number, _ = MESSAGES[msg][name]
        assert proto_number == number, (msg, name)
        assert _wire_type(msg, type_name) == wire, (msg, name)


def test_enums_match() -> None:
    assert ENUMS["Message.MessageType"] == {t.name: t.value for t in m.MessageType}
    assert ENUMS["Message.ConnectionType"] == {t.name: t.value for t in m.ConnectionType}


def _full_message() -> m.Message:
    peer = m.Peer(b"\x00\x24" + b"p" * 36, (b"\x04\x7f\x00\x00\x01\x06\x0f\xa1", b"\x29" + b"\x00" * 16), 1)
    return m.Message(
        m.MessageType.GET_PROVIDERS,
        key=b"\x12\x20" + b"k" * 32,
        record=m.Record(b"/ipns/x", b"value", "2026-01-01T00:00:00Z"),
        closer_peers=(peer, m.Peer(b"\x12\x20" + b"q" * 32)),
        provider_peers=(peer,),
        cluster_level_raw=-3,
    )


def test_encoder_writes_each_field_with_the_proto_wire_type() -> None:
    data = _full_message().encode()
    seen = {(n, wt) for n, wt, _ in pb.iter_fields(data)}
    expected = {(num, wt) for (msg, _), (num, wt) in OURS.items() if msg == "Message"}
    assert seen == expected
    peer_bytes = next(v for n, _, v in pb.iter_fields(data) if n == m.MSG_CLOSER_PEERS)
    assert isinstance(peer_bytes, bytes)
    assert {(n, wt) for n, wt, _ in pb.iter_fields(peer_bytes)} == {
        (num, wt) for (msg, _), (num, wt) in OURS.items() if msg == "Message.Peer"
    }


def _reference_classes() -> tuple[type, type]:
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    scalar = {"bytes": F.TYPE_BYTES, "string": F.TYPE_STRING, "int32": F.TYPE_INT32}
    fdp = descriptor_pb2.FileDescriptorProto(name="dht_test.proto", package=PACKAGE, syntax="proto3")

    def fill(dp: object, msg: str) -> None:
        for name, (type_name, number, repeated) in MESSAGES[msg].items():
            fd = dp.field.add(name=name, number=number)  # type: ignore[attr-defined]
            fd.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if type_name in scalar:
                fd.type = scalar[type_name]
            else:
                wt = _wire_type(msg, type_name)
                fd.type = F.TYPE_ENUM if wt == pb.VARINT else F.TYPE_MESSAGE
                owner = "Message" if type_name in ("Peer", "MessageType", "ConnectionType") else ""
                fd.type_name = f".{PACKAGE}." + (f"{owner}.{type_name}" if owner else type_name)

    rec = fdp.message_type.add(name="Record")
    fill(rec, "Record")
    msg = fdp.message_type.add(name="Message")
    for ename in ("MessageType", "ConnectionType"):
        ed = msg.enum_type.add(name=ename)
        for vname, v in ENUMS[f"Message.{ename}"].items():
            ed.value.add(name=vname, number=v)
    peer = msg.nested_type.add(name="Peer")
    fill(peer, "Message.Peer")
    fill(msg, "Message")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Message")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Record")),
    )


def test_reference_runtime_agrees_byte_for_byte() -> None:
    ref_message, _ = _reference_classes()
    ours = _full_message()
    ref = ref_message()
    ref.ParseFromString(ours.encode())
    assert ref.type == ours.type
    assert ref.key == ours.key
    assert ref.record.value == b"value"
    assert ref.record.timeReceived == "2026-01-01T00:00:00Z"
    assert ref.clusterLevelRaw == -3
    assert [p.id for p in ref.closerPeers] == [p.id for p in ours.closer_peers]
    assert list(ref.closerPeers[0].addrs) == list(ours.closer_peers[0].addrs)
    assert ref.closerPeers[0].connection == 1
    assert ref.SerializeToString(deterministic=True) == ours.encode()
    assert m.Message.decode(ref.SerializeToString()) == ours


@pytest.mark.parametrize("mtype", list(m.MessageType))
def test_reference_runtime_agrees_on_minimal_requests(mtype: m.MessageType) -> None:
    ref_message, _ = _reference_classes()
    ours = m.Message(mtype, key=b"\x12\x20" + bytes(32))
    ref = ref_message(type=int(mtype), key=ours.key)
    assert ref.SerializeToString(deterministic=True) == ours.encode()
