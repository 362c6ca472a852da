"""Hypothesis round trips and invariants for the PKI and account formats and rules."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from peergos_node.accounts.backup_codes import BackupCodes, format_code, normalise
from peergos_node.accounts.login_data import LoginData, LoginResponse
from peergos_node.accounts.mfa import (
    MfaType,
    MultiFactorAuthMethod,
    MultiFactorAuthRequest,
    MultiFactorAuthResponse,
    WebauthnResponse,
)
from peergos_node.accounts.time_limited import (
    sign_request,
    sign_time,
    verify_signed_request,
    verify_signed_time,
)
from peergos_node.accounts.totp import TotpKey, b32decode_unpadded, b32encode_unpadded, totp, verify_totp
from peergos_node.corenode.chain import (
    build_migration_chain,
    merge,
    renew,
    validate_chain,
)
from peergos_node.corenode.claims import (
    Claim,
    create_chain,
    create_initial,
    deserialize_chain,
    parse_claim_payload,
    serialize_chain,
)
from peergos_node.corenode.dates import MAX_YEAR, MIN_YEAR, LocalDate, length_of_month
from peergos_node.corenode.difficulty import DifficultyGenerator
from peergos_node.corenode.java_io import DataReader, DataWriter
from peergos_node.corenode.messages import MigrateUserRequest, SignupRequest, UpdateChainRequest
from peergos_node.corenode.oplog import OpLog
from peergos_node.corenode.snapshot import LinkCounts, UserSnapshot
from peergos_node.corenode.usernames import BANNED_USERNAMES, REGEX, is_valid_username, matches_pattern
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.rng import DeterministicRng
from tests.helpers.fuzz import round_trip_settings
from tests.helpers.pki import login_data, mirror_bat, peer, signer, static_data

usernames = st.from_regex(REGEX, fullmatch=True)
dates = st.builds(
    lambda y, m, d: LocalDate(y, m, min(d, length_of_month(y, m))),
    st.one_of(st.integers(1970, 2100), st.integers(MIN_YEAR, MAX_YEAR)),
    st.integers(1, 12),
    st.integers(1, 31),
)
providers = st.lists(st.sampled_from([peer("a"), peer("b"), peer("c")]), max_size=3).map(tuple)
names = st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5"])
longs = st.integers(-(1 << 63), (1 << 63) - 1)


@round_trip_settings
@given(st.integers(LocalDate.MIN.to_epoch_day(), LocalDate.MAX.to_epoch_day()))
def test_date_text_and_epoch_day_round_trip(epoch_day: int) -> None:
    d = LocalDate.of_epoch_day(epoch_day)
    assert d.to_epoch_day() == epoch_day
    assert LocalDate.parse(str(d)) == d


@round_trip_settings
@given(st.dates(), st.integers(-1200, 1200), st.integers(-100_000, 100_000))
def test_date_arithmetic_agrees_with_python(date: dt.date, months: int, days: int) -> None:
    ld = LocalDate.from_date(date)
    try:
        py = date + dt.timedelta(days=days)
    except OverflowError:
        py = None
    if py is not None:
        assert ld.plus_days(days).to_date() == py
    total = date.year * 12 + date.month - 1 + months
    year, month = divmod(total, 12)
    if 1 <= year <= 9999:
        expected = dt.date(year, month + 1, min(date.day, length_of_month(year, month + 1)))
        assert ld.plus_months(months).to_date() == expected


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("int"), st.integers(-(1 << 31), (1 << 31) - 1)),
        st.tuples(st.just("long"), longs),
        st.tuples(st.just("bool"), st.booleans()),
        st.tuples(st.just("bytes"), st.binary(max_size=40)),
        st.tuples(st.just("str"), st.text(alphabet=st.characters(max_codepoint=127), max_size=40)),
    ),
    max_size=12,
)


@round_trip_settings
@given(_ops)
def test_data_stream_round_trip(ops: list[tuple[str, Any]]) -> None:
    w = DataWriter()
    for kind, v in ops:
        {"int": w.write_int, "long": w.write_long, "bool": w.write_boolean, "bytes": w.write_byte_array}.get(
            kind, w.write_string
        )(v)
    r = DataReader(w.to_bytes())
    for kind, v in ops:
        got = {
            "int": r.read_int,
            "long": r.read_long,
            "bool": r.read_boolean,
            "bytes": lambda: r.read_byte_array(40),
            "str": lambda: r.read_string(40),
        }[kind]()
        assert got == v
    r.expect_end()


@round_trip_settings
@given(usernames, names, dates, providers)
def test_claims_round_trip_and_verify(
    username: str, who: str, expiry: LocalDate, provs: tuple[Any, ...]
) -> None:
    s = signer(who)
    claim = Claim.build(username, s.secret, expiry, provs)
    assert Claim.deserialize(claim.serialize()) == claim
    assert parse_claim_payload(claim.payload) == (username, expiry, provs)
    chain = create_initial(s, username, expiry, provs)
    assert deserialize_chain(serialize_chain(chain)) == chain
    if len(provs) == 1:
        validate_chain(chain, username)


@settings(round_trip_settings, max_examples=500)  # every merge re-verifies the whole chain's signatures
@given(usernames, st.lists(names, min_size=1, max_size=4, unique=True), dates, dates)
def test_key_change_chains_are_valid_and_merge(
    username: str, keys: list[str], first: LocalDate, later: LocalDate
) -> None:
    """Any sequence of key changes, then a renewal and a migration, merges step by step."""
    first, later = min(first, later), max(first, later)
    if later == LocalDate.MAX:
        return
    chain = create_initial(signer(keys[0]), username, first, (peer("a"),))
    for old, new in itertools.pairwise(keys):
        updated = chain[:-1] + create_chain(signer(old), signer(new), username, later, (peer("a"),))
        assert merge(chain, updated, username) == updated
        assert merge(chain, updated[len(chain) - 1 :], username) == updated
        chain = updated
    validate_chain(chain, username)
    renewed = renew(chain, signer(keys[-1]), later)
    assert merge(chain, renewed, username) == renewed
    moved = build_migration_chain(renewed, peer("b"), signer(keys[-1]).secret)
    assert merge(renewed, moved, username) == moved


@round_trip_settings
@given(usernames)
def test_names_matching_the_pattern_are_valid_unless_banned(username: str) -> None:
    assert matches_pattern(username)
    assert is_valid_username(username) == (username not in BANNED_USERNAMES)
    assert 1 <= len(username) <= 32 and "--" not in username and not username.endswith("-")


_methods = st.builds(
    MultiFactorAuthMethod,
    st.text(max_size=16),
    st.binary(max_size=64),
    st.integers(-1000, 100_000).map(LocalDate.of_epoch_day),
    st.sampled_from(list(MfaType)),
    st.booleans(),
)


@round_trip_settings
@given(
    st.lists(_methods, max_size=5).map(tuple),
    st.binary(max_size=64),
    st.one_of(st.text(max_size=20), st.builds(WebauthnResponse, st.binary(), st.binary(), st.binary())),
)
def test_mfa_round_trips(methods: tuple[MultiFactorAuthMethod, ...], blob: bytes, answer: Any) -> None:
    req = MultiFactorAuthRequest(methods, blob)
    assert MultiFactorAuthRequest.deserialize(req.serialize()) == req
    assert LoginResponse.deserialize(LoginResponse(req).serialize()) == LoginResponse(req)
    resp = MultiFactorAuthResponse(blob, answer)
    assert MultiFactorAuthResponse.deserialize(resp.serialize()) == resp


@round_trip_settings
@given(st.binary(min_size=1, max_size=64), st.text(max_size=30))
def test_base32_and_backup_code_forms(data: bytes, typed: str) -> None:
    assert b32decode_unpadded(b32encode_unpadded(data)) == data
    code = normalise(typed)
    assert normalise(format_code(code)) == code
    assert normalise(format_code(code).upper()) == code


@round_trip_settings
@given(st.binary(min_size=8, max_size=8))
def test_backup_code_sets_spend_each_code_once(seed: bytes) -> None:
    codes = BackupCodes.generate(DeterministicRng(seed))
    assert BackupCodes.deserialize(codes.serialize()) == codes
    stored = codes.hashes()
    for i, code in enumerate(codes.formatted()):
        stored = stored.redeem(code)
        assert stored.remaining_name == str(len(codes.codes) - i - 1)


@round_trip_settings
@given(st.binary(min_size=1, max_size=64), st.integers(0, 1 << 44))
def test_totp_accepts_exactly_two_steps(key: bytes, now: int) -> None:
    assert verify_totp(key, totp(key, now), now)
    assert verify_totp(key, totp(key, now - 30_000), now)
    code = totp(key, now + 30_000)
    assert verify_totp(key, code, now) == (code in (totp(key, now), totp(key, now - 30_000)))
    k = TotpKey(key, key)
    assert TotpKey.from_string(k.encode()) == k


@round_trip_settings
@given(names, st.integers(0, 1 << 50), st.integers(-300_000, 300_000), st.text(max_size=40))
def test_signed_auth_round_trips(who: str, now: int, skew: int, path: str) -> None:
    s = signer(who)
    key = s.public_key_hash
    assert verify_signed_time(sign_time(s.secret, now), key, 300, now + skew) == now
    assert verify_signed_request(sign_request(s.secret, path, now), key, path, 300, now + skew) == now


@round_trip_settings
@given(
    usernames,
    st.text(alphabet=st.characters(max_codepoint=127), max_size=20),
    st.booleans(),
    longs,
    longs,
    st.booleans(),
)
def test_pki_bodies_round_trip(
    username: str, token: str, with_bat: bool, seconds: int, usage: int, commit: bool
) -> None:
    chain = create_initial(signer("k0"), username, LocalDate(2026, 5, 1), (peer("a"),))
    proof = ProofOfWork.of_counter(abs(usage) % (1 << 64))
    log = OpLog((), (login_data(), b"auth"), (mirror_bat(), b"a") if with_bat else None)
    for req in (
        SignupRequest(username, chain[0], log, proof, token),
        UpdateChainRequest(username, chain, proof, token),
        MigrateUserRequest(
            username, chain, peer("b"), mirror_bat() if with_bat else None, seconds, usage, commit
        ),
    ):
        assert type(req).decode(req.encode()) == req


@round_trip_settings
@given(
    st.dictionaries(names, st.binary(max_size=147), max_size=6),
    st.dictionaries(longs, st.tuples(longs, longs), max_size=5),
    st.booleans(),
)
def test_snapshot_round_trip(
    pointers: dict[str, bytes], counts: dict[int, tuple[int, int]], with_login: bool
) -> None:
    snap = UserSnapshot(
        "alice",
        signer("owner").public_key_hash,
        {signer(k).public_key_hash: v for k, v in pointers.items()},
        (),
        (mirror_bat(),),
        LoginData("alice", static_data(), signer("login").secret.public_key()) if with_login else None,
        LinkCounts(counts),
    )
    assert UserSnapshot.deserialize(snap.serialize()) == snap


@round_trip_settings
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5_000)), min_size=1, max_size=20))
def test_more_signups_never_lower_the_difficulty(schedule: list[tuple[int, int]]) -> None:
    """Two generators see the same clock; one gets an extra event each step. It is never easier."""
    start = 1_777_593_600_000
    a, b = DifficultyGenerator(start, 500), DifficultyGenerator(start, 500)
    now = start
    for events, gap in schedule:
        for _ in range(events):
            a.add_event()
            b.add_event()
        b.add_event()
        now += gap
        a.update_time(now)
        b.update_time(now)
        assert b.current_difficulty >= a.current_difficulty
