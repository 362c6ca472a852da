"""IPNS records: creation, every verification step of the spec, validity strings, ordering."""

from __future__ import annotations

import calendar
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.p2p import HostIdentity, PeerId
from nabu_py.protocols.ipns import (
    MAX_RECORD_SIZE,
    InvalidIpnsRecord,
    IpnsEntry,
    IpnsValidator,
    create_record,
    format_validity,
    name_from_key,
    parse_validity,
    routing_key,
    select_best,
    validate_record,
)
from nabu_py.protocols.ipns.record import SIGNATURE_PREFIX
from nabu_py.protocols.kademlia.errors import InvalidRecord

NOW = 1_800_000_000.0
LATER = NOW + 3600
ALICE = HostIdentity.generate(b"\x01" * 32)
BOB = HostIdentity.generate(b"\x02" * 32)
VALUE = b"/ipfs/bafkqaaa"


def _signed(
    identity: HostIdentity,
    doc: dict[str, Any],
    *,
    v1: dict[str, Any] | None = None,
    pub_key: bytes | None = None,
    sign_with: HostIdentity | None = None,
) -> bytes:
    data = dag_cbor.encode(doc)
    sig = (sign_with or identity).sign(SIGNATURE_PREFIX + data)
    return IpnsEntry(**(v1 or {}), pub_key=pub_key, signature_v2=sig, data=data).encode()


def _doc(validity: bytes = b"2030-01-01T00:00:00.000000000Z", seq: int = 1, **extra: Any) -> dict[str, Any]:
    return {"Value": VALUE, "Validity": validity, "ValidityType": 0, "Sequence": seq, "TTL": 10**9, **extra}


def test_create_then_validate_round_trip_with_peergos_extension() -> None:
    ext = {"_peergos_rr": {"h": b"\x12\x20" + b"h" * 32, "s": 7}}
    raw = create_record(ALICE, VALUE, 7, expires_at=LATER, ttl_ns=5 * 10**9, extensions=ext)
    rec = validate_record(routing_key(ALICE.peer_id), raw, NOW)
    assert rec.name == ALICE.peer_id
    assert (rec.value, rec.sequence, rec.ttl_ns) == (VALUE, 7, 5 * 10**9)
    assert rec.expires_at == pytest.approx(LATER)
    assert rec.extensions == ext
    assert rec.raw == raw
    entry = IpnsEntry.decode(raw)
    # V1 copies present (Nabu's validator demands them), no V1 signature, Ed25519 key not repeated.
    assert entry.value == VALUE and entry.sequence == 7 and entry.ttl == 5 * 10**9
    assert entry.validity_type == 0 and entry.validity == rec.validity
    assert entry.signature_v1 is None and entry.pub_key is None
    # The signed document is canonical DAG-CBOR (length-first key order) with 9 fraction digits.
    assert dag_cbor.encode(dag_cbor.decode(entry.data or b"")) == entry.data
    assert len(rec.validity) == len(b"2027-01-15T08:00:00.000000000Z")


def test_rsa_names_carry_their_public_key() -> None:
    rsa_id = HostIdentity(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    raw = create_record(rsa_id, VALUE, 1, expires_at=LATER)
    assert IpnsEntry.decode(raw).pub_key == rsa_id.public_key_proto()
    assert validate_record(routing_key(rsa_id.peer_id), raw, NOW).name == rsa_id.peer_id
    stripped = IpnsEntry.decode(raw)
    no_key = IpnsEntry(**{**_fields(stripped), "pub_key": None}).encode()
    with pytest.raises(InvalidIpnsRecord, match="lacks pubKey"):
        validate_record(routing_key(rsa_id.peer_id), no_key, NOW)


def _fields(e: IpnsEntry) -> dict[str, Any]:
    return {k: getattr(e, k) for k in IpnsEntry.__slots__}


def test_v2_only_records_are_valid() -> None:
    raw = _signed(ALICE, _doc())
    assert validate_record(routing_key(ALICE.peer_id), raw, NOW).sequence == 1


def test_signature_by_another_key_is_rejected() -> None:
    raw = _signed(ALICE, _doc(), sign_with=BOB)
    with pytest.raises(InvalidIpnsRecord, match="does not verify"):
        validate_record(routing_key(ALICE.peer_id), raw, NOW)


def test_record_under_another_name_is_rejected() -> None:
    raw = create_record(ALICE, VALUE, 1, expires_at=LATER)
    with pytest.raises(InvalidIpnsRecord):
        validate_record(routing_key(BOB.peer_id), raw, NOW)


def test_tampered_data_is_rejected() -> None:
    entry = IpnsEntry.decode(create_record(ALICE, VALUE, 1, expires_at=LATER))
    data = bytearray(entry.data or b"")
    data[data.index(b"bafkqaaa")] ^= 1
    raw = IpnsEntry(**{**_fields(entry), "data": bytes(data), "value": None}).encode()
    with pytest.raises(InvalidIpnsRecord, match="does not verify"):
        validate_record(routing_key(ALICE.peer_id), raw, NOW)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("value", b"/ipfs/other"),
        ("validity", b"2031-01-01T00:00:00Z"),
        ("sequence", 2),
        ("ttl", 1),
        ("validity_type", 1),
    ],
)
def test_v1_copies_must_match_the_signed_data(field: str, bad: object) -> None:
    entry = IpnsEntry.decode(create_record(ALICE, VALUE, 1, expires_at=LATER))
    raw = IpnsEntry(**{**_fields(entry), field: bad}).encode()
    with pytest.raises(InvalidIpnsRecord, match="differs from the signed data"):
        validate_record(routing_key(ALICE.peer_id), raw, NOW)


def test_expired_and_other_validity_types_are_rejected() -> None:
    raw = create_record(ALICE, VALUE, 1, expires_at=NOW - 1)
    with pytest.raises(InvalidIpnsRecord, match="expired"):
        validate_record(routing_key(ALICE.peer_id), raw, NOW)
    assert validate_record(routing_key(ALICE.peer_id), raw, NOW - 2).sequence == 1
    with pytest.raises(InvalidIpnsRecord, match="validity type"):
        validate_record(routing_key(ALICE.peer_id), _signed(ALICE, {**_doc(), "ValidityType": 1}), NOW)


@pytest.mark.parametrize(
    "doc",
    [
        {"Value": VALUE},
        {**_doc(), "Sequence": -1},
        {**_doc(), "TTL": "1"},
        {**_doc(), "Value": "text, not bytes"},
        {**_doc(), "Validity": b"tomorrow"},
        [1, 2, 3],
    ],
)
def test_malformed_data_is_rejected(doc: Any) -> None:
    data = dag_cbor.encode(doc)
    raw = IpnsEntry(signature_v2=ALICE.sign(SIGNATURE_PREFIX + data), data=data).encode()
    with pytest.raises(InvalidIpnsRecord):
        validate_record(routing_key(ALICE.peer_id), raw, NOW)


def test_missing_signature_or_data_and_garbage_are_rejected() -> None:
    entry = IpnsEntry.decode(create_record(ALICE, VALUE, 1, expires_at=LATER))
    key = routing_key(ALICE.peer_id)
    for raw in (
        IpnsEntry(**{**_fields(entry), "signature_v2": None}).encode(),
        IpnsEntry(**{**_fields(entry), "data": b""}).encode(),
        b"\xff\xff\xff",
        b"",
        IpnsEntry(**{**_fields(entry), "data": b"\xa1"}).encode(),  # truncated CBOR
    ):
        with pytest.raises(InvalidIpnsRecord):
            validate_record(key, raw, NOW)
    with pytest.raises(InvalidIpnsRecord, match="exceeds"):
        validate_record(key, b"\x00" * (MAX_RECORD_SIZE + 1), NOW)
    with pytest.raises(InvalidIpnsRecord):
        validate_record(b"/pk/" + ALICE.peer_id.to_bytes(), entry.encode(), NOW)
    with pytest.raises(InvalidIpnsRecord):
        validate_record(b"/ipns/not-a-multihash", entry.encode(), NOW)


def test_mismatching_pub_key_is_rejected() -> None:
    raw = _signed(ALICE, _doc(), pub_key=BOB.public_key_proto())
    with pytest.raises(InvalidIpnsRecord, match="does not match the name"):
        validate_record(routing_key(ALICE.peer_id), raw, NOW)
    ok = _signed(ALICE, _doc(), pub_key=ALICE.public_key_proto())  # redundant but allowed
    assert validate_record(routing_key(ALICE.peer_id), ok, NOW).sequence == 1
    with pytest.raises(InvalidIpnsRecord, match="malformed"):
        validate_record(routing_key(ALICE.peer_id), _signed(ALICE, _doc(), pub_key=b"\x08\x01"), NOW)


def test_nabu_records_with_unpadded_nanos_validate_byte_for_byte() -> None:
    # Nabu prints nano-of-second unpadded: 5 ms is ".5000000"; its V1 copies hold the same bytes.
    validity = b"2030-01-01T00:00:00.5000000Z"
    doc = _doc(validity, seq=3)
    v1 = {"value": VALUE, "validity": validity, "validity_type": 0, "sequence": 3, "ttl": 10**9}
    raw = _signed(ALICE, doc, v1=v1)
    rec = validate_record(routing_key(ALICE.peer_id), raw, NOW)
    assert rec.validity == validity
    assert rec.expires_at_ns == calendar.timegm((2030, 1, 1, 0, 0, 0)) * 10**9 + 5_000_000


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        (b"2030-01-01T00:00:00Z", 0),  # Go: whole seconds, no fraction (Nabu failed on these)
        (b"2030-01-01T00:00:00.005Z", 5_000_000),  # Go: trailing zeros trimmed
        (b"2030-01-01T00:00:00.005000000Z", 5_000_000),  # js: nine digits
        (b"2030-01-01T00:00:00.5000000Z", 5_000_000),  # Nabu: unpadded nanos
        (b"2030-01-01T00:00:00.120Z", 120),  # only Java's printer ends a short fraction in 0
        (b"2030-01-01T00:00:00.5Z", 500_000_000),  # ambiguous: read the standard way
        (b"2030-01-01t00:00:00.000000001z", 1),
    ],
)
def test_parse_validity_fractions(text: bytes, nanos: int) -> None:
    assert parse_validity(text) == calendar.timegm((2030, 1, 1, 0, 0, 0)) * 10**9 + nanos


def test_parse_validity_offsets_and_errors() -> None:
    base = calendar.timegm((2030, 1, 1, 0, 0, 0)) * 10**9
    assert parse_validity(b"2030-01-01T02:30:00+02:30") == base
    assert parse_validity(b"2029-12-31T23:00:00-01:00") == base
    for bad in (
        b"2030-02-30T00:00:00Z",
        b"2030-13-01T00:00:00Z",
        b"2030-01-01T24:00:00Z",
        b"2030-01-01T00:00:00",
        b"2030-01-01 00:00:00Z",
        b"0000-01-01T00:00:00Z",
        b"2030-01-01T00:00:00.1234567891Z",
        b"2030-01-01T00:00:00+25:00",
        b"x" * 100,
    ):
        with pytest.raises(DecodeError):
            parse_validity(bad)


def test_format_validity_round_trips() -> None:
    ns = calendar.timegm((2031, 7, 4, 5, 6, 7)) * 10**9 + 89
    assert format_validity(ns) == b"2031-07-04T05:06:07.000000089Z"
    assert parse_validity(format_validity(ns)) == ns
    with pytest.raises(ValueError):
        format_validity(-1)


def test_select_prefers_sequence_then_expiry_and_is_stable() -> None:
    a = create_record(ALICE, VALUE, 1, expires_at=LATER)
    b = create_record(ALICE, VALUE, 2, expires_at=NOW + 10)
    c = create_record(ALICE, VALUE, 2, expires_at=NOW + 20)
    assert select_best([a, b]) == 1
    assert select_best([b, c]) == 1
    assert select_best([c, b]) == 0
    assert select_best([c, c]) == 0
    assert select_best([b"garbage", a]) == 1
    big = create_record(ALICE, VALUE, 2**63 + 5, expires_at=LATER)  # no int overflow (Nabu §10.14)
    assert select_best([big, a]) == 0
    v = IpnsValidator()
    assert v.select(routing_key(ALICE.peer_id), [a, c]) == 1
    v.validate(routing_key(ALICE.peer_id), a, NOW)
    with pytest.raises(InvalidRecord):
        v.validate(routing_key(ALICE.peer_id), a, LATER + 1)


def test_create_rejects_misuse() -> None:
    with pytest.raises(ValueError):
        create_record(ALICE, VALUE, -1, expires_at=LATER)
    with pytest.raises(ValueError, match="starting with '_'"):
        create_record(ALICE, VALUE, 1, expires_at=LATER, extensions={"Value": b"x"})
    with pytest.raises(ValueError, match="exceeds"):
        create_record(ALICE, VALUE, 1, expires_at=LATER, extensions={"_big": b"x" * MAX_RECORD_SIZE})


def test_keys() -> None:
    assert routing_key(ALICE.peer_id) == b"/ipns/" + ALICE.peer_id.to_bytes()
    assert name_from_key(routing_key(BOB.peer_id)) == BOB.peer_id
    assert isinstance(name_from_key(routing_key(PeerId.parse(str(ALICE.peer_id)))), PeerId)
