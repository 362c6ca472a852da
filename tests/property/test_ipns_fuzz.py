"""Hypothesis: IPNS entries round-trip; arbitrary or mutated bytes never make decoding or verification
raise anything but DecodeError / InvalidRecord (10,000 examples per decoder)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.errors import DecodeError
from nabu_py.p2p import HostIdentity
from nabu_py.protocols.ipns import IpnsEntry, create_record, parse_validity, routing_key, validate_record
from nabu_py.protocols.kademlia.errors import InvalidRecord
from tests.helpers.fuzz import fuzz_settings, round_trip_settings

NOW = 1_800_000_000.0
ALICE = HostIdentity.generate(b"\x07" * 32)
KEY = routing_key(ALICE.peer_id)
GOOD = create_record(ALICE, b"/ipfs/bafkqaaa", 5, expires_at=NOW + 3600, extensions={"_x": {"a": 1}})

u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
opt_bytes = st.none() | st.binary(max_size=50)
entries = st.builds(
    IpnsEntry,
    opt_bytes,
    opt_bytes,
    st.none() | u64,
    opt_bytes,
    st.none() | u64,
    st.none() | u64,
    opt_bytes,
    opt_bytes,
    opt_bytes,
)


@round_trip_settings
@given(entries)
def test_entry_round_trip(entry: IpnsEntry) -> None:
    assert IpnsEntry.decode(entry.encode()) == entry


@fuzz_settings
@given(st.binary(max_size=300))
def test_decode_and_validate_arbitrary_bytes(data: bytes) -> None:
    try:
        IpnsEntry.decode(data)
    except DecodeError:
        pass
    try:
        validate_record(KEY, data, NOW)
    except InvalidRecord:
        return
    raise AssertionError("arbitrary bytes validated as an IPNS record")


@fuzz_settings
@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.binary(min_size=0, max_size=4))
def test_mutated_record_is_valid_only_if_the_signed_parts_are_intact(pos: int, junk: bytes) -> None:
    data = GOOD[:pos] + junk + GOOD[pos + 1 :]
    try:
        rec = validate_record(KEY, data, NOW)
    except InvalidRecord:
        return
    # Whatever was mutated, the verified content is the signed content.
    assert rec.value == b"/ipfs/bafkqaaa" and rec.sequence == 5


@fuzz_settings
@given(st.binary(max_size=40))
def test_parse_validity_arbitrary(data: bytes) -> None:
    try:
        parse_validity(data)
    except DecodeError:
        pass
