"""IPNS records: codec, creation, verification and ordering (ipfs/specs src/ipns/ipns-record.md;
spec/nabu.md §7 and §10.14 for what Nabu does and which of its quirks we accept but do not copy).

Wire form: the protobuf `IpnsEntry` of `proto/ipns.proto` (source of truth; a test checks the field
numbers), at most `MAX_RECORD_SIZE` (10 KiB) serialized. It is the value of the DHT record whose key is
`/ipns/` + the publisher's binary peer id (`routing_key`).

Creation (`create_record`): a DAG-CBOR map (length-first canonical key order, as Peergos and Nabu write
it) with `Value`, `Validity`, `ValidityType` (0 = EOL), `Sequence`, `TTL` (nanoseconds) and optional
extension keys starting with "_" (Peergos puts `_peergos_rr` there); `signatureV2` is the publisher's
signature over `"ipns-signature:" || data`. Like Nabu we also fill the legacy V1 copies (fields 1, 3-6;
Nabu's validator compares them with the CBOR values and fails on absent ones) but write no
`signatureV1`; `pubKey` only when the key is not inlined in the peer id (RSA). Validity strings carry
nine fraction digits (`2026-01-02T03:04:05.123456789Z`), which every implementation parses (Nabu fails on
strings without a fraction).

Verification (`validate_record`, the spec's "Record Verification" in order, first failure wins):
size <= 10 KiB; key = `/ipns/` + a valid peer-id multihash; protobuf well formed; `signatureV2` and
`data` present; public key from `pubKey` (which must hash to the name) or else inlined in an identity
multihash name (Ed25519 `12D3KooW...` ids); `data` a DAG-CBOR map with the five fields of the right
types; signature valid for any libp2p key type (`nabu_py.p2p.identity.verify_signature`: Ed25519, RSA,
secp256k1, ECDSA; Nabu accepted RSA only); every V1 field present in the protobuf equal to its CBOR
copy (byte for byte: validity strings are never reformatted before comparing); ValidityType 0; validity
later than `now`. Anything else is `InvalidIpnsRecord`.

Validity strings: RFC 3339 with or without a fraction (Go writes none for whole seconds), `Z` or a
numeric offset. Nabu prints the fraction as Java's unpadded nano-of-second (`.5000000` is 5 ms, §7);
a fraction of fewer than nine digits that ends in 0 but does not start with 0 can only come from that
printer (Go trims trailing zeros, js always writes nine digits), so it is read as a count of
nanoseconds; every other fraction is read the standard way. The two readings of the remaining strings
(e.g. `.123`) differ by less than a second, which only matters for ordering records with equal
sequence numbers.

Ordering (`select_best`, the spec's and Nabu's): the higher sequence wins, then the later expiry;
ties go to the first record (stable, as `Validator.select` requires).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from nabu_py.codec import dag_cbor
from nabu_py.codec.protobuf import VARINT, Writer, expect_bytes, expect_int, iter_fields
from nabu_py.errors import DecodeError
from nabu_py.p2p.identity import canonical_public_key, verify_signature
from nabu_py.p2p.peer_id import PeerId
from nabu_py.protocols.kademlia.errors import InvalidRecord

__all__ = [
    "DEFAULT_TTL_NS",
    "MAX_RECORD_SIZE",
    "NAMESPACE",
    "SIGNATURE_PREFIX",
    "InvalidIpnsRecord",
    "IpnsEntry",
    "IpnsRecord",
    "IpnsSigner",
    "IpnsValidator",
    "create_record",
    "format_validity",
    "name_from_key",
    "parse_validity",
    "routing_key",
    "select_best",
    "validate_record",
]

MAX_RECORD_SIZE: Final = 10 * 1024
"""Largest serialized IpnsEntry accepted or created (spec "Record Size Limit")."""
SIGNATURE_PREFIX: Final = b"ipns-signature:"
NAMESPACE: Final = b"/ipns/"
VALIDITY_EOL: Final = 0
DEFAULT_TTL_NS: Final = 300 * 10**9
"""The spec's suggested TTL hint: 5 minutes."""
MAX_VALIDITY_LEN: Final = 64
_MAX_CBOR_DEPTH: Final = 16
_U64: Final = (1 << 64) - 1
_STANDARD_KEYS: Final = frozenset({"Value", "Validity", "ValidityType", "Sequence", "TTL"})

# IpnsEntry field numbers (checked against proto/ipns.proto by a test).
ENTRY_VALUE: Final = 1
ENTRY_SIGNATURE_V1: Final = 2
ENTRY_VALIDITY_TYPE: Final = 3
ENTRY_VALIDITY: Final = 4
ENTRY_SEQUENCE: Final = 5
ENTRY_TTL: Final = 6
ENTRY_PUB_KEY: Final = 7
ENTRY_SIGNATURE_V2: Final = 8
ENTRY_DATA: Final = 9


class InvalidIpnsRecord(InvalidRecord):
    """An IPNS record failed verification (the message says which step)."""


@dataclass(frozen=True, slots=True)
class IpnsEntry:
    """The protobuf `IpnsEntry` (proto2: None = field absent). No semantic checks: see `validate_record`."""

    value: bytes | None = None
    signature_v1: bytes | None = None
    validity_type: int | None = None
    validity: bytes | None = None
    sequence: int | None = None
    ttl: int | None = None
    pub_key: bytes | None = None
    signature_v2: bytes | None = None
    data: bytes | None = None

    def encode(self) -> bytes:
        """Protobuf encoding, present fields in field-number order."""
        w = Writer()
        if self.value is not None:
            w.write_bytes(ENTRY_VALUE, self.value)
        if self.signature_v1 is not None:
            w.write_bytes(ENTRY_SIGNATURE_V1, self.signature_v1)
        if self.validity_type is not None:
            w.write_uint(ENTRY_VALIDITY_TYPE, self.validity_type)
        if self.validity is not None:
            w.write_bytes(ENTRY_VALIDITY, self.validity)
        if self.sequence is not None:
            w.write_uint(ENTRY_SEQUENCE, self.sequence)
        if self.ttl is not None:
            w.write_uint(ENTRY_TTL, self.ttl)
        if self.pub_key is not None:
            w.write_bytes(ENTRY_PUB_KEY, self.pub_key)
        if self.signature_v2 is not None:
            w.write_bytes(ENTRY_SIGNATURE_V2, self.signature_v2)
        if self.data is not None:
            w.write_bytes(ENTRY_DATA, self.data)
        return w.finish()

    @classmethod
    def decode(cls, raw: bytes) -> IpnsEntry:
        """Parse a serialized entry (at most 10 KiB); DecodeError if malformed. Unknown fields are
        skipped; a repeated field keeps its last value (protobuf rules)."""
        if len(raw) > MAX_RECORD_SIZE:
            raise DecodeError(f"IPNS record of {len(raw)} bytes exceeds {MAX_RECORD_SIZE}")
        f: dict[int, bytes | int] = {}
        for num, wt, val in iter_fields(raw):
            if num in (ENTRY_VALIDITY_TYPE, ENTRY_SEQUENCE, ENTRY_TTL):
                f[num] = expect_int(num, wt, val, VARINT)
            elif ENTRY_VALUE <= num <= ENTRY_DATA:
                f[num] = expect_bytes(num, wt, val)

        def b(n: int) -> bytes | None:
            v = f.get(n)
            return v if isinstance(v, bytes) else None

        def i(n: int) -> int | None:
            v = f.get(n)
            return v if isinstance(v, int) else None

        return cls(
            value=b(ENTRY_VALUE),
            signature_v1=b(ENTRY_SIGNATURE_V1),
            validity_type=i(ENTRY_VALIDITY_TYPE),
            validity=b(ENTRY_VALIDITY),
            sequence=i(ENTRY_SEQUENCE),
            ttl=i(ENTRY_TTL),
            pub_key=b(ENTRY_PUB_KEY),
            signature_v2=b(ENTRY_SIGNATURE_V2),
            data=b(ENTRY_DATA),
        )


@dataclass(frozen=True, slots=True)
class IpnsRecord:
    """A verified IPNS record."""

    name: PeerId
    """The publisher (the IPNS name)."""
    value: bytes
    """What the name points to, e.g. `b"/ipfs/bafk..."`."""
    sequence: int
    ttl_ns: int
    validity: bytes
    """The expiry exactly as signed."""
    expires_at_ns: int
    """The expiry in nanoseconds since the Unix epoch (UTC)."""
    extensions: Mapping[str, Any] = field(default_factory=dict)
    """The "_"-prefixed (and any other non-standard) keys of the signed CBOR document."""
    raw: bytes = b""
    """The serialized entry (what travels in the DHT)."""

    @property
    def expires_at(self) -> float:
        """The expiry as Unix time in seconds."""
        return self.expires_at_ns / 1e9


class IpnsSigner(Protocol):
    """A publisher key: `nabu_py.p2p.HostIdentity` is one (Ed25519, or RSA)."""

    @property
    def peer_id(self) -> PeerId:
        """The peer id of the key: the IPNS name."""

    def public_key_proto(self) -> bytes:
        """The protobuf `PublicKey`."""

    def sign(self, data: bytes) -> bytes:
        """A signature over `data`."""


# -- keys ----------------------------------------------------------------------------------------


def routing_key(name: PeerId) -> bytes:
    """The DHT key of `name`'s records: `/ipns/` + binary peer id."""
    return NAMESPACE + name.to_bytes()


def name_from_key(key: bytes) -> PeerId:
    """The IPNS name of a DHT key; InvalidIpnsRecord unless it is `/ipns/` + a peer-id multihash."""
    if not key.startswith(NAMESPACE):
        raise InvalidIpnsRecord("IPNS key must start with /ipns/")
    try:
        return PeerId.from_bytes(key[len(NAMESPACE) :])
    except DecodeError as e:
        raise InvalidIpnsRecord(f"IPNS key does not hold a peer id: {e}") from None


# -- validity strings ----------------------------------------------------------------------------

_VALIDITY_RE = re.compile(
    rb"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_validity(text: bytes) -> int:
    """Nanoseconds since the Unix epoch of an RFC 3339 time (see module docstring for fractions).
    DecodeError if it is not one."""
    if len(text) > MAX_VALIDITY_LEN:
        raise DecodeError("validity string too long")
    m = _VALIDITY_RE.fullmatch(text)
    if m is None:
        raise DecodeError(f"validity {text[:40]!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise DecodeError(f"validity {text!r} has an invalid date")
    if hour > 23 or minute > 59 or second > 60:
        raise DecodeError(f"validity {text!r} has an invalid time of day")
    frac = m.group(7)
    nanos = 0
    if frac:
        java_unpadded = len(frac) < 9 and frac.endswith(b"0") and not frac.startswith(b"0")
        nanos = int(frac) if java_unpadded else int(frac.ljust(9, b"0"))
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise DecodeError(f"validity {text!r} has an invalid offset")
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == b"+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 10**9 + nanos


def format_validity(expires_at_ns: int) -> bytes:
    """RFC 3339 UTC with nine fraction digits (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`)."""
    if expires_at_ns < 0:
        raise ValueError("validity before 1970 is not supported")
    seconds, nanos = divmod(expires_at_ns, 10**9)
    st = time.gmtime(seconds)
    if st.tm_year > 9999:
        raise ValueError("validity after year 9999 is not supported")
    return (
        f"{st.tm_year:04d}-{st.tm_mon:02d}-{st.tm_mday:02d}T{st.tm_hour:02d}:{st.tm_min:02d}:"
        f"{st.tm_sec:02d}.{nanos:09d}Z"
    ).encode()


# -- creation ------------------------------------------------------------------------------------


def create_record(
    signer: IpnsSigner,
    value: bytes,
    sequence: int,
    *,
    expires_at: float,
    ttl_ns: int = DEFAULT_TTL_NS,
    extensions: Mapping[str, Any] | None = None,
) -> bytes:
    """A signed, serialized V2 record (with V1 copies, no V1 signature) for `signer`'s name.

    `expires_at` is Unix time in seconds; `extensions` are extra keys of the signed CBOR document and
    must start with "_" (e.g. `{"_peergos_rr": {...}}`). ValueError for out-of-range arguments or a
    record over 10 KiB.
    """
    if not 0 <= sequence <= _U64 or not 0 <= ttl_ns <= _U64:
        raise ValueError("sequence and ttl_ns must be unsigned 64-bit integers")
    validity = format_validity(round(expires_at * 1e9))
    doc: dict[str, Any] = {
        "Value": bytes(value),
        "Validity": validity,
        "ValidityType": VALIDITY_EOL,
        "Sequence": sequence,
        "TTL": ttl_ns,
    }
    for k, v in (extensions or {}).items():
        if not isinstance(k, str) or not k.startswith("_"):
            raise ValueError(f"IPNS extension keys must be text starting with '_', not {k!r}")
        doc[k] = v
    data = dag_cbor.encode(doc)
    pub = signer.public_key_proto()
    inlined = signer.peer_id.public_key_proto() is not None
    entry = IpnsEntry(
        value=bytes(value),
        validity_type=VALIDITY_EOL,
        validity=validity,
        sequence=sequence,
        ttl=ttl_ns,
        pub_key=None if inlined else pub,
        signature_v2=signer.sign(SIGNATURE_PREFIX + data),
        data=data,
    )
    raw = entry.encode()
    if len(raw) > MAX_RECORD_SIZE:
        raise ValueError(f"IPNS record of {len(raw)} bytes exceeds {MAX_RECORD_SIZE}")
    return raw


# -- verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Data:
    value: bytes
    validity: bytes
    validity_type: int
    sequence: int
    ttl: int
    extensions: dict[str, Any]


def _parse_data(data: bytes) -> _Data:
    try:
        doc = dag_cbor.decode(data, max_depth=_MAX_CBOR_DEPTH, max_size=MAX_RECORD_SIZE)
    except DecodeError as e:
        raise InvalidIpnsRecord(f"IPNS data is not DAG-CBOR: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidIpnsRecord("IPNS data is not a CBOR map")
    value = doc.get("Value")
    validity = doc.get("Validity")
    vtype = doc.get("ValidityType")
    seq = doc.get("Sequence")
    ttl = doc.get("TTL")
    if not isinstance(value, bytes) or not isinstance(validity, bytes):
        raise InvalidIpnsRecord("IPNS data lacks byte-string Value or Validity")
    for name, n in (("ValidityType", vtype), ("Sequence", seq), ("TTL", ttl)):
        if type(n) is not int or not 0 <= n <= _U64:
            raise InvalidIpnsRecord(f"IPNS data field {name} is not an unsigned 64-bit integer")
    assert isinstance(vtype, int) and isinstance(seq, int) and isinstance(ttl, int)
    ext = {k: v for k, v in doc.items() if k not in _STANDARD_KEYS}
    return _Data(value, validity, vtype, seq, ttl, ext)


def _public_key(name: PeerId, pub_key: bytes | None) -> bytes:
    if pub_key is not None:
        try:
            canonical = canonical_public_key(pub_key)
        except DecodeError as e:
            raise InvalidIpnsRecord(f"IPNS pubKey is malformed: {e}") from None
        if PeerId.from_public_key(canonical) != name:
            raise InvalidIpnsRecord("IPNS pubKey does not match the name")
        return canonical
    inline = name.public_key_proto()
    if inline is None:
        raise InvalidIpnsRecord("IPNS record lacks pubKey and the name does not inline its key")
    return inline


def validate_record(key: bytes, raw: bytes, now: float) -> IpnsRecord:
    """Verify `raw` as the record of DHT key `key` at Unix time `now` (module docstring, in order).

    Returns the verified record; InvalidIpnsRecord (an InvalidRecord, so a ValueError) otherwise.
    """
    if len(raw) > MAX_RECORD_SIZE:
        raise InvalidIpnsRecord(f"IPNS record of {len(raw)} bytes exceeds {MAX_RECORD_SIZE}")
    name = name_from_key(key)
    try:
        entry = IpnsEntry.decode(raw)
    except DecodeError as e:
        raise InvalidIpnsRecord(f"malformed IPNS record: {e}") from None
    if not entry.signature_v2 or not entry.data:
        raise InvalidIpnsRecord("IPNS record lacks signatureV2 or data")
    public_key = _public_key(name, entry.pub_key)
    d = _parse_data(entry.data)
    try:
        ok = verify_signature(public_key, SIGNATURE_PREFIX + entry.data, entry.signature_v2)
    except DecodeError as e:
        raise InvalidIpnsRecord(f"IPNS public key unusable: {e}") from None
    if not ok:
        raise InvalidIpnsRecord("IPNS signatureV2 does not verify")
    for label, pb_value, cbor_value in (
        ("value", entry.value, d.value),
        ("validity", entry.validity, d.validity),
        ("validityType", entry.validity_type, d.validity_type),
        ("sequence", entry.sequence, d.sequence),
        ("ttl", entry.ttl, d.ttl),
    ):
        if pb_value is not None and pb_value != cbor_value:
            raise InvalidIpnsRecord(f"IPNS protobuf field {label} differs from the signed data")
    if d.validity_type != VALIDITY_EOL:
        raise InvalidIpnsRecord(f"unsupported IPNS validity type {d.validity_type}")
    try:
        expires = parse_validity(d.validity)
    except DecodeError as e:
        raise InvalidIpnsRecord(str(e)) from None
    if expires <= now * 1e9:
        raise InvalidIpnsRecord("IPNS record has expired")
    return IpnsRecord(name, d.value, d.sequence, d.ttl, d.validity, expires, d.extensions, bytes(raw))


def _rank(raw: bytes) -> tuple[int, int]:
    """(sequence, expiry ns) read without verification, (-1, -1) when unreadable."""
    try:
        entry = IpnsEntry.decode(raw)
        if not entry.data:
            return (-1, -1)
        d = _parse_data(entry.data)
        return (d.sequence, parse_validity(d.validity))
    except (DecodeError, InvalidRecord):
        return (-1, -1)


def select_best(values: Sequence[bytes]) -> int:
    """Index of the best record: highest sequence, then latest expiry; ties go to the first."""
    if not values:
        raise ValueError("no records to select from")
    best = 0
    best_rank = _rank(values[0])
    for i in range(1, len(values)):
        r = _rank(values[i])
        if r > best_rank:
            best, best_rank = i, r
    return best


class IpnsValidator:
    """The DHT `Validator` of the `/ipns/` namespace (plug it in as `validators={b"ipns": ...}`)."""

    def validate(self, key: bytes, value: bytes, now: float) -> None:
        """Raise InvalidIpnsRecord unless `value` is a valid record for `key` at Unix time `now`."""
        validate_record(key, value, now)

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """See `select_best`."""
        return select_best(values)
