"""proto/ipns.proto is the source of truth: our IpnsEntry codec uses its field numbers and wire types, and
the reference protobuf runtime (built from a descriptor made out of the parsed .proto) agrees with our
bytes in both directions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nabu_py.codec import protobuf as pb
from nabu_py.protocols.ipns import record as r

PROTO = Path(__file__).resolve().parents[4] / "proto" / "ipns.proto"
_FIELD = re.compile(r"^\s*optional\s+(\w+)\s+(\w+)\s*=\s*(\d+)\s*;")
_ENUM_VALUE = re.compile(r"^\s*(\w+)\s*=\s*(\d+)\s*;")


def _parse() -> tuple[str, dict[str, tuple[str, int]], dict[str, int]]:
    package = ""
    fields: dict[str, tuple[str, int]] = {}
    enum: dict[str, int] = {}
    depth = 0
    in_enum = False
    for raw in PROTO.read_text().splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if line.startswith("package "):
            package = line[len("package ") :].rstrip(";").strip()
        elif line.startswith("enum ValidityType"):
            in_enum = True
            depth += 1
        elif line.startswith("message IpnsEntry"):
            depth += 1
        elif line == "}":
            depth -= 1
            in_enum = False
        elif in_enum:
            m = _ENUM_VALUE.match(line)
            assert m, raw
            enum[m.group(1)] = int(m.group(2))
        elif depth == 1:
            m = _FIELD.match(line)
            assert m, f"unparsed field line {raw!r}"
            fields[m.group(2)] = (m.group(1), int(m.group(3)))
    assert depth == 0
    return package, fields, enum


PACKAGE, FIELDS, ENUM = _parse()
OURS = {
    "value": ("value", r.ENTRY_VALUE, pb.LEN),
    "signatureV1": ("signature_v1", r.ENTRY_SIGNATURE_V1, pb.LEN),
    "validityType": ("validity_type", r.ENTRY_VALIDITY_TYPE, pb.VARINT),
    "validity": ("validity", r.ENTRY_VALIDITY, pb.LEN),
    "sequence": ("sequence", r.ENTRY_SEQUENCE, pb.VARINT),
    "ttl": ("ttl", r.ENTRY_TTL, pb.VARINT),
    "pubKey": ("pub_key", r.ENTRY_PUB_KEY, pb.LEN),
    "signatureV2": ("signature_v2", r.ENTRY_SIGNATURE_V2, pb.LEN),
    "data": ("data", r.ENTRY_DATA, pb.LEN),
}
_WIRE = {"bytes": pb.LEN, "uint64": pb.VARINT, "ValidityType": pb.VARINT}


def test_schema_matches_codec() -> None:
    assert PACKAGE == "ipns.pb"
    assert ENUM == {"EOL": 0}
    assert set(FIELDS) == set(OURS)
    for name, (type_name, number) in FIELDS.items():
        _, ours, wire = OURS[name]
        assert number == ours, name
        assert _WIRE[type_name] == wire, name


def _full() -> r.IpnsEntry:
    return r.IpnsEntry(
        value=b"/ipfs/x",
        signature_v1=b"s1",
        validity_type=0,
        validity=b"2030-01-01T00:00:00Z",
        sequence=2**63 + 1,
        ttl=0,
        pub_key=b"\x08\x01",
        signature_v2=b"s2",
        data=b"\xa0",
    )


def _reference_class() -> type:
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="ipns_test.proto", package=PACKAGE, syntax="proto2")
    msg = fdp.message_type.add(name="IpnsEntry")
    ed = msg.enum_type.add(name="ValidityType")
    for vname, v in ENUM.items():
        ed.value.add(name=vname, number=v)
    for name, (type_name, number) in FIELDS.items():
        fd = msg.field.add(name=name, number=number, label=F.LABEL_OPTIONAL)
        if type_name == "bytes":
            fd.type = F.TYPE_BYTES
        elif type_name == "uint64":
            fd.type = F.TYPE_UINT64
        else:
            fd.type = F.TYPE_ENUM
            fd.type_name = f".{PACKAGE}.IpnsEntry.ValidityType"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    cls: type = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.IpnsEntry"))
    return cls


def test_reference_runtime_agrees_byte_for_byte() -> None:
    ref_cls = _reference_class()
    ours = _full()
    ref = ref_cls()
    ref.ParseFromString(ours.encode())
    for proto_name, (attr, _, _) in OURS.items():
        assert ref.HasField(proto_name), proto_name
        assert getattr(ref, proto_name) == getattr(ours, attr), proto_name
    assert ref.SerializeToString(deterministic=True) == ours.encode()
    assert r.IpnsEntry.decode(ref.SerializeToString()) == ours
    # proto2 presence: an absent field stays absent, a zero is written.
    sparse = r.IpnsEntry(sequence=0, data=b"")
    ref2 = ref_cls()
    ref2.ParseFromString(sparse.encode())
    assert ref2.HasField("sequence") and ref2.HasField("data") and not ref2.HasField("value")
    assert r.IpnsEntry.decode(sparse.encode()) == sparse
